#include "storage/status.h"

#include <cerrno>
#include <cstring>

namespace mv {

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not found";
    case Code::kCorruption:
      return "corruption";
    case Code::kIOError:
      return "I/O error";
    case Code::kBusy:
      return "busy";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kCancelled:
      return "cancelled";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kNoSpace:
      return "no space left";
    case Code::kAccessDenied:
      return "access denied";
  }
  return "unknown";
}

Status Status::FromErrno(int err, const std::string& what, const std::string& path) {
  Status st = FromErrnoCode(err, what, path);
  st.errno_ = err;
  return st;
}

Status Status::FromErrnoCode(int err, const std::string& what, const std::string& path) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status(Code::kNotFound, msg, path);
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kNoSpace,
                    msg +
                        " (free space on that filesystem, then run again; "
                        "nothing already stored is lost)",
                    path);
    case EACCES:
    case EPERM:
      return Status(Code::kIOError,
                    msg +
                        " (permission denied: this user needs read access to back "
                        "up or check this path and write access to write into it; run as root to "
                        "keep ownership)",
                    path);
    case EAGAIN:
    case EBUSY:
      return Status(Code::kBusy, msg, path);
    default:
      return Status(Code::kIOError, msg, path);
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  if (path_.empty()) return message_;
  return path_ + ": " + message_;
}

}  // namespace mv
