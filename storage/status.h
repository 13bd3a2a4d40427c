// Status and Result<T>: how every layer reports an expected failure.
//
// A Status carries a code from a short closed set, a message saying what failed and what to
// do, and the path it concerns. Libraries return these; only agent/ turns them into output and
// exit codes. IsRetryable() is the one place that decides what may be retried.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mv {

enum class Code {
  kOk = 0,
  kNotFound,
  kCorruption,
  kIOError,
  kBusy,  // locked by someone else (repository lock, SQLITE_BUSY): may be retried
  kInvalidArgument,
  kCancelled,
  kUnsupported,   // e.g. a repository format version this build does not know
  kNoSpace,       // ENOSPC / EDQUOT
  kAccessDenied,  // an encrypted repository's key is missing or wrong (exit 1, not a usage error)
};

const char* CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, std::string path = {})
      : code_(code), message_(std::move(message)), path_(std::move(path)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string m, std::string p = {}) {
    return {Code::kNotFound, std::move(m), std::move(p)};
  }
  static Status Corruption(std::string m, std::string p = {}) {
    return {Code::kCorruption, std::move(m), std::move(p)};
  }
  static Status IOError(std::string m, std::string p = {}) {
    return {Code::kIOError, std::move(m), std::move(p)};
  }
  static Status Busy(std::string m, std::string p = {}) {
    return {Code::kBusy, std::move(m), std::move(p)};
  }
  static Status Invalid(std::string m, std::string p = {}) {
    return {Code::kInvalidArgument, std::move(m), std::move(p)};
  }
  static Status Cancelled(std::string m, std::string p = {}) {
    return {Code::kCancelled, std::move(m), std::move(p)};
  }
  static Status Unsupported(std::string m, std::string p = {}) {
    return {Code::kUnsupported, std::move(m), std::move(p)};
  }
  static Status AccessDenied(std::string m, std::string p = {}) {
    return {Code::kAccessDenied, std::move(m), std::move(p)};
  }
  // errno -> Status, in one place. `what` names the operation ("open", "fsync"...).
  static Status FromErrno(int err, const std::string& what, const std::string& path);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& path() const { return path_; }
  bool IsRetryable() const { return code_ == Code::kBusy; }
  // The errno a FromErrno status was made from (0 otherwise), for callers that must tell
  // EEXIST from ENOENT (storage/lock.cpp); messages and codes are for everyone else.
  int sys_errno() const { return errno_; }
  // "<path>: <message>" or just the message.
  std::string ToString() const;

 private:
  static Status FromErrnoCode(int err, const std::string& what, const std::string& path);
  Code code_ = Code::kOk;
  std::string message_;
  std::string path_;
  int errno_ = 0;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be Ok
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define MV_RETURN_IF_ERROR(expr) \
  do {                           \
    ::mv::Status _st = (expr);   \
    if (!_st.ok()) return _st;   \
  } while (0)

#define MV_CONCAT_INNER(a, b) a##b
#define MV_CONCAT(a, b) MV_CONCAT_INNER(a, b)
#define MV_ASSIGN_OR_RETURN(lhs, expr) MV_ASSIGN_OR_RETURN_I(MV_CONCAT(_res_, __LINE__), lhs, expr)
#define MV_ASSIGN_OR_RETURN_I(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

}  // namespace mv
