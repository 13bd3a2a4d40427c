// docs/FORMAT.md §7 (snapshot manifests).
#include "storage/snapshot.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "storage/codec.h"
#include "storage/entry_table.h"
#include "storage/json_number.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

// Written with version 2; version 1 (no flag bits 1-4, so none of their fields) still reads.
constexpr std::string_view kSnapMagic{"MVSNAPS\x02", 8};
constexpr uint8_t kSnapOldestVersion = 1;
constexpr uint32_t kFlagContentIsBlob = 1u << 31;  // body only: content == blobs[0]

nlohmann::json MetaToJson(const SnapshotMeta& m) {
  nlohmann::json j;
  j["kind"] = "snapshot";
  j["version"] = 2;
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
    j["census"].push_back({{"source", c.source},
                           {"mailbox", c.mailbox},
                           {"folder", c.folder},
                           {"messages", c.messages},
                           {"bytes", c.bytes},
                           {"digest", c.digest}});
  j["files"] = m.files;
  j["bytes"] = m.bytes;
  j["bytes_new"] = m.bytes_new;
  j["bytes_packed"] = m.bytes_packed;
  j["problems"] = m.problems;
  j["stats"] =
      m.stats_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(m.stats_json);
  j["body"] = {{"compression", "zstd"}, {"encryption", "none"}};
  return j;
}

}  // namespace

std::string_view SnapshotMagic() { return kSnapMagic; }
uint8_t SnapshotOldestVersion() { return kSnapOldestVersion; }

Result<SnapshotMeta> DecodeSnapshotHeader(const std::string& header_json, const std::string& path) {
  SnapshotMeta m;
  try {
    auto j = nlohmann::json::parse(header_json);
    if (j.value("kind", "") != "snapshot") return Status::Corruption("not a snapshot header", path);
    m.id = j.at("id");
    m.time = JsonIntAt<int64_t>(j, "time");
    // Times are seconds since 1970 within +-2^33 (year 2242): anything else is damage, and the
    // nanosecond default below would overflow.
    if (m.time < -(int64_t{1} << 33) || m.time > (int64_t{1} << 33))
      return Status::Corruption("implausible snapshot time " + std::to_string(m.time), path);
    m.time_ns = JsonIntOr<int64_t>(j, "time_ns", m.time * 1000000000);
    m.host = j.value("host", "");
    m.parent = j.value("parent", "");
    m.tags = j.value("tags", std::map<std::string, std::string>{});
    for (const auto& s : j.at("sources")) m.sources.push_back({s.at("name"), s.at("path")});
    for (const auto& c : j.at("census"))
      m.census.push_back({c.at("source"), c.at("mailbox"), c.at("folder"),
                          JsonIntAt<uint64_t>(c, "messages"), JsonIntAt<uint64_t>(c, "bytes"),
                          c.at("digest")});
    m.files = JsonIntOr<uint64_t>(j, "files", 0);
    m.bytes = JsonIntOr<uint64_t>(j, "bytes", 0);
    m.bytes_new = JsonIntOr<uint64_t>(j, "bytes_new", 0);
    m.bytes_packed = JsonIntOr<uint64_t>(j, "bytes_packed", 0);
    m.problems = JsonIntOr<uint64_t>(j, "problems", 0);
    m.stats_json = j.value("stats", nlohmann::json::object()).dump();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed snapshot header: ") + e.what(), path);
  }
  return m;
}

std::string EncodeSnapshot(const Snapshot& snap) {
  // Records are encoded in batches and compressed as they go (memory: no whole raw body).
  // Invalid UTF-8 (Maildir names may be any bytes) is replaced in the header's display fields.
  SealWriter seal(
      kSnapMagic,
      MetaToJson(snap.meta).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 3);
  Encoder enc;
  enc.U(snap.files.size());
  std::string_view prev;
  for (const auto& f : snap.files) {
    if (enc.buf().size() > (1u << 20)) {
      seal.Append(enc.buf());
      enc.buf().clear();
    }
    size_t shared = 0;
    while (shared < prev.size() && shared < f.path.size() && prev[shared] == f.path[shared])
      shared++;
    enc.U(shared);
    enc.Str(std::string_view(f.path).substr(shared));
    prev = f.path;
    uint32_t flags = f.flags & ~(kFlagXattrs | kFlagContentIsBlob);
    if (!f.xattrs.empty() && f.type != FileType::kSymlink) flags |= kFlagXattrs;
    if (f.type != FileType::kRegular) flags &= ~kFlagHardLink;
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
      if (flags & kFlagHardLink) enc.Str(f.link_target);
    }
    if (flags & kFlagXattrs) {
      enc.U(f.xattrs.size());
      for (const auto& x : f.xattrs) {
        enc.Str(x.name);
        enc.Str(x.value);
      }
    }
  }
  seal.Append(enc.buf());
  return seal.Finish();
}

namespace {

// One manifest record as it is in the body (§7): views into the body, nothing copied.
struct RawRecord {
  std::string_view path;  // valid until the next record (reconstructed from the prefix)
  FileType type;
  uint32_t flags, mode, uid, gid;
  uint64_t size, dev, ino;
  int64_t mtime_ns, ctime_ns;
  std::string_view link_target;  // symlink target, or a hard link's first path
  std::string_view xattrs;  // kFlagXattrs: the encoded list (U count, then Str name, Str value)
  uint64_t xattr_count = 0;
  const char* blob_bytes = nullptr;  // blob_count consecutive 16-byte IDs
  uint64_t blob_count = 0;
  BlobId content;
};

// Decodes the body's records in order, calling sink(const RawRecord&) for each. The single
// decoder of the record format: DecodeSnapshot and EntryTable both use it.
template <class Sink>
Result<SnapshotMeta> ForEachRecord(std::string_view data, const std::string& path, uint64_t* count,
                                   Sink&& sink) {
  MV_ASSIGN_OR_RETURN(Sealed s, Unseal(data, kSnapMagic, path, kSnapOldestVersion));
  MV_ASSIGN_OR_RETURN(SnapshotMeta meta, DecodeSnapshotHeader(s.header, path));
  Decoder dec(s.body);
  uint64_t n = dec.U();
  // Every record takes at least kMinRecordBytes of the body: a count beyond that is damage, and
  // callers may reserve memory for `count` records.
  constexpr uint64_t kMinRecordBytes = 12;
  if (!dec.ok() || n > s.body.size() / kMinRecordBytes)
    return Status::Corruption("bad file count", path);
  *count = n;
  std::string cur;
  RawRecord r{};
  for (uint64_t i = 0; i < n; i++) {
    uint64_t shared = dec.U();
    std::string_view suffix = dec.Str();
    if (!dec.ok() || shared > cur.size()) return Status::Corruption("bad path record", path);
    cur.resize(shared);
    cur.append(suffix);
    r.path = cur;
    r.type = static_cast<FileType>(dec.U());
    uint32_t flags = static_cast<uint32_t>(dec.U());
    r.flags = flags & ~kFlagContentIsBlob;
    r.mode = static_cast<uint32_t>(dec.U());
    r.uid = static_cast<uint32_t>(dec.U());
    r.gid = static_cast<uint32_t>(dec.U());
    r.size = dec.U();
    r.mtime_ns = dec.S();
    r.ctime_ns = dec.S();
    r.dev = dec.U();
    r.ino = dec.U();
    r.link_target = {};
    r.blob_count = 0;
    r.content = BlobId{};
    if (r.type == FileType::kSymlink) r.link_target = dec.Str();
    if (r.type == FileType::kRegular) {
      r.blob_count = dec.U();
      if (!dec.ok() || r.blob_count > s.body.size() / 16)
        return Status::Corruption("bad blob count", path);
      std::string_view ids = dec.Raw(r.blob_count * 16);
      if (!dec.ok()) return Status::Corruption("manifest body is cut short", path);
      r.blob_bytes = ids.data();
      if ((flags & kFlagContentIsBlob) && r.blob_count != 1)
        return Status::Corruption("bad blob list", path);
      if (flags & kFlagContentIsBlob)
        std::memcpy(r.content.bytes.data(), r.blob_bytes, 16);
      else
        r.content = dec.Id();
      if (flags & kFlagHardLink) r.link_target = dec.Str();
    } else if (r.type != FileType::kDirectory && r.type != FileType::kSymlink) {
      return Status::Corruption("unknown entry type for " + cur, path);
    }
    r.xattrs = {};
    r.xattr_count = 0;
    if (flags & kFlagXattrs) {  // kept as encoded bytes; only DecodeSnapshot splits them
      std::string_view rest = std::string_view(s.body).substr(s.body.size() - dec.remaining());
      r.xattr_count = dec.U();
      if (r.xattr_count > s.body.size())
        return Status::Corruption("bad xattr count for " + cur, path);
      for (uint64_t k = 0; k < 2 * r.xattr_count && dec.ok(); k++) dec.Str();
      r.xattrs = rest.substr(0, rest.size() - dec.remaining());
    }
    if (!dec.ok()) return Status::Corruption("manifest body is cut short", path);
    sink(r);
  }
  if (!dec.done()) return Status::Corruption("trailing bytes in manifest body", path);
  return meta;
}

}  // namespace

Result<Snapshot> DecodeSnapshot(std::string_view data, const std::string& path) {
  Snapshot snap;
  uint64_t n = 0;
  auto meta = ForEachRecord(data, path, &n, [&](const RawRecord& r) {
    if (snap.files.empty()) snap.files.reserve(n);
    FileEntry& f = snap.files.emplace_back();
    f.path.assign(r.path);
    f.type = r.type;
    f.flags = r.flags;
    f.mode = r.mode;
    f.uid = r.uid;
    f.gid = r.gid;
    f.size = r.size;
    f.mtime_ns = r.mtime_ns;
    f.ctime_ns = r.ctime_ns;
    f.dev = r.dev;
    f.ino = r.ino;
    f.link_target.assign(r.link_target);
    f.blobs.resize(r.blob_count);
    if (r.blob_count) std::memcpy(f.blobs.data(), r.blob_bytes, r.blob_count * 16);
    f.content = r.content;
    if (r.xattr_count) {
      Decoder x(r.xattrs);
      x.U();
      f.xattrs.resize(r.xattr_count);
      for (auto& a : f.xattrs) {
        a.name.assign(x.Str());
        a.value.assign(x.Str());
      }
    }
  });
  if (!meta.ok()) return meta.status();
  snap.meta = std::move(meta).value();
  return snap;
}

Result<EntryTable> EntryTable::Decode(std::string_view data, const std::string& path) {
  EntryTable t;
  uint64_t n = 0;
  auto meta = ForEachRecord(data, path, &n, [&](const RawRecord& r) {
    if (t.rows_.empty()) {
      t.rows_.reserve(n);
      t.blobs_.reserve(n);
      t.paths_.reserve(n * 96);  // typical Maildir path length; grows if longer
    }
    Row& row = t.rows_.emplace_back();
    row.size = r.size;
    row.dev = r.dev;
    row.ino = r.ino;
    row.mtime_ns = r.mtime_ns;
    row.ctime_ns = r.ctime_ns;
    row.path_off = static_cast<uint32_t>(t.paths_.size());
    row.path_len = static_cast<uint32_t>(r.path.size());
    t.paths_.append(r.path);
    row.blob_off = static_cast<uint32_t>(t.blobs_.size());
    row.blob_count = static_cast<uint32_t>(r.blob_count);
    for (uint64_t b = 0; b < r.blob_count; b++) {
      BlobId id;
      std::memcpy(id.bytes.data(), r.blob_bytes + 16 * b, 16);
      t.blobs_.push_back(id);
    }
    row.flags = r.flags;
    row.type = r.type;
    row.content = r.content;
  });
  if (!meta.ok()) return meta.status();
  return t;
}

}  // namespace mv::storage
