// storage/crypto/keyless_check.h
#include "storage/crypto/keyless_check.h"

#include <algorithm>

#include "storage/crypto/age.h"
#include "storage/crypto/encrypted_backend.h"
#include "storage/crypto/pack_name.h"
#include "storage/layout.h"

namespace mv::storage::crypto {
namespace {

// The next line of `s` from *pos (without its '\n'); false when there is no '\n'.
bool NextLine(std::string_view s, size_t* pos, std::string_view* line) {
  size_t nl = s.find('\n', *pos);
  if (nl == std::string_view::npos) return false;
  *line = s.substr(*pos, nl - *pos);
  *pos = nl + 1;
  return true;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

bool LooksLikeAgeFile(std::string_view file, std::string* why) {
  size_t pos = 0;
  std::string_view line;
  if (!NextLine(file, &pos, &line) || line != "age-encryption.org/v1") {
    *why = "does not start with the age v1 header line";
    return false;
  }
  int x25519 = 0;
  for (;;) {
    if (!NextLine(file, &pos, &line)) {
      *why = "the age header is cut short";
      return false;
    }
    if (StartsWith(line, "--- ")) break;
    if (StartsWith(line, "-> X25519 ")) {
      x25519++;
      // The stanza's body: one line of 43 base64 characters (the sealed 16-byte file key).
      if (!NextLine(file, &pos, &line) || line.size() != 43) {
        *why = "the X25519 stanza of the age header is malformed";
        return false;
      }
    } else if (StartsWith(line, "-> ")) {
      *why = "the age header has a stanza this repository does not write";
      return false;
    }
  }
  if (x25519 != 1) {
    *why = "the age header has " + std::to_string(x25519) + " X25519 stanzas, not one";
    return false;
  }
  if (line.size() != 4 + 43) {
    *why = "the age header's MAC line is malformed";
    return false;
  }
  if (file.size() < pos + 16 + kAgeTag) {
    *why = "the age file ends before its first chunk";
    return false;
  }
  return true;
}

Result<KeylessCheck> CheckWithoutKey(const Backend& stored, const RepoConfig& config,
                                     const KeylessProgressFn& progress) {
  if (config.encryption.empty())
    return Status::Invalid("the repository is not encrypted: `mailvault check` needs no key here",
                           stored.Describe());
  if (config.version < 9)
    return Status::AccessDenied(
        "this repository (format version " + std::to_string(config.version) +
            ") names its packs by their plaintext, so checking it needs the key: give "
            "--password-file or --identity-file (repositories made by `mailvault init` at "
            "version 9 or later can be checked without one)",
        stored.Describe());
  KeylessCheck res;
  MV_ASSIGN_OR_RETURN(auto objects, stored.List(""));
  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  uint64_t total_packs = 0;
  for (const auto& o : objects) total_packs += o.name.compare(0, 6, "packs/") == 0;
  std::string buf(1 << 20, '\0');
  for (const auto& o : objects) {
    // reports/: the sidecar's run reports, plain JSON beside the format (FORMAT.md §1).
    if (layout::IsTempName(o.name) || StoredInClear(o.name) || o.name.rfind("reports/", 0) == 0)
      continue;
    std::string where = stored.Describe(o.name);
    if (!layout::IsFormatName(o.name)) {
      res.problems.push_back({"foreign-object", where, "",
                              "not a name of the repository format (FORMAT.md §1): something "
                              "other than mailvault wrote it; it is ignored",
                              true});
      continue;
    }
    BlobId id;
    if (layout::ParsePackRelPath(o.name, &id)) {
      // The whole age file, hashed as it streams (a pack can be large).
      MV_ASSIGN_OR_RETURN(auto in, stored.OpenReader(o.name));
      PackNameHash h;
      std::string head;
      uint64_t size = 0;
      for (;;) {
        MV_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
        if (n == 0) break;
        std::string_view got(buf.data(), n);
        h.Update(got);
        if (head.size() < 4096) head.append(got.substr(0, 4096 - head.size()));
        size += n;
      }
      res.packs++;
      res.pack_bytes += size;
      std::string why;
      if (h.Final() != id) {
        res.problems.push_back({"pack-damaged", where, id.Hex(),
                                "pack content does not match its name (bit rot or tampering): "
                                "its bytes were changed after it was written; `mailvault check` "
                                "with the key names the snapshots and files it affects"});
      } else if (!LooksLikeAgeFile(head, &why)) {
        // A pack that matches its name was written so: by a build that wrote something else.
        res.problems.push_back({"pack-damaged", where, id.Hex(), "not an age file: " + why});
      }
      if (progress) progress(res.packs, total_packs);
      continue;
    }
    std::string top = o.name.substr(0, o.name.find('/'));
    MV_ASSIGN_OR_RETURN(std::string file, stored.Read(o.name));
    std::string why;
    if (!LooksLikeAgeFile(file, &why))
      res.problems.push_back(
          {top == "snapshots" ? "snapshot-damaged"
           : top == "index"   ? "index-damaged"
                              : "object-damaged",
           where, "",
           "not a well-formed encrypted object (" + why +
               "): damaged or not written by mailvault; `mailvault check` with the key says "
               "what it affects"});
    if (top == "index")
      res.index_files++;
    else if (top == "snapshots")
      res.snapshots++;
    else
      res.other_sealed++;
  }
  return res;
}

}  // namespace mv::storage::crypto
