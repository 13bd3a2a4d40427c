#include "storage/backend.h"

#include <algorithm>

namespace mv::storage {

Result<std::string> Backend::ReadAt(const std::string& name, uint64_t offset,
                                    uint64_t length) const {
  MV_ASSIGN_OR_RETURN(auto in, OpenReader(name));
  std::string out(length, '\0');
  std::string skip(offset > 0 ? std::min<uint64_t>(offset, 1 << 20) : 0, '\0');
  uint64_t pos = 0;
  while (pos < offset + length) {
    bool skipping = pos < offset;
    size_t want = skipping ? std::min<uint64_t>(skip.size(), offset - pos)
                           : static_cast<size_t>(offset + length - pos);
    MV_ASSIGN_OR_RETURN(size_t n,
                        in->Read(skipping ? skip.data() : out.data() + (pos - offset), want));
    if (n == 0)
      return Status::Corruption("object ends at byte " + std::to_string(pos) + ", before byte " +
                                    std::to_string(offset + length) + " was read",
                                Describe(name));
    pos += n;
  }
  return out;
}

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
