// S3 credentials (storage/s3/credentials.h).
#include "storage/s3/credentials.h"

#include <map>

#include "storage/fs.h"

namespace mv::storage::s3 {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Credentials> ParseCredentialsFile(std::string_view text, const std::string& path,
                                         const std::string& profile) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::string current;
  bool in_section = false;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line_no++;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return Status::Invalid(
            "line " + std::to_string(line_no) + " opens a section without closing it with ']'",
            path);
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.substr(0, 8) == "profile ") name = Trim(name.substr(8));  // the config file's form
      current = std::string(name);
      sections[current];
      in_section = true;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return Status::Invalid(
          "line " + std::to_string(line_no) + " is neither a [profile], a comment nor key = value",
          path);
    if (!in_section)
      return Status::Invalid(
          "line " + std::to_string(line_no) + " sets a key before any [profile] section", path);
    sections[current][std::string(Trim(line.substr(0, eq)))] =
        std::string(Trim(line.substr(eq + 1)));
  }
  auto it = sections.find(profile);
  if (it == sections.end()) {
    std::string names;
    for (const auto& [name, keys] : sections) names += (names.empty() ? "" : ", ") + name;
    return Status::Invalid("no profile [" + profile + "] in the credentials file (it has: " +
                               (names.empty() ? "none" : names) + ")",
                           path);
  }
  Credentials c;
  for (const auto& [key, value] : it->second) {
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
  }
  const char* missing = c.access_key_id.empty()       ? "aws_access_key_id"
                        : c.secret_access_key.empty() ? "aws_secret_access_key"
                                                      : nullptr;
  if (missing)
    return Status::Invalid("profile [" + profile + "] has no " + missing + " (or it is empty)",
                           path);
  return c;
}

Result<Credentials> LoadCredentials(const std::string& file, const std::string& profile,
                                    const std::function<const char*(const char*)>& getenv) {
  if (!file.empty()) {
    auto text = fs::ReadFile(file);
    if (!text.ok())
      return Status::Invalid("cannot read the S3 credentials file (" + text.status().message() +
                                 "); check --s3-credentials-file",
                             file);
    return ParseCredentialsFile(*text, file, profile.empty() ? "default" : profile);
  }
  const char* id = getenv("AWS_ACCESS_KEY_ID");
  const char* secret = getenv("AWS_SECRET_ACCESS_KEY");
  if (!id || !*id || !secret || !*secret)
    return Status::Invalid(
        std::string("no S3 credentials: ") +
        (!id || !*id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
        " is not set; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass "
        "--s3-credentials-file FILE (AWS shared credentials format; a swarm secret works)");
  return Credentials{id, secret};
}

}  // namespace mv::storage::s3
