// storage/mailfiles/headers.h.
#include "storage/mailfiles/headers.h"

#include <cctype>
#include <vector>

namespace mv::mailfiles {
namespace {

std::string Lower(std::string_view s) {
  std::string o(s);
  for (char& c : o)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return o;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xc0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    *out += static_cast<char>(0xe0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8Len(std::string_view s, size_t i) {
  unsigned char c = s[i];
  size_t n = c < 0x80             ? 1
             : (c & 0xe0) == 0xc0 ? 2
             : (c & 0xf0) == 0xe0 ? 3
             : (c & 0xf8) == 0xf0 ? 4
                                  : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t k = 1; k < n; k++) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Valid UTF-8 out of any bytes: valid sequences stay, other bytes are read as Latin-1; control
// characters (but tab) become spaces.
std::string Sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8Len(s, i);
    if (n == 0) {
      AppendUtf8(static_cast<unsigned char>(s[i]), &out);
      i++;
    } else {
      if (n == 1 && (static_cast<unsigned char>(s[i]) < 0x20 || s[i] == 0x7f))
        out += ' ';
      else
        out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  for (unsigned char c : s) AppendUtf8(c, &out);
  return out;
}

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one encoded word's text; false if the charset or encoding is not one we know.
bool DecodeWord(std::string_view charset, char enc, std::string_view text, std::string* out) {
  std::string cs = Lower(charset);
  if (auto star = cs.find('*'); star != std::string::npos) cs.resize(star);  // RFC 2231 language
  bool utf8 = cs == "utf-8" || cs == "utf8" || cs == "us-ascii";
  bool latin = cs == "iso-8859-1" || cs == "iso-8859-15" || cs == "latin1" ||
               cs == "windows-1252" || cs == "cp1252";
  if (!utf8 && !latin) return false;
  std::string bytes;
  if (enc == 'b' || enc == 'B') {
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
      int v = B64Value(c);
      if (v < 0) continue;  // '=' padding, stray characters
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes += static_cast<char>((acc >> bits) & 0xff);
      }
    }
  } else if (enc == 'q' || enc == 'Q') {
    for (size_t i = 0; i < text.size(); i++) {
      if (text[i] == '_') {
        bytes += ' ';
      } else if (text[i] == '=' && i + 2 < text.size() && Hex(text[i + 1]) >= 0 &&
                 Hex(text[i + 2]) >= 0) {
        bytes += static_cast<char>(Hex(text[i + 1]) * 16 + Hex(text[i + 2]));
        i += 2;
      } else {
        bytes += text[i];
      }
    }
  } else {
    return false;
  }
  *out += latin ? Latin1ToUtf8(bytes) : bytes;
  return true;
}

// RFC 2047: "=?charset?B|Q?text?=" words are decoded; blanks between two of them are dropped.
std::string DecodeValue(std::string_view v) {
  std::string out;
  size_t i = 0;
  bool last_was_word = false;
  std::string pending_space;
  while (i < v.size()) {
    if (v[i] == '=' && i + 1 < v.size() && v[i + 1] == '?') {
      size_t q1 = v.find('?', i + 2);
      size_t q2 = q1 == std::string_view::npos ? q1 : v.find('?', q1 + 1);
      size_t end = q2 == std::string_view::npos ? q2 : v.find("?=", q2 + 1);
      if (end != std::string_view::npos && q2 == q1 + 2) {
        std::string decoded;
        if (DecodeWord(v.substr(i + 2, q1 - i - 2), v[q1 + 1], v.substr(q2 + 1, end - q2 - 1),
                       &decoded)) {
          if (!last_was_word) out += pending_space;
          pending_space.clear();
          out += decoded;
          last_was_word = true;
          i = end + 2;
          continue;
        }
      }
    }
    if (v[i] == ' ' || v[i] == '\t') {
      pending_space += v[i];
      i++;
      continue;
    }
    out += pending_space;
    pending_space.clear();
    out += v[i];
    last_was_word = false;
    i++;
  }
  out += pending_space;
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
  return std::string(s.substr(b, e - b));
}

// Cuts to at most kHeaderFieldMax bytes, not inside a UTF-8 sequence.
std::string Cut(std::string s) {
  if (s.size() <= kHeaderFieldMax) return s;
  size_t n = kHeaderFieldMax;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) n--;
  s.resize(n);
  return s;
}

}  // namespace

std::string FoldCase(std::string_view s) { return Lower(s); }

int64_t ParseRfc5322Date(std::string_view s) {
  // Tokens split on blanks and commas; "Tue, 1 Jul 2003 10:52:37 +0200 (CEST)".
  std::vector<std::string> t;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n') {
      if (!cur.empty()) t.push_back(cur), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) t.push_back(cur);
  size_t i = 0;
  if (i < t.size() && t[i].size() >= 3 && std::isalpha(static_cast<unsigned char>(t[i][0]))) i++;
  auto num = [](const std::string& x, int64_t* v) {
    if (x.empty() || x.size() > 4) return false;
    *v = 0;
    for (char c : x) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      *v = *v * 10 + (c - '0');
    }
    return true;
  };
  int64_t day, year;
  if (i + 3 > t.size() || !num(t[i], &day)) return 0;
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                  "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string mon = Lower(t[i + 1]).substr(0, 3);
  int month = 0;
  for (int m = 0; m < 12; m++)
    if (mon == kMonths[m]) month = m + 1;
  if (!month || !num(t[i + 2], &year)) return 0;
  if (t[i + 2].size() <= 2)
    year += year < 50 ? 2000 : 1900;
  else if (t[i + 2].size() == 3)
    year += 1900;
  int64_t hh = 0, mm = 0, ss = 0;
  if (i + 3 < t.size()) {
    const std::string& tm = t[i + 3];
    size_t c1 = tm.find(':');
    if (c1 == std::string::npos) return 0;
    size_t c2 = tm.find(':', c1 + 1);
    if (!num(tm.substr(0, c1), &hh) ||
        !num(tm.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1), &mm) ||
        (c2 != std::string::npos && !num(tm.substr(c2 + 1), &ss)))
      return 0;
  } else {
    return 0;
  }
  int64_t offset = 0;
  if (i + 4 < t.size()) {
    const std::string& z = t[i + 4];
    int64_t v;
    if ((z[0] == '+' || z[0] == '-') && z.size() == 5 && num(z.substr(1), &v))
      offset = (z[0] == '-' ? -1 : 1) * ((v / 100) * 3600 + (v % 100) * 60);
    else {
      std::string zl = Lower(z);
      static const std::pair<const char*, int> kZones[] = {
          {"ut", 0},   {"gmt", 0},  {"utc", 0},  {"est", -5}, {"edt", -4}, {"cst", -6},
          {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
      for (const auto& [n, h] : kZones)
        if (zl == n) offset = h * 3600;
    }
  }
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970 || year > 9999) return 0;
  // Days from civil (Howard Hinnant's algorithm).
  int64_t y = year - (month <= 2);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + hh * 3600 + mm * 60 + ss - offset;
}

HeaderFields ParseHeaders(std::string_view data) {
  HeaderFields f;
  if (data.size() > kHeaderScanBytes) data = data.substr(0, kHeaderScanBytes);
  // Unfolded fields, in order, up to the first empty line.
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  bool first = true;
  while (i < data.size()) {
    size_t e = data.find('\n', i);
    std::string_view line =
        data.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i);
    i = e == std::string_view::npos ? data.size() : e + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (first && line.rfind("From ", 0) == 0) {  // an mbox "From " line before the header
      first = false;
      continue;
    }
    first = false;
    if ((line[0] == ' ' || line[0] == '\t') && !fields.empty()) {
      fields.back().second += " ";
      fields.back().second += Trim(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;  // junk: skipped
    fields.emplace_back(Lower(Trim(line.substr(0, colon))), Trim(line.substr(colon + 1)));
  }
  auto take = [&](const char* name, std::string* out) {
    for (const auto& [n, v] : fields)
      if (n == name) {
        *out = Cut(Sanitize(DecodeValue(v)));
        return;
      }
  };
  take("date", &f.date);
  take("from", &f.from);
  take("to", &f.to);
  take("subject", &f.subject);
  std::string cc;
  take("cc", &cc);
  if (!cc.empty()) f.to = Cut(f.to.empty() ? cc : f.to + ", " + cc);
  take("message-id", &f.message_id);
  std::string id = Trim(f.message_id);
  if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
  f.message_id = id;
  f.date_unix = ParseRfc5322Date(f.date);
  return f;
}

}  // namespace mv::mailfiles
