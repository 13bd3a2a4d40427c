#include "storage/backend.h"

#include <algorithm>

namespace mv::storage {

Result<std::vector<std::string>> ListNames(const Backend& backend, const std::string& dir) {
  MV_ASSIGN_OR_RETURN(auto objects, backend.List(dir));
  std::vector<std::string> names;
  for (auto& o : objects) {
    std::string_view n = std::string_view(o.name).substr(dir.size() + 1);
    if (n.find('/') == std::string_view::npos) names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace mv::storage
