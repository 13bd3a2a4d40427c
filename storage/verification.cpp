#include "storage/verification.h"

#include <nlohmann/json.hpp>

#include "storage/fs.h"
#include "storage/json_number.h"
#include "storage/layout.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

constexpr std::string_view kMagic{"MVPROOF\x01", 8};

Result<Verification> Decode(const std::string& data, const std::string& path,
                            const std::string& snapshot) {
  MV_ASSIGN_OR_RETURN(auto sealed, Unseal(data, kMagic, path));
  try {
    auto h = nlohmann::json::parse(sealed.header);
    if (h.at("kind") != "verification")
      return Status::Corruption("not a verification record", path);
    Verification v;
    v.snapshot = h.at("snapshot").get<std::string>();
    if (v.snapshot != snapshot)
      return Status::Corruption(
          "record names snapshot " + v.snapshot + ", its file name " + snapshot, path);
    v.time = JsonIntAt<int64_t>(h, "time");
    v.ok = h.at("ok").get<bool>();
    v.partial = h.value("partial", false);
    v.files = JsonIntOr<uint64_t>(h, "files", 0);
    v.messages = JsonIntOr<uint64_t>(h, "messages", 0);
    v.host = h.value("host", "");
    v.summary = h.value("summary", "");
    return v;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("verification record: ") + e.what(), path);
  }
}

}  // namespace

Status RecordVerification(const Repository& repo, const Verification& v) {
  nlohmann::json h = {{"kind", "verification"},
                      {"version", 1},
                      {"snapshot", v.snapshot},
                      {"time", v.time},
                      {"ok", v.ok},
                      {"partial", v.partial},
                      {"files", v.files},
                      {"messages", v.messages},
                      {"host", v.host},
                      {"summary", v.summary}};
  std::string name = "verifications/" + v.snapshot + "-" + fs::RandomHex(8);
  // Errors are replaced by "?" rather than thrown: a summary quotes file names from the store.
  std::string header = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return repo.backend().Put(name, Seal(kMagic, header, ""));
}

Result<std::map<std::string, Verification>> LoadVerifications(const Repository& repo,
                                                              std::vector<std::string>* damaged) {
  std::map<std::string, Verification> out;
  MV_ASSIGN_OR_RETURN(auto names, ListNames(repo.backend(), "verifications"));
  for (const auto& n : names) {
    std::string snapshot;
    if (layout::IsTempName(n) || !layout::ParseVerificationName(n, &snapshot)) continue;
    std::string p = repo.backend().Describe("verifications/" + n);
    auto data = repo.backend().Read("verifications/" + n);
    if (!data.ok()) {
      if (data.status().code() == Code::kNotFound) continue;  // forgotten meanwhile
      if (damaged) damaged->push_back(data.status().ToString());
      continue;
    }
    auto v = Decode(*data, p, snapshot);
    if (!v.ok()) {
      if (damaged) damaged->push_back(v.status().ToString());
      continue;
    }
    auto [it, fresh] = out.try_emplace(snapshot, *v);
    if (!fresh && v->time >= it->second.time) it->second = std::move(*v);
  }
  return out;
}

Status RemoveVerifications(const Repository& repo, const std::string& snapshot) {
  MV_ASSIGN_OR_RETURN(auto names, ListNames(repo.backend(), "verifications"));
  bool removed = false;
  for (const auto& n : names) {
    std::string s;
    if (!layout::ParseVerificationName(n, &s) || s != snapshot) continue;
    Status st = repo.backend().Delete("verifications/" + n);
    if (!st.ok() && st.code() != Code::kNotFound) return st;
    removed = true;
  }
  return removed ? repo.backend().SyncDir("verifications") : Status::Ok();
}

}  // namespace mv::storage
