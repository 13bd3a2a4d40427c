// docs/FORMAT.md §7 (snapshot manifests).
#include "storage/snapshot.h"

#include <nlohmann/json.hpp>

#include "storage/codec.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

constexpr std::string_view kSnapMagic{"MVSNAPS\x01", 8};
constexpr uint32_t kFlagContentIsBlob = 1u << 31;   // body only: content == blobs[0]

nlohmann::json MetaToJson(const SnapshotMeta& m) {
  nlohmann::json j;
  j["kind"] = "snapshot";
  j["version"] = 1;
  j["id"] = m.id;
  j["time"] = m.time;
  j["time_ns"] = m.time_ns;
  j["host"] = m.host;
  j["parent"] = m.parent;
  j["tags"] = m.tags;
  j["sources"] = nlohmann::json::array();
  for (const auto& s : m.sources) j["sources"].push_back({{"name", s.name}, {"path", s.path}});
  j["census"] = nlohmann::json::array();
  for (const auto& c : m.census)
    j["census"].push_back({{"source", c.source}, {"mailbox", c.mailbox}, {"folder", c.folder},
                           {"messages", c.messages}, {"bytes", c.bytes}, {"digest", c.digest}});
  j["files"] = m.files;
  j["bytes"] = m.bytes;
  j["bytes_new"] = m.bytes_new;
  j["bytes_packed"] = m.bytes_packed;
  j["problems"] = m.problems;
  j["stats"] = m.stats_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(m.stats_json);
  j["body"] = {{"compression", "zstd"}, {"encryption", "none"}};
  return j;
}

}  // namespace

std::string_view SnapshotMagic() { return kSnapMagic; }

Result<SnapshotMeta> DecodeSnapshotHeader(const std::string& header_json, const std::string& path) {
  SnapshotMeta m;
  try {
    auto j = nlohmann::json::parse(header_json);
    if (j.value("kind", "") != "snapshot") return Status::Corruption("not a snapshot header", path);
    m.id = j.at("id");
    m.time = j.at("time");
    m.time_ns = j.value("time_ns", m.time * 1000000000);
    m.host = j.value("host", "");
    m.parent = j.value("parent", "");
    m.tags = j.value("tags", std::map<std::string, std::string>{});
    for (const auto& s : j.at("sources")) m.sources.push_back({s.at("name"), s.at("path")});
    for (const auto& c : j.at("census"))
      m.census.push_back({c.at("source"), c.at("mailbox"), c.at("folder"), c.at("messages"),
                          c.at("bytes"), c.at("digest")});
    m.files = j.value("files", 0ULL);
    m.bytes = j.value("bytes", 0ULL);
    m.bytes_new = j.value("bytes_new", 0ULL);
    m.bytes_packed = j.value("bytes_packed", 0ULL);
    m.problems = j.value("problems", 0ULL);
    m.stats_json = j.value("stats", nlohmann::json::object()).dump();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed snapshot header: ") + e.what(), path);
  }
  return m;
}

std::string EncodeSnapshot(const Snapshot& snap) {
  // Records are encoded in batches and compressed as they go (memory: no whole raw body).
  // Invalid UTF-8 (Maildir names may be any bytes) is replaced in the header's display fields.
  SealWriter seal(kSnapMagic, MetaToJson(snap.meta).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 3);
  Encoder enc;
  enc.U(snap.files.size());
  std::string_view prev;
  for (const auto& f : snap.files) {
    if (enc.buf().size() > (1u << 20)) {
      seal.Append(enc.buf());
      enc.buf().clear();
    }
    size_t shared = 0;
    while (shared < prev.size() && shared < f.path.size() && prev[shared] == f.path[shared]) shared++;
    enc.U(shared);
    enc.Str(std::string_view(f.path).substr(shared));
    prev = f.path;
    uint32_t flags = f.flags;
    bool content_is_blob = f.blobs.size() == 1 && f.blobs[0] == f.content;
    if (content_is_blob) flags |= kFlagContentIsBlob;
    enc.U(static_cast<uint64_t>(f.type));
    enc.U(flags);
    enc.U(f.mode);
    enc.U(f.uid);
    enc.U(f.gid);
    enc.U(f.size);
    enc.S(f.mtime_ns);
    enc.S(f.ctime_ns);
    enc.U(f.dev);
    enc.U(f.ino);
    if (f.type == FileType::kSymlink) enc.Str(f.link_target);
    if (f.type == FileType::kRegular) {
      enc.U(f.blobs.size());
      for (const auto& b : f.blobs) enc.Id(b);
      if (!content_is_blob) enc.Id(f.content);
    }
  }
  seal.Append(enc.buf());
  return seal.Finish();
}

Result<Snapshot> DecodeSnapshot(std::string_view data, const std::string& path) {
  MV_ASSIGN_OR_RETURN(Sealed s, Unseal(data, kSnapMagic, path));
  Snapshot snap;
  MV_ASSIGN_OR_RETURN(snap.meta, DecodeSnapshotHeader(s.header, path));
  Decoder dec(s.body);
  uint64_t n = dec.U();
  if (!dec.ok() || n > s.body.size()) return Status::Corruption("bad file count", path);
  snap.files.resize(n);
  std::string prev;
  for (auto& f : snap.files) {
    uint64_t shared = dec.U();
    std::string_view suffix = dec.Str();
    if (!dec.ok() || shared > prev.size()) return Status::Corruption("bad path record", path);
    f.path.assign(prev, 0, shared);
    f.path.append(suffix);
    prev = f.path;
    f.type = static_cast<FileType>(dec.U());
    uint32_t flags = static_cast<uint32_t>(dec.U());
    f.flags = flags & ~kFlagContentIsBlob;
    f.mode = static_cast<uint32_t>(dec.U());
    f.uid = static_cast<uint32_t>(dec.U());
    f.gid = static_cast<uint32_t>(dec.U());
    f.size = dec.U();
    f.mtime_ns = dec.S();
    f.ctime_ns = dec.S();
    f.dev = dec.U();
    f.ino = dec.U();
    if (f.type == FileType::kSymlink) f.link_target = dec.Str();
    if (f.type == FileType::kRegular) {
      uint64_t nb = dec.U();
      if (!dec.ok() || nb > s.body.size()) return Status::Corruption("bad blob count", path);
      f.blobs.resize(nb);
      for (auto& b : f.blobs) b = dec.Id();
      if ((flags & kFlagContentIsBlob) && nb != 1) return Status::Corruption("bad blob list", path);
      f.content = (flags & kFlagContentIsBlob) ? f.blobs[0] : dec.Id();
    } else if (f.type != FileType::kDirectory && f.type != FileType::kSymlink) {
      return Status::Corruption("unknown entry type for " + f.path, path);
    }
    if (!dec.ok()) return Status::Corruption("manifest body is cut short", path);
  }
  if (!dec.done()) return Status::Corruption("trailing bytes in manifest body", path);
  return snap;
}

}  // namespace mv::storage
