// docs/FORMAT.md §15.
#include "storage/header_index.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

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

namespace {

// A reader of the record body's JSON that builds no document: a record of 10,000 messages as a
// json DOM costs more to build than everything else find does with it. It accepts exactly the
// JSON (RFC 8259) that nlohmann's parser accepts for this body, with the same results; the fuzz
// target mv_fuzz_headers checks that against nlohmann.
class BodyReader {
 public:
  explicit BodyReader(std::string_view s) : s_(s) {}

  // {"messages":[{...},...]} (other keys skipped), each message as MessageHeaders.
  void Messages(std::vector<MessageHeaders>* out) {
    bool seen = false;
    Object([&](std::string_view key) {
      if (key != "messages") return Skip();
      seen = true;
      out->clear();  // a repeated key: the last one counts
      Expect('[');
      if (Peek() == ']') return Advance();
      do {
        Message(&out->emplace_back());
      } while (Comma(']'));
    });
    Ws();
    if (i_ != s_.size()) Fail("trailing bytes after the body");
    if (!seen) Fail("no \"messages\"");
  }

 private:
  [[noreturn]] void Fail(const std::string& what) {
    throw std::runtime_error(what + " at byte " + std::to_string(i_));
  }
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      i_++;
  }
  char Peek() {
    Ws();
    if (i_ == s_.size()) Fail("the body ends early");
    return s_[i_];
  }
  void Advance() { i_++; }
  void Expect(char c) {
    if (Peek() != c) Fail(std::string("'") + c + "' expected");
    i_++;
  }
  // After a member or element: true on ',', false on `close`.
  bool Comma(char close) {
    char c = Peek();
    i_++;
    if (c == ',') return true;
    if (c != close) Fail(std::string("',' or '") + close + "' expected");
    return false;
  }
  template <class Fn>
  void Object(Fn&& member) {
    Expect('{');
    if (Peek() == '}') return Advance();
    std::string key;
    do {
      if (Peek() != '"') Fail("a key expected");
      String(&key);
      Expect(':');
      member(std::string_view(key));
    } while (Comma('}'));
  }
  void Message(MessageHeaders* m) {
    bool has_c = false, has_s = false;
    std::string text;
    Object([&](std::string_view k) {
      if (k.size() != 1) return Skip();
      switch (k[0]) {
        case 'c':
          StringValue(&text, "c");
          if (!BlobId::FromHex(text, &m->content)) Fail("a content ID is not 32 hex digits");
          has_c = true;
          return;
        case 's':
          m->size = Int<uint64_t>("s");
          has_s = true;
          return;
        case 't':
          m->date_unix = Int<int64_t>("t");
          return;
        case 'd':
          return StringValue(&m->date, "d");
        case 'f':
          return StringValue(&m->from, "f");
        case 'r':
          return StringValue(&m->to, "r");
        case 'j':
          return StringValue(&m->subject, "j");
        case 'm':
          return StringValue(&m->message_id, "m");
        default:
          return Skip();
      }
    });
    if (!has_c || !has_s) Fail(std::string("a message without \"") + (has_c ? 's' : 'c') + "\"");
  }
  void StringValue(std::string* out, const char* key) {
    if (Peek() != '"') Fail(std::string("\"") + key + "\" is not a string");
    String(out);
  }
  template <class T>
  T Int(const char* key) {
    Ws();
    size_t start = i_;
    if (!Number()) Fail(std::string("\"") + key + "\" is not a number");
    std::string_view text = s_.substr(start, i_ - start);
    bool neg = text[0] == '-';
    std::string_view digits = text.substr(neg);
    uint64_t u = 0;
    bool fits = digits.find_first_not_of("0123456789") == std::string_view::npos;
    for (size_t k = 0; fits && k < digits.size(); k++) {
      uint64_t d = static_cast<uint64_t>(digits[k] - '0');
      fits = u <= (UINT64_MAX - d) / 10;
      u = u * 10 + d;
    }
    if (fits && !neg && std::in_range<T>(u)) return static_cast<T>(u);
    if (fits && neg && u <= (uint64_t{1} << 63)) {
      int64_t v = u == (uint64_t{1} << 63) ? INT64_MIN : -static_cast<int64_t>(u);
      if (std::in_range<T>(v)) return static_cast<T>(v);
    }
    Fail(std::string(key) + " is not an integer in range: " + std::string(text));
  }
  // A JSON number (its syntax only); false, with nothing read, when there is none.
  bool Number() {
    size_t start = i_;
    auto digits = [&] {
      size_t b = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') i_++;
      return i_ - b;
    };
    if (i_ < s_.size() && s_[i_] == '-') i_++;
    size_t lead = i_;
    size_t n = digits();
    if (n == 0 || (n > 1 && s_[lead] == '0')) {
      i_ = start;
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      i_++;
      if (!digits()) Fail("a number's fraction has no digits");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (!digits()) Fail("a number's exponent has no digits");
    }
    return true;
  }
  uint32_t Hex4() {
    if (s_.size() - i_ < 4) Fail("a \\u escape is cut short");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        Fail("a \\u escape is not hexadecimal");
    }
    return v;
  }
  static void PutUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  // The length of the UTF-8 sequence at s_[i_] (RFC 3629: no overlong forms, no surrogates, at
  // most U+10FFFF), 0 when it is not one.
  size_t Utf8At() const {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s_[i_ + k]); };
    size_t left = s_.size() - i_;
    unsigned char c = b(0);
    auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
      return k < left && b(k) >= lo && b(k) <= hi;
    };
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
    if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
    if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
    return 0;
  }
  void String(std::string* out) {
    out->clear();
    i_++;  // the opening quote
    for (;;) {
      size_t run = i_;
      while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' &&
             static_cast<unsigned char>(s_[i_]) >= 0x20 &&
             static_cast<unsigned char>(s_[i_]) < 0x80)
        i_++;
      out->append(s_.substr(run, i_ - run));
      if (i_ == s_.size()) Fail("a string is not closed");
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        i_++;
        return;
      }
      if (c < 0x20) Fail("a control character in a string");
      if (c >= 0x80) {
        size_t n = Utf8At();
        if (!n) Fail("a string is not valid UTF-8");
        out->append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      i_++;  // the backslash
      if (i_ == s_.size()) Fail("a string is not closed");
      char e = s_[i_++];
      switch (e) {
        case '"':
          *out += '"';
          break;
        case '\\':
          *out += '\\';
          break;
        case '/':
          *out += '/';
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) Fail("a lone low surrogate in a string");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s_.size() - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u')
              Fail("a high surrogate without its low one");
            i_ += 2;
            uint32_t lo = Hex4();
            if (lo < 0xdc00 || lo > 0xdfff) Fail("a high surrogate without its low one");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          PutUtf8(cp, out);
          break;
        }
        default:
          Fail("a bad escape in a string");
      }
    }
  }
  // Any JSON value, read and dropped. Nesting is bounded (nothing this format writes nests
  // deeper than 2), so that no input can exhaust the stack.
  void Skip() {
    if (depth_ >= kMaxDepth) Fail("values nested deeper than " + std::to_string(kMaxDepth));
    depth_++;
    SkipValue();
    depth_--;
  }
  void SkipValue() {
    char c = Peek();
    if (c == '"') {
      String(&scratch_);
    } else if (c == '{') {
      Object([&](std::string_view) { Skip(); });
    } else if (c == '[') {
      i_++;
      if (Peek() == ']') return Advance();
      do {
        Skip();
      } while (Comma(']'));
    } else if (s_.substr(i_, 4) == "true" || s_.substr(i_, 4) == "null") {
      i_ += 4;
    } else if (s_.substr(i_, 5) == "false") {
      i_ += 5;
    } else if (!Number()) {
      Fail("a value expected");
    }
  }

  static constexpr int kMaxDepth = 256;
  std::string_view s_;
  size_t i_ = 0;
  std::string scratch_;
  int depth_ = 0;
};

}  // namespace

Result<std::vector<MessageHeaders>> DecodeHeaderRecord(std::string_view data,
                                                       const std::string& path) {
  MV_ASSIGN_OR_RETURN(auto sealed, Unseal(data, kMagic, path));
  try {
    auto h = nlohmann::json::parse(sealed.header);
    if (h.at("kind") != "headers") return Status::Corruption("not a header record", path);
    std::vector<MessageHeaders> out;
    BodyReader(sealed.body).Messages(&out);
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
