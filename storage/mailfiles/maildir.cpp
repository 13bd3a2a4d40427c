#include "storage/mailfiles/maildir.h"

#include <cctype>
#include <cstring>

namespace mv::mailfiles {

bool IsMaildir(bool has_cur, bool has_new, bool has_tmp) { return has_cur && has_new && has_tmp; }

MaildirPlace PlaceOf(const std::string& rel_dir, bool parent_is_maildir) {
  auto slash = rel_dir.find_last_of('/');
  std::string base = slash == std::string::npos ? rel_dir : rel_dir.substr(slash + 1);
  std::string parent = slash == std::string::npos ? "" : rel_dir.substr(0, slash);
  if (parent_is_maildir && base.size() > 1 && base[0] == '.') return {parent, base};
  return {rel_dir, "INBOX"};
}

std::string FolderArg(std::string_view folder) {
  if (folder.empty()) return {};
  std::string lower(folder);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inbox") return "INBOX";
  return folder[0] == '.' ? std::string(folder) : "." + std::string(folder);
}

std::string_view UniqueName(std::string_view name) {
  auto pos = name.find(":2,");
  if (pos == std::string_view::npos) pos = name.find(':');
  return pos == std::string_view::npos ? name : name.substr(0, pos);
}

bool IsDovecotFile(std::string_view n) {
  return n.rfind("dovecot", 0) == 0 || n == "subscriptions" || n == "maildirsize" ||
         n == "maildirfolder";
}

bool IsDovecotStateFile(std::string_view n) {
  return n.rfind("dovecot", 0) == 0 || n == "maildirsize";
}

void CensusBuilder::AddFolder(const std::string& source, const MaildirPlace& place) {
  acc_.try_emplace({source, place.mailbox, place.folder});
}

void CensusBuilder::AddMessage(const std::string& source, const MaildirPlace& place, uint64_t size,
                               const storage::BlobId& content) {
  Acc& a = acc_[{source, place.mailbox, place.folder}];
  uint64_t lo, hi;
  std::memcpy(&lo, content.bytes.data(), 8);
  std::memcpy(&hi, content.bytes.data() + 8, 8);
  a.messages++;
  a.bytes += size;
  a.lo += lo;
  a.hi += hi;
}

void CensusBuilder::AddFolderSums(const std::string& source, const MaildirPlace& place,
                                  uint64_t messages, uint64_t bytes, uint64_t lo, uint64_t hi) {
  Acc& a = acc_[{source, place.mailbox, place.folder}];
  a.messages += messages;
  a.bytes += bytes;
  a.lo += lo;
  a.hi += hi;
}

std::vector<storage::CensusRow> CensusBuilder::Rows() const {
  std::vector<storage::CensusRow> rows;
  for (const auto& [k, a] : acc_) {
    uint64_t d[2] = {a.lo, a.hi};
    rows.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), a.messages, a.bytes,
                    storage::ToHex(d, sizeof d)});
  }
  return rows;
}

MaildirIndex::MaildirIndex(const std::vector<storage::FileEntry>& files) {
  for (const auto& f : files) {
    if (f.type != storage::FileType::kDirectory) continue;
    auto slash = f.path.find_last_of('/');
    if (slash == std::string::npos) continue;
    std::string_view base = std::string_view(f.path).substr(slash + 1);
    int bit = base == "cur" ? 1 : base == "new" ? 2 : base == "tmp" ? 4 : 0;
    if (bit) subdirs_[f.path.substr(0, slash)] |= bit;
  }
}

bool MaildirIndex::IsMaildirDir(const std::string& path) const {
  auto it = subdirs_.find(path);
  return it != subdirs_.end() && it->second == 7;
}

std::vector<std::string> MaildirIndex::Dirs() const {
  std::vector<std::string> out;
  for (const auto& [dir, bits] : subdirs_)
    if (bits == 7) out.push_back(dir);
  return out;
}

MaildirPlace MaildirIndex::Place(const std::string& dir, std::string* source) const {
  auto first = dir.find('/');
  *source = dir.substr(0, first);
  std::string rel = first == std::string::npos ? "" : dir.substr(first + 1);
  bool parent_md = first != std::string::npos && IsMaildirDir(dir.substr(0, dir.find_last_of('/')));
  return PlaceOf(rel, parent_md);
}

std::string MaildirIndex::MaildirOfMessage(const std::string& path) const {
  auto s1 = path.find_last_of('/');
  if (s1 == std::string::npos || s1 == 0) return "";
  auto s2 = path.find_last_of('/', s1 - 1);
  if (s2 == std::string::npos) return "";
  std::string_view sub = std::string_view(path).substr(s2 + 1, s1 - s2 - 1);
  if (sub != "cur" && sub != "new") return "";
  std::string dir = path.substr(0, s2);
  return IsMaildirDir(dir) ? dir : "";
}

std::vector<storage::CensusRow> CensusOfEntries(const std::vector<storage::FileEntry>& files) {
  MaildirIndex idx(files);
  CensusBuilder cb;
  std::string source;
  for (const auto& dir : idx.Dirs()) {
    MaildirPlace place = idx.Place(dir, &source);
    cb.AddFolder(source, place);
  }
  for (const auto& f : files) {
    if (f.type != storage::FileType::kRegular) continue;
    std::string dir = idx.MaildirOfMessage(f.path);
    if (dir.empty()) continue;
    MaildirPlace place = idx.Place(dir, &source);
    cb.AddMessage(source, place, f.size, f.content);
  }
  return cb.Rows();
}

}  // namespace mv::mailfiles
