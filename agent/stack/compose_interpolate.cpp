// Variable interpolation and .env files for compose (compose.h), following the compose spec's
// interpolation section.
#include <cctype>

#include "agent/stack/compose.h"

namespace mv::agent {
namespace {

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Index of the '}' closing the '{' at `open`, honouring nested ${...}; npos if none.
size_t MatchingBrace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

// Expands the inside of ${...}: NAME, then optionally an operator and a word.
Result<std::string> ExpandBraced(const std::string& inner, const VarLookup& lookup,
                                 std::vector<std::string>* unset) {
  size_t n = 0;
  while (n < inner.size() && IsNameChar(inner[n])) ++n;
  std::string name = inner.substr(0, n);
  if (name.empty() || !IsNameStart(name[0]))
    return Status::Invalid("invalid interpolation '${" + inner + "}'");
  std::optional<std::string> value = lookup(name);
  std::string rest = inner.substr(n);
  if (rest.empty()) {
    if (!value && unset) unset->push_back(name);
    return value.value_or("");
  }
  bool colon = rest[0] == ':';
  if (colon && rest.size() < 2)  // "${NAME:}": a colon and no operator
    return Status::Invalid("invalid interpolation '${" + inner +
                           "}': after ':' comes one of - ? + (as in ${NAME:-default})");
  std::string op = rest.substr(colon ? 1 : 0, 1);
  std::string word = rest.substr(colon ? 2 : 1);
  bool missing = !value || (colon && value->empty());
  if (op == "-") {
    if (missing) return Interpolate(word, lookup, unset);
    return *value;
  }
  if (op == "?") {
    if (missing)
      return Status::Invalid("required variable " + name + " is " + (value ? "empty" : "unset") +
                             (word.empty() ? "" : ": " + word));
    return *value;
  }
  if (op == "+") {
    if (missing) return std::string();
    return Interpolate(word, lookup, unset);
  }
  return Status::Invalid("invalid interpolation '${" + inner + "}'");
}

}  // namespace

Result<std::string> Interpolate(const std::string& s, const VarLookup& lookup,
                                std::vector<std::string>* unset) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char next = s[i + 1];
    if (next == '$') {
      out += '$';
      ++i;
    } else if (next == '{') {
      size_t close = MatchingBrace(s, i + 1);
      if (close == std::string::npos) return Status::Invalid("unterminated '${' in '" + s + "'");
      MV_ASSIGN_OR_RETURN(std::string v,
                          ExpandBraced(s.substr(i + 2, close - i - 2), lookup, unset));
      out += v;
      i = close;
    } else if (IsNameStart(next)) {
      size_t end = i + 1;
      while (end < s.size() && IsNameChar(s[end])) ++end;
      std::string name = s.substr(i + 1, end - i - 1);
      std::optional<std::string> v = lookup(name);
      if (!v && unset) unset->push_back(name);
      out += v.value_or("");
      i = end - 1;
    } else {
      out += '$';
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseEnvFile(const std::string& text,
                                                        const std::string& path) {
  std::map<std::string, std::string> vars;
  size_t start = 0, lineno = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    line = line.substr(b);
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::Invalid("line " + std::to_string(lineno) + " is not KEY=VALUE: '" + line + "'",
                             path);
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0])
      value = value.substr(1, value.size() - 2);
    vars[key] = value;
  }
  return vars;
}

}  // namespace mv::agent
