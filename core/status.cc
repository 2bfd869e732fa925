#include "core/status.h"

#include <cerrno>
#include <cstring>

namespace kiln {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kDigestMismatch: return "digest mismatch";
    case ErrorCode::kIoError: return "i/o error";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kFailedPrecondition: return "failed precondition";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal error";
    case ErrorCode::kPolicyViolation: return "policy violation";
  }
  return "unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m;
  m.reserve(context.size() + 2 + message_.size());
  m.append(context).append(": ").append(message_);
  return WithMessage(std::move(m));
}

std::string Status::ToString() const { return ok() ? std::string("OK") : message_; }

Status ErrnoStatus(std::string_view what, int err) {
  ErrorCode code = ErrorCode::kIoError;
  switch (err) {
    case ENOENT: case ENOTDIR: code = ErrorCode::kNotFound; break;
    case EACCES: case EPERM: case EROFS: code = ErrorCode::kPermissionDenied; break;
    case EEXIST: case ENOTEMPTY: code = ErrorCode::kAlreadyExists; break;
    case EINTR: case EAGAIN: code = ErrorCode::kUnavailable; break;
    default: break;
  }
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return Status(code, std::move(m));
}

}  // namespace kiln
