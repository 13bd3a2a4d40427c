// docs/FORMAT.md §12.
#include "storage/held_mail.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "storage/fs.h"
#include "storage/json_number.h"
#include "storage/layout.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

constexpr std::string_view kMagic{"MVHELDM\x01", 8};

nlohmann::json Encode(const HeldMessage& m) {
  nlohmann::json blobs = nlohmann::json::array();
  for (const auto& b : m.entry.blobs) blobs.push_back(b.Hex());
  return {{"path", m.entry.path},
          {"mode", m.entry.mode},
          {"uid", m.entry.uid},
          {"gid", m.entry.gid},
          {"size", m.entry.size},
          {"mtime_ns", m.entry.mtime_ns},
          {"content", m.entry.content.Hex()},
          {"blobs", blobs},
          {"source_path", m.source_path},
          {"mailbox", m.mailbox},
          {"folder", m.folder},
          {"name", m.name},
          {"snapshot", m.snapshot},
          {"last_seen_ns", m.last_seen_ns},
          {"expires_ns", m.expires_ns}};
}

// "<source>/<rel>": no empty, "." or ".." component, no NUL (the restorer refuses such paths
// anyway; a record that has one is not a record this build wrote).
bool RelativePath(const std::string& p) {
  if (p.empty() || p.find('\0') != std::string::npos) return false;
  for (size_t i = 0;;) {
    size_t e = p.find('/', i);
    std::string_view c(p.data() + i, (e == std::string::npos ? p.size() : e) - i);
    if (c.empty() || c == "." || c == "..") return false;
    if (e == std::string::npos) return true;
    i = e + 1;
  }
}

BlobId IdAt(const nlohmann::json& j, const char* key) {
  BlobId id;
  if (!BlobId::FromHex(j.at(key).get<std::string>(), &id))
    throw std::runtime_error(std::string("'") + key + "' is not a blob ID");
  return id;
}

HeldMessage DecodeMessage(const nlohmann::json& j) {
  HeldMessage m;
  m.entry.path = j.at("path").get<std::string>();
  if (!RelativePath(m.entry.path))
    throw std::runtime_error("message path '" + m.entry.path +
                             "' is not a relative path without '.' or '..' components");
  m.entry.type = FileType::kRegular;
  m.entry.mode = JsonIntAt<uint32_t>(j, "mode") & 07777;
  m.entry.uid = JsonIntAt<uint32_t>(j, "uid");
  m.entry.gid = JsonIntAt<uint32_t>(j, "gid");
  m.entry.size = JsonIntAt<uint64_t>(j, "size");
  m.entry.mtime_ns = JsonIntAt<int64_t>(j, "mtime_ns");
  m.entry.content = IdAt(j, "content");
  for (const auto& b : j.at("blobs")) {
    BlobId id;
    if (!b.is_string() || !BlobId::FromHex(b.get<std::string>(), &id))
      throw std::runtime_error("a blob of '" + m.entry.path + "' is not a blob ID");
    m.entry.blobs.push_back(id);
  }
  m.source_path = j.value("source_path", "");
  m.mailbox = j.at("mailbox").get<std::string>();
  m.folder = j.at("folder").get<std::string>();
  m.name = j.at("name").get<std::string>();
  m.snapshot = j.at("snapshot").get<std::string>();
  m.last_seen_ns = JsonIntAt<int64_t>(j, "last_seen_ns");
  m.expires_ns = JsonIntAt<int64_t>(j, "expires_ns");
  return m;
}

Result<HeldRecord> Decode(std::string_view data, const std::string& path) {
  MV_ASSIGN_OR_RETURN(auto sealed, Unseal(data, kMagic, path));
  try {
    auto h = nlohmann::json::parse(sealed.header);
    if (h.at("kind") != "held-mail") return Status::Corruption("not a held mail record", path);
    HeldRecord r;
    r.path = path;
    r.time_ns = JsonIntAt<int64_t>(h, "time_ns");
    auto body = nlohmann::json::parse(sealed.body);
    for (const auto& m : body.at("messages")) r.messages.push_back(DecodeMessage(m));
    if (r.messages.size() != JsonIntAt<uint64_t>(h, "messages"))
      return Status::Corruption("held mail record lists " + std::to_string(r.messages.size()) +
                                    " messages, its header says " + h.at("messages").dump(),
                                path);
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("held mail record: ") + e.what(), path);
  }
}

}  // namespace

Result<HeldRecord> DecodeHeldRecord(std::string_view data, const std::string& path) {
  return Decode(data, path);
}

int64_t HeldRecord::expires_ns() const {
  int64_t t = 0;
  for (const auto& m : messages) t = std::max(t, m.expires_ns);
  return t;
}

Status RaiseConfigVersion(const Repository& repo) {
  std::string path = repo.backend().Describe("config");
  MV_ASSIGN_OR_RETURN(std::string text, repo.backend().Read("config"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
    return Status::Corruption("config has no version; restore config from a copy", path);
  if (j["version"].get<int64_t>() >= kHeldMailFormatVersion) return Status::Ok();
  j["version"] = kHeldMailFormatVersion;
  return repo.backend().Overwrite("config", j.dump(2) + "\n");
}

Status RecordHeldMail(const Repository& repo, int64_t now_ns,
                      const std::vector<HeldMessage>& messages) {
  if (messages.empty()) return Status::Ok();
  MV_RETURN_IF_ERROR(RaiseConfigVersion(repo));
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0;
  for (const auto& m : messages) {
    list.push_back(Encode(m));
    bytes += m.entry.size;
  }
  nlohmann::json h = {{"kind", "held-mail"},
                      {"version", 1},
                      {"time_ns", now_ns},
                      {"messages", messages.size()},
                      {"bytes", bytes}};
  nlohmann::json body = {{"messages", std::move(list)}};
  // Names from the store are raw bytes: invalid UTF-8 is replaced rather than thrown on (the
  // restore then names such a message by its replaced path; its content is exact).
  auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  return repo.backend().Put("held/" + fs::RandomHex(8), Seal(kMagic, dump(h), dump(body)));
}

Result<std::vector<HeldRecord>> LoadHeldMail(const Repository& repo,
                                             std::vector<std::string>* damaged) {
  std::vector<HeldRecord> out;
  MV_ASSIGN_OR_RETURN(auto names, ListNames(repo.backend(), "held"));
  for (const auto& n : names) {
    if (layout::IsTempName(n) || !layout::IsHeldName(n)) continue;
    std::string p = repo.backend().Describe("held/" + n);
    auto data = repo.backend().Read("held/" + n);
    if (!data.ok()) {
      if (data.status().code() == Code::kNotFound) continue;  // expired and removed meanwhile
      damaged->push_back(data.status().ToString());
      continue;
    }
    auto r = Decode(*data, p);
    if (!r.ok()) {
      damaged->push_back(r.status().ToString());
      continue;
    }
    out.push_back(std::move(*r));
  }
  return out;
}

Status RemoveHeldRecord(const Repository& repo, const std::string& path) {
  // `path` is the record's Describe()d name: its last component is its name in held/.
  std::string name = "held/" + path.substr(path.rfind('/') + 1);
  MV_RETURN_IF_ERROR(repo.backend().Delete(name));
  return repo.backend().SyncDir("held");
}

HeldSummary SummarizeHeld(const std::vector<HeldRecord>& records, int64_t now_ns) {
  HeldSummary s;
  for (const auto& r : records)
    for (const auto& m : r.messages) {
      if (m.expires_ns <= now_ns) continue;
      s.messages++;
      s.bytes += m.entry.size;
      if (!s.first_expiry_ns || m.expires_ns < s.first_expiry_ns) s.first_expiry_ns = m.expires_ns;
      s.last_expiry_ns = std::max(s.last_expiry_ns, m.expires_ns);
    }
  return s;
}

}  // namespace mv::storage
