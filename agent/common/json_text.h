// JSON as text for files and output: invalid UTF-8 (Maildir names may be any bytes) is replaced,
// never thrown on.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mv::agent {

inline std::string Dump(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mv::agent
