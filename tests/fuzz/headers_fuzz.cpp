// libFuzzer target: the header index (docs/FORMAT.md §15). The same input is (1) the first bytes
// of a message, parsed as a backup parses every message it reads: whatever the bytes, the fields
// must be valid UTF-8 within their size bound; and (2) a header record in the form of
// tests/fuzz/fuzz_input.h (header JSON, NUL, body JSON), sealed with the real Seal(). The record
// reader builds no json document (storage/header_index.cpp); what it accepts, nlohmann's parser
// must accept with the same fields (the oracle below is the reader it replaced).
#include <nlohmann/json.hpp>
#include <optional>

#include "storage/header_index.h"
#include "storage/json_number.h"
#include "storage/mailfiles/headers.h"
#include "storage/sealed.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; k++)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// The body as nlohmann reads it, each message's fields as the old reader took them; nullopt
// where it throws.
std::optional<std::vector<mv::storage::MessageHeaders>> Oracle(std::string_view body) {
  try {
    auto j = nlohmann::json::parse(body);
    std::vector<mv::storage::MessageHeaders> out;
    for (const auto& e : j.at("messages")) {
      mv::storage::MessageHeaders m;
      if (!mv::storage::BlobId::FromHex(e.at("c").get<std::string>(), &m.content))
        return std::nullopt;
      m.size = mv::storage::JsonIntAt<uint64_t>(e, "s");
      m.date = e.value("d", "");
      m.date_unix = e.contains("t") ? mv::storage::JsonIntAt<int64_t>(e, "t") : 0;
      m.from = e.value("f", "");
      m.to = e.value("r", "");
      m.subject = e.value("j", "");
      m.message_id = e.value("m", "");
      out.push_back(std::move(m));
    }
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv;
  auto f = mailfiles::ParseHeaders(fuzz::AsView(data, size));
  for (const std::string* s : {&f.date, &f.from, &f.to, &f.subject, &f.message_id}) {
    if (!ValidUtf8(*s)) fuzz::Fail("a header field is not valid UTF-8");
    if (s->size() > mailfiles::kHeaderFieldMax) fuzz::Fail("a header field is over its bound");
  }
  constexpr std::string_view kMagic{"MVHEADR\x01", 8};
  auto parts = fuzz::SplitAtNul(fuzz::AsView(data, size));
  auto r = storage::DecodeHeaderRecord(storage::Seal(kMagic, parts.header, parts.body, 1), "fuzz");
  if (r.ok()) {
    auto o = Oracle(parts.body);
    if (!o) fuzz::Fail("the record reader accepted a body nlohmann refuses");
    if (o->size() != r->size()) fuzz::Fail("the record reader read another number of messages");
    for (size_t i = 0; i < o->size(); i++) {
      const auto &a = (*r)[i], &b = (*o)[i];
      if (a.content != b.content || a.size != b.size || a.date_unix != b.date_unix ||
          a.date != b.date || a.from != b.from || a.to != b.to || a.subject != b.subject ||
          a.message_id != b.message_id)
        fuzz::Fail("the record reader and nlohmann read different fields");
    }
  }
  return 0;
}
