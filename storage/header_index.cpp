// docs/FORMAT.md §15.
#include "storage/header_index.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "storage/fs.h"
#include "storage/json_number.h"
#include "storage/layout.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

constexpr std::string_view kMagic{"MVHEADR\x01", 8};

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Status RaiseConfigVersionTo(const Repository& repo, int version) {
  std::string path = repo.backend().Describe("config");
  MV_ASSIGN_OR_RETURN(std::string text, repo.backend().Read("config"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
    return Status::Corruption("config has no version; restore config from a copy", path);
  if (j["version"].get<int64_t>() >= version) return Status::Ok();
  j["version"] = version;
  return repo.backend().Overwrite("config", j.dump(2) + "\n");
}

Status RecordHeaders(const Repository& repo, int64_t now_ns,
                     const std::vector<MessageHeaders>& messages) {
  if (messages.empty()) return Status::Ok();
  MV_RETURN_IF_ERROR(RaiseConfigVersionTo(repo, kHeadersFormatVersion));
  // The body is written as text, not built as a json value: a record of 10,000 messages as
  // json objects costs several times its size, and a backup holds one while it runs.
  std::string body = "{\"messages\":[";
  auto field = [&body](const char* key, const std::string& v) {
    if (v.empty()) return;
    body += ",\"";
    body += key;
    body += "\":";
    body += Dump(v);
  };
  for (size_t i = 0; i < messages.size(); i++) {
    const MessageHeaders& m = messages[i];
    if (i) body += ',';
    body += "{\"c\":\"" + m.content.Hex() + "\",\"s\":" + std::to_string(m.size);
    field("d", m.date);
    if (m.date_unix) body += ",\"t\":" + std::to_string(m.date_unix);
    field("f", m.from);
    field("r", m.to);
    field("j", m.subject);
    field("m", m.message_id);
    body += '}';
  }
  body += "]}";
  nlohmann::json h = {
      {"kind", "headers"}, {"version", 1}, {"time_ns", now_ns}, {"messages", messages.size()}};
  return repo.backend().Put("headers/" + fs::RandomHex(8), Seal(kMagic, Dump(h), body));
}

Result<std::vector<MessageHeaders>> DecodeHeaderRecord(std::string_view data,
                                                       const std::string& path) {
  MV_ASSIGN_OR_RETURN(auto sealed, Unseal(data, kMagic, path));
  try {
    auto h = nlohmann::json::parse(sealed.header);
    if (h.at("kind") != "headers") return Status::Corruption("not a header record", path);
    auto body = nlohmann::json::parse(sealed.body);
    std::vector<MessageHeaders> out;
    for (const auto& e : body.at("messages")) {
      MessageHeaders m;
      if (!BlobId::FromHex(e.at("c").get<std::string>(), &m.content))
        throw std::runtime_error("a content ID is not 32 hex digits");
      m.size = JsonIntAt<uint64_t>(e, "s");
      m.date = e.value("d", "");
      m.date_unix = e.contains("t") ? JsonIntAt<int64_t>(e, "t") : 0;
      m.from = e.value("f", "");
      m.to = e.value("r", "");
      m.subject = e.value("j", "");
      m.message_id = e.value("m", "");
      out.push_back(std::move(m));
    }
    if (out.size() != JsonIntAt<uint64_t>(h, "messages"))
      return Status::Corruption("header record lists " + std::to_string(out.size()) +
                                    " messages, its header says " + h.at("messages").dump(),
                                path);
    return out;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("header record: ") + e.what(), path);
  }
}

Status ForEachRecordedHeaders(const Repository& repo,
                              const std::function<void(MessageHeaders&&)>& fn,
                              std::vector<std::string>* damaged) {
  MV_ASSIGN_OR_RETURN(auto names, ListNames(repo.backend(), "headers"));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (layout::IsTempName(n) || !layout::IsHeadersName(n)) continue;
    std::string p = repo.backend().Describe("headers/" + n);
    auto data = repo.backend().Read("headers/" + n);
    if (!data.ok()) {
      damaged->push_back(data.status().ToString());
      continue;
    }
    auto r = DecodeHeaderRecord(*data, p);
    if (!r.ok()) {
      damaged->push_back(r.status().ToString());
      continue;
    }
    for (auto& m : *r) fn(std::move(m));
  }
  return Status::Ok();
}

Status CopyHeaderRecords(const Repository& from, const Repository& to, uint64_t* copied) {
  MV_ASSIGN_OR_RETURN(auto src, ListNames(from.backend(), "headers"));
  MV_ASSIGN_OR_RETURN(auto dst, ListNames(to.backend(), "headers"));
  std::sort(dst.begin(), dst.end());
  bool raised = false;
  for (const auto& n : src) {
    if (layout::IsTempName(n) || !layout::IsHeadersName(n) ||
        std::binary_search(dst.begin(), dst.end(), n))
      continue;
    MV_ASSIGN_OR_RETURN(std::string data, from.backend().Read("headers/" + n));
    // Decoded first: a damaged record is not spread to the copy.
    MV_RETURN_IF_ERROR(DecodeHeaderRecord(data, from.backend().Describe("headers/" + n)).status());
    if (!raised) MV_RETURN_IF_ERROR(RaiseConfigVersionTo(to, kHeadersFormatVersion));
    raised = true;
    MV_RETURN_IF_ERROR(to.backend().Put("headers/" + n, data));
    (*copied)++;
  }
  return Status::Ok();
}

}  // namespace mv::storage
