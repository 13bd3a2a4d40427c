// Every on-disk name of a repository, in one place (docs/FORMAT.md §1 is the normative layout;
// the section each name belongs to is cited beside it). Code that needs a repository path asks
// here instead of spelling "packs" or "snapshots/" itself, so a layout change is one edit here
// plus one in docs/FORMAT.md. Pure functions of their arguments; nothing here touches the disk.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "storage/hash.h"

namespace mv::storage::layout {

// The top-level directories `init` creates (§1).
constexpr std::array<const char*, 6> kTopDirs = {"packs", "index", "snapshots",
                                                 "locks", "tmp",   "keys"};

// Whether `rel` (a name relative to the repository root) is a name the format defines (§1): the
// config, keys/, packs/XX/ID.tar.zst (well-formed), index/, snapshots/, locks/, verifications/,
// held/, headers/ and tmp/, and reports/, which the sidecar writes and readers ignore. Anything
// else is not part of the repository; `check` names it.
bool IsFormatName(std::string_view rel);

inline std::string In(const std::string& repo, std::string_view rel) {
  std::string out = repo;
  if (!out.empty() && out.back() != '/') out += '/';
  out += rel;
  return out;
}

// §1: written last by `init`; a directory without it is not a repository.
inline std::string ConfigFile(const std::string& repo) { return In(repo, "config"); }
// §3: the content-addressing secret; messages name it by its relative name kKeyFile.
constexpr std::string_view kKeyFile = "keys/default";
inline std::string KeyFile(const std::string& repo) { return In(repo, kKeyFile); }

// §5: packs/XX/ID.tar.zst, XX the first two hex digits of ID.
constexpr std::string_view kPackSuffix = ".tar.zst";
inline std::string PacksDir(const std::string& repo) { return In(repo, "packs"); }
// The pack's path relative to packs/ ("ab/ab12....tar.zst").
inline std::string PackNameInPacksDir(const BlobId& pack) {
  std::string hex = pack.Hex();
  return hex.substr(0, 2) + "/" + hex + std::string(kPackSuffix);
}
inline std::string PackRelPath(const BlobId& pack) { return "packs/" + PackNameInPacksDir(pack); }
inline std::string PackFile(const std::string& repo, const BlobId& pack) {
  return In(repo, layout::PackRelPath(pack));
}
// True when `name` (a file in a packs/XX/ directory) is a pack's name; then *id is its ID.
inline bool ParsePackName(std::string_view name, BlobId* id) {
  return name.size() == 32 + kPackSuffix.size() && name.substr(32) == kPackSuffix &&
         BlobId::FromHex(name.substr(0, 32), id);
}
// True when `rel` (a name relative to the repository root, as a listing gives it) is exactly
// packs/XX/ID.tar.zst; then *id is the pack's ID.
inline bool ParsePackRelPath(std::string_view rel, BlobId* id) {
  return rel.size() == 6 + 3 + 32 + kPackSuffix.size() && rel.substr(0, 6) == "packs/" &&
         ParsePackName(rel.substr(9), id) && rel == layout::PackRelPath(*id);
}

// §6: index/ID, any name; temp files of an interrupted write are skipped (IsTempName).
inline std::string IndexDir(const std::string& repo) { return In(repo, "index"); }
inline std::string IndexFile(const std::string& repo, const std::string& name) {
  return In(repo, "index/" + name);
}

// §7: snapshots/ID, ID = 32 hex digits; any other name (a temp file of an interrupted commit) is
// not a manifest.
inline std::string SnapshotsDir(const std::string& repo) { return In(repo, "snapshots"); }
inline std::string SnapshotFile(const std::string& repo, const std::string& id) {
  return In(repo, "snapshots/" + id);
}
inline bool IsSnapshotName(std::string_view name) { return name.size() == 32; }

// §11: verifications/<snapshot ID>-<random>, one sealed record per verification run.
inline std::string VerificationsDir(const std::string& repo) { return In(repo, "verifications"); }
inline std::string VerificationFile(const std::string& repo, const std::string& snapshot,
                                    const std::string& random) {
  return In(repo, "verifications/" + snapshot + "-" + random);
}
// §12: held/<16 hex>, one sealed held mail record per forget that held messages.
inline std::string HeldDir(const std::string& repo) { return In(repo, "held"); }
inline std::string HeldFile(const std::string& repo, const std::string& random) {
  return In(repo, "held/" + random);
}
inline bool IsHeldName(std::string_view name) {
  if (name.size() != 16) return false;
  for (char c : name)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// §15: headers/<16 hex>, one sealed header record per backup (or index-headers batch) that read
// messages; named like held mail records.
inline bool IsHeadersName(std::string_view name) { return IsHeldName(name); }

// True when `name` in verifications/ is a record's name; then *snapshot is its snapshot's ID.
inline bool ParseVerificationName(std::string_view name, std::string* snapshot) {
  if (name.size() != 32 + 1 + 16 || name[32] != '-') return false;
  for (char c : name.substr(0, 32))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  *snapshot = std::string(name.substr(0, 32));
  return true;
}

// §9: locks/exclusive, swapped in from locks/new-<random>.
inline std::string LocksDir(const std::string& repo) { return In(repo, "locks"); }
inline std::string ExclusiveLockFile(const std::string& repo) {
  return In(repo, "locks/exclusive");
}
inline std::string NewLockName(const std::string& random) { return "new-" + random; }

// §1: tmp/, where files are written before they are renamed into place.
inline std::string TmpDir(const std::string& repo) { return In(repo, "tmp"); }

// §8: a file written atomically is first "<final name>.tmp-<random>" beside its final name
// (storage/fs.h WriteFileAtomic); readers listing a directory skip such names.
constexpr std::string_view kTempMarker = ".tmp-";
inline std::string TempNameFor(const std::string& path, const std::string& random) {
  return path + std::string(kTempMarker) + random;
}
inline bool IsTempName(std::string_view name) {
  return name.find(kTempMarker) != std::string_view::npos;
}

inline bool IsFormatName(std::string_view rel) {
  if (rel == "config") return true;
  size_t slash = rel.find('/');
  if (slash == std::string_view::npos || slash + 1 == rel.size()) return false;
  std::string_view top = rel.substr(0, slash);
  BlobId id;
  if (top == "packs") return ParsePackRelPath(rel, &id);
  for (std::string_view t : {"keys", "index", "snapshots", "locks", "verifications", "held",
                             "headers", "tmp", "reports"})
    if (top == t) return true;
  return false;
}

}  // namespace mv::storage::layout
