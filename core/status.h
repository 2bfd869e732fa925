// Status and Result<T>: errors as values, with context for the person who reads them.
//
// Library code in kiln never throws across a module boundary. A function that can fail returns
// Status (no value) or Result<T> (a value or a Status). Each layer that passes an error up adds what
// it was doing with WithContext(), so the final message reads like
//   "pushing layer sha256:ab12…: PUT https://r.example/v2/app/blobs/uploads/…: 401 UNAUTHORIZED".
// Messages never contain secrets (passwords, tokens, Authorization headers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kiln {

/// The kind of failure; callers branch on this, people read the message.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // bad input from the user (reference, flag, Dockerfile, JSON)
  kNotFound,            // file, blob, manifest, stage, credential
  kAlreadyExists,
  kPermissionDenied,    // EACCES/EPERM, or a path that would leave the rootfs
  kUnauthenticated,     // registry said 401 / credentials rejected
  kDigestMismatch,      // content does not hash to the digest it was promised under
  kIoError,             // local I/O failed
  kUnavailable,         // temporary: 5xx, 429, connection reset, timeout — safe to retry
  kUnsupported,         // valid but not implemented / not allowed (schema 1, unknown media type)
  kFailedPrecondition,  // the world is not in the state the operation needs
  kCancelled,
  kInternal,            // a bug in kiln
  kPolicyViolation,     // the build breaks a --policy / $KILN_POLICY rule (kiln exits 77)
};

/// Returns a stable lower-case name for `code`, e.g. "digest mismatch".
std::string_view ErrorCodeName(ErrorCode code);

/// An OK marker or an error code with a human-readable message. Cheap to copy when OK.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// True for failures that may go away on retry (network faults, 5xx, 429).
  bool temporary() const { return code_ == ErrorCode::kUnavailable; }

  /// Returns a copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;
  /// Returns a copy with `message` in place of this one's, for callers that reword rather than
  /// prefix (a Dockerfile position with a caret line); the code and step_exit_code() are kept.
  Status WithMessage(std::string message) const {
    Status s = *this;
    s.message_ = std::move(message);
    return s;
  }

  /// "OK" or the message (the code's name is not repeated: messages are written to stand alone).
  std::string ToString() const;

  /// Explicitly discard a status (for best-effort cleanup paths).
  void IgnoreError() const {}

  /// The exit code of a build step whose failure this is (a failing RUN), carried through
  /// WithContext so the CLI can exit with it as Kaniko does; 0 when no step's exit code applies.
  int step_exit_code() const { return step_exit_code_; }
  /// A copy carrying `code` as step_exit_code().
  Status WithStepExitCode(int code) const {
    Status s = *this;
    s.step_exit_code_ = code;
    return s;
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  int step_exit_code_ = 0;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgument(std::string m) { return Status(ErrorCode::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(ErrorCode::kNotFound, std::move(m)); }
inline Status PermissionDenied(std::string m) { return Status(ErrorCode::kPermissionDenied, std::move(m)); }
inline Status Unsupported(std::string m) { return Status(ErrorCode::kUnsupported, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(ErrorCode::kUnavailable, std::move(m)); }
inline Status IoError(std::string m) { return Status(ErrorCode::kIoError, std::move(m)); }
inline Status DigestMismatch(std::string m) { return Status(ErrorCode::kDigestMismatch, std::move(m)); }
inline Status FailedPrecondition(std::string m) { return Status(ErrorCode::kFailedPrecondition, std::move(m)); }
inline Status PolicyViolation(std::string m) { return Status(ErrorCode::kPolicyViolation, std::move(m)); }
inline Status InternalError(std::string m) { return Status(ErrorCode::kInternal, std::move(m)); }

/// Maps an errno value to a Status: "WHAT: strerror(err)" with a fitting code
/// (ENOENT → kNotFound, EACCES/EPERM → kPermissionDenied, EEXIST → kAlreadyExists, else kIoError).
Status ErrnoStatus(std::string_view what, int err);

/// A value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {                  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(ErrorCode::kInternal, "Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  /// The error; OK if this holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  /// REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kiln

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)

/// Returns from the enclosing function if `expr` (a Status) is not OK.
#define KILN_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::kiln::Status kiln_status_ = (expr);          \
    if (!kiln_status_.ok()) return kiln_status_;   \
  } while (0)

/// `lhs` = value of `rexpr` (a Result<T>), or returns its Status from the enclosing function.
/// Expands to several statements: put it in braces after an `if`.
#define KILN_ASSIGN_OR_RETURN(lhs, rexpr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_CONCAT_(kiln_result_, __LINE__), lhs, rexpr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
