// JSON forms of the verify and check results (for --json, the nightly report and monitoring).
// Paths may hold any bytes; the caller dumps with invalid UTF-8 replaced (agent/common/json_text.h
// Dump).
#pragma once

#include <nlohmann/json.hpp>

#include "verify/check.h"
#include "verify/snapshot_verify.h"

namespace mv::verify {

nlohmann::json ToJson(const VerifyResult& r, size_t max_listed = 200);
nlohmann::json ToJson(const CheckResult& r);
nlohmann::json ToJson(const std::vector<FolderDiff>& d);
nlohmann::json ToJson(const MessageDiff& d, size_t max_listed);

}  // namespace mv::verify
