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
  nlohmann::json list = nlohmann::json::array();
  for (const auto& m : messages) {
    nlohmann::json e = {{"c", m.content.Hex()}, {"s", m.size}};
    if (!m.date.empty()) e["d"] = m.date;
    if (m.date_unix) e["t"] = m.date_unix;
    if (!m.from.empty()) e["f"] = m.from;
    if (!m.to.empty()) e["r"] = m.to;
    if (!m.subject.empty()) e["j"] = m.subject;
    if (!m.message_id.empty()) e["m"] = m.message_id;
    list.push_back(std::move(e));
  }
  nlohmann::json h = {
      {"kind", "headers"}, {"version", 1}, {"time_ns", now_ns}, {"messages", messages.size()}};
  nlohmann::json body = {{"messages", std::move(list)}};
  return repo.backend().Put("headers/" + fs::RandomHex(8), Seal(kMagic, Dump(h), Dump(body)));
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

}  // namespace mv::storage
