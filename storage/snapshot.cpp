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
// Written with version 3 (tree records, §7.5); the flat versions 1 and 2 still read, and version
// 2 is still written for a snapshot given as a flat list (tests and tools).
constexpr std::string_view kSnapMagic{"MVSNAPS\x03", 8};
constexpr std::string_view kSnapMagicV2{"MVSNAPS\x02", 8};
constexpr uint8_t kSnapOldestVersion = 1;
constexpr uint64_t kTreeRecordVersion = 1;
constexpr uint32_t kFlagContentIsBlob = 1u << 31;  // body only: content == blobs[0]

nlohmann::json CensusToJson(const std::vector<CensusRow>& census) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : census)
    a.push_back({{"source", c.source},
                 {"mailbox", c.mailbox},
                 {"folder", c.folder},
                 {"messages", c.messages},
                 {"bytes", c.bytes},
                 {"digest", c.digest}});
  return a;
}

// Throws (nlohmann::json) on a malformed row; callers turn that into kCorruption.
std::vector<CensusRow> CensusFromJson(const nlohmann::json& a) {
  std::vector<CensusRow> out;
  for (const auto& c : a)
    out.push_back({c.at("source"), c.at("mailbox"), c.at("folder"),
                   JsonIntAt<uint64_t>(c, "messages"), JsonIntAt<uint64_t>(c, "bytes"),
                   c.at("digest")});
  return out;
}

nlohmann::json MetaToJson(const SnapshotMeta& m, int version) {
  nlohmann::json j;
  j["kind"] = "snapshot";
  j["version"] = version;
  j["id"] = m.id;
  j["time"] = m.time;
  j["time_ns"] = m.time_ns;
  j["host"] = m.host;
  j["parent"] = m.parent;
  j["tags"] = m.tags;
  j["sources"] = nlohmann::json::array();
  for (const auto& s : m.sources) j["sources"].push_back({{"name", s.name}, {"path", s.path}});
  if (version < 3) j["census"] = CensusToJson(m.census);  // version 3: in the body (§7)
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

// The fields of one record after its path or name (§7): type, flags, stat, then by type the
// symlink target or the blob list, a directory's tree (version 3 tree records only), xattrs.
void EncodeFields(Encoder& enc, const FileEntry& f, bool with_tree = false) {
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
  if (with_tree && f.type == FileType::kDirectory) enc.Id(f.tree);
  if (flags & kFlagXattrs) {
    enc.U(f.xattrs.size());
    for (const auto& x : f.xattrs) {
      enc.Str(x.name);
      enc.Str(x.value);
    }
  }
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
    // A version-3 manifest holds its census in its body (DecodeSnapshot reads it).
    if (JsonIntOr<int>(j, "version", 1) < 3) m.census = CensusFromJson(j.at("census"));
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
  // Invalid UTF-8 (Maildir names may be any bytes) is replaced in the header's display fields.
  auto header = [&](int version) {
    return MetaToJson(snap.meta, version)
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  if (!snap.tree.IsZero()) {  // version 3: the entries are in tree records (§7.5)
    Encoder enc;
    enc.Id(snap.tree);
    enc.Str(CensusToJson(snap.meta.census)
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return Seal(kSnapMagic, header(3), enc.buf(), 3);
  }
  // Version 2, one flat list: records are encoded in batches and compressed as they go (memory:
  // no whole raw body).
  SealWriter seal(kSnapMagicV2, header(2), 3);
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
    EncodeFields(enc, f);
  }
  seal.Append(enc.buf());
  return seal.Finish();
}

namespace {
template <class Deref, class List>
std::string EncodeTreeOf(const List& children, Deref deref) {
  Encoder enc;
  enc.U(kTreeRecordVersion);
  enc.U(children.size());
  for (const auto& c : children) {
    const FileEntry& f = deref(c);
    std::string_view p = f.path;
    enc.Str(p.substr(p.find_last_of('/') + 1));
    EncodeFields(enc, f, /*with_tree=*/true);
  }
  return std::move(enc.buf());
}
}  // namespace

std::string EncodeTree(std::span<const FileEntry> children) {
  return EncodeTreeOf(children, [](const FileEntry& f) -> const FileEntry& { return f; });
}
std::string EncodeTree(std::span<const FileEntry* const> children) {
  return EncodeTreeOf(children, [](const FileEntry* f) -> const FileEntry& { return *f; });
}

namespace {

// One record as it is in the body (§7) or a tree record (§7.5): views into the input.
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
  BlobId tree;  // directories in tree records
};

// Decodes the fields after the path or name (the inverse of EncodeFields). `in` is the whole
// input (counts are checked against its size); `name` is only for messages.
Status DecodeFields(Decoder& dec, std::string_view in, bool with_tree, std::string_view name,
                    const std::string& path, RawRecord* r) {
  r->type = static_cast<FileType>(dec.U());
  uint32_t flags = static_cast<uint32_t>(dec.U());
  r->flags = flags & ~kFlagContentIsBlob;
  r->mode = static_cast<uint32_t>(dec.U());
  r->uid = static_cast<uint32_t>(dec.U());
  r->gid = static_cast<uint32_t>(dec.U());
  r->size = dec.U();
  r->mtime_ns = dec.S();
  r->ctime_ns = dec.S();
  r->dev = dec.U();
  r->ino = dec.U();
  r->link_target = {};
  r->blob_count = 0;
  r->content = BlobId{};
  r->tree = BlobId{};
  if (r->type == FileType::kSymlink) r->link_target = dec.Str();
  if (r->type == FileType::kRegular) {
    r->blob_count = dec.U();
    if (!dec.ok() || r->blob_count > in.size() / 16)
      return Status::Corruption("bad blob count", path);
    std::string_view ids = dec.Raw(r->blob_count * 16);
    if (!dec.ok()) return Status::Corruption("manifest body is cut short", path);
    r->blob_bytes = ids.data();
    if ((flags & kFlagContentIsBlob) && r->blob_count != 1)
      return Status::Corruption("bad blob list", path);
    if (flags & kFlagContentIsBlob)
      std::memcpy(r->content.bytes.data(), r->blob_bytes, 16);
    else
      r->content = dec.Id();
    if (flags & kFlagHardLink) r->link_target = dec.Str();
  } else if (r->type == FileType::kDirectory) {
    if (with_tree) r->tree = dec.Id();
  } else if (r->type != FileType::kSymlink) {
    return Status::Corruption("unknown entry type for " + std::string(name), path);
  }
  r->xattrs = {};
  r->xattr_count = 0;
  if (flags & kFlagXattrs) {  // kept as encoded bytes; only ToEntry splits them
    std::string_view rest = in.substr(in.size() - dec.remaining());
    r->xattr_count = dec.U();
    if (r->xattr_count > in.size())
      return Status::Corruption("bad xattr count for " + std::string(name), path);
    for (uint64_t k = 0; k < 2 * r->xattr_count && dec.ok(); k++) dec.Str();
    r->xattrs = rest.substr(0, rest.size() - dec.remaining());
  }
  if (!dec.ok()) return Status::Corruption("manifest body is cut short", path);
  return Status::Ok();
}

void ToEntry(const RawRecord& r, FileEntry& f) {
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
  f.tree = r.tree;
  f.xattrs.clear();
  if (r.xattr_count) {
    Decoder x(r.xattrs);
    x.U();
    f.xattrs.resize(r.xattr_count);
    for (auto& a : f.xattrs) {
      a.name.assign(x.Str());
      a.value.assign(x.Str());
    }
  }
}

// Every record takes at least kMinRecordBytes: a count beyond that is damage, and callers may
// reserve memory for `count` records.
constexpr uint64_t kMinRecordBytes = 12;

// Unseals a manifest. A version-3 one sets *root (its body is the root tree's ID); a flat one
// (versions 1-2) calls sink(const RawRecord&) for each record in order: the single decoder of
// the flat format, used by DecodeSnapshot and EntryTable.
template <class Sink>
Result<SnapshotMeta> ForEachRecord(std::string_view data, const std::string& path, uint64_t* count,
                                   BlobId* root, Sink&& sink) {
  MV_ASSIGN_OR_RETURN(Sealed s, Unseal(data, kSnapMagic, path, kSnapOldestVersion));
  MV_ASSIGN_OR_RETURN(SnapshotMeta meta, DecodeSnapshotHeader(s.header, path));
  Decoder dec(s.body);
  if (s.version >= 3) {
    *root = dec.Id();
    std::string_view census = dec.Str();
    if (!dec.ok() || !dec.done() || root->IsZero())
      return Status::Corruption("bad root tree ID or census in manifest body", path);
    try {
      meta.census = CensusFromJson(nlohmann::json::parse(census));
    } catch (const std::exception& e) {
      return Status::Corruption(std::string("malformed census in manifest body: ") + e.what(),
                                path);
    }
    *count = 0;
    return meta;
  }
  uint64_t n = dec.U();
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
    MV_RETURN_IF_ERROR(DecodeFields(dec, s.body, false, cur, path, &r));
    sink(r);
  }
  if (!dec.done()) return Status::Corruption("trailing bytes in manifest body", path);
  return meta;
}

}  // namespace

namespace {

// The one decoder of tree records (§7.5): calls start(entry_count) once, then sink(name, const
// RawRecord&) for each entry, with r.path set by `path_of(name)` (the full path, or the name
// where no caller needs more).
template <class Start, class PathOf, class Sink>
Status ForEachTreeRecord(std::string_view data, std::string_view dir, const std::string& where,
                         Start&& start, PathOf&& path_of, Sink&& sink) {
  Decoder dec(data);
  uint64_t version = dec.U();
  if (!dec.ok() || version != kTreeRecordVersion)
    return Status::Corruption(
        "tree record of '" + std::string(dir) + "' has unknown version " + std::to_string(version),
        where);
  uint64_t n = dec.U();
  if (!dec.ok() || n > data.size() / kMinRecordBytes)
    return Status::Corruption("bad entry count in the tree record of '" + std::string(dir) + "'",
                              where);
  start(n);
  std::string_view prev_name;
  RawRecord r{};
  for (uint64_t i = 0; i < n; i++) {
    std::string_view name = dec.Str();
    if (!dec.ok() || name.empty() || name.find('/') != std::string_view::npos || name == "." ||
        name == ".." || (i > 0 && name <= prev_name))
      return Status::Corruption(
          "bad or unsorted entry name in the tree record of '" + std::string(dir) + "'", where);
    prev_name = name;
    r.path = path_of(name);
    MV_RETURN_IF_ERROR(DecodeFields(dec, data, true, r.path, where, &r));
    if (r.type == FileType::kDirectory && r.tree.IsZero())
      return Status::Corruption("directory '" + std::string(dir) + (dir.empty() ? "" : "/") +
                                    std::string(name) + "' has no tree record",
                                where);
    MV_RETURN_IF_ERROR(sink(name, r));
  }
  if (!dec.done())
    return Status::Corruption("trailing bytes in the tree record of '" + std::string(dir) + "'",
                              where);
  return Status::Ok();
}

}  // namespace

Status DecodeTree(std::string_view data, std::string_view dir, const std::string& where,
                  std::vector<FileEntry>* out) {
  std::string full;
  return ForEachTreeRecord(
      data, dir, where, [&](uint64_t n) { out->reserve(out->size() + n); },
      [&](std::string_view name) -> std::string_view {
        full.assign(dir);
        if (!full.empty()) full += '/';
        full.append(name);
        return full;
      },
      [&](std::string_view, const RawRecord& r) {
        ToEntry(r, out->emplace_back());
        return Status::Ok();
      });
}

BlobId TreeItem::FirstBlob() const {
  BlobId b;
  if (blobs.size() >= 16) std::memcpy(b.bytes.data(), blobs.data(), 16);
  return b;
}

Status ForEachTreeItem(std::string_view data, std::string_view dir, const std::string& where,
                       const std::function<Status(const TreeItem&)>& fn) {
  TreeItem item;
  return ForEachTreeRecord(
      data, dir, where, [](uint64_t) {}, [](std::string_view name) { return name; },
      [&](std::string_view name, const RawRecord& r) {
        item.name = name;
        item.type = r.type;
        item.size = r.size;
        item.content = r.content;
        item.tree = r.tree;
        item.blobs =
            r.blob_bytes ? std::string_view(r.blob_bytes, r.blob_count * 16) : std::string_view();
        return fn(item);
      });
}

Result<Snapshot> DecodeSnapshot(std::string_view data, const std::string& path) {
  Snapshot snap;
  uint64_t n = 0;
  auto meta = ForEachRecord(data, path, &n, &snap.tree, [&](const RawRecord& r) {
    if (snap.files.empty()) snap.files.reserve(n);
    ToEntry(r, snap.files.emplace_back());
  });
  if (!meta.ok()) return meta.status();
  snap.meta = std::move(meta).value();
  return snap;
}

void EntryTable::Add(const FileEntry& f) {
  Row& row = rows_.emplace_back();
  row.size = f.size;
  row.dev = f.dev;
  row.ino = f.ino;
  row.mtime_ns = f.mtime_ns;
  row.ctime_ns = f.ctime_ns;
  row.path_off = static_cast<uint32_t>(paths_.size());
  row.path_len = static_cast<uint32_t>(f.path.size());
  paths_.append(f.path);
  row.blob_off = static_cast<uint32_t>(blobs_.size());
  row.blob_count = static_cast<uint32_t>(f.blobs.size());
  blobs_.insert(blobs_.end(), f.blobs.begin(), f.blobs.end());
  row.flags = f.flags;
  row.type = f.type;
  row.content = f.content;
}

Result<EntryTable> EntryTable::Decode(std::string_view data, const std::string& path,
                                      BlobId* root) {
  EntryTable t;
  uint64_t n = 0;
  BlobId tree;
  auto meta = ForEachRecord(data, path, &n, &tree, [&](const RawRecord& r) {
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
  if (root) *root = tree;
  return t;
}

}  // namespace mv::storage
