// Turning registry HTTP answers into Status values that keep the HTTP status and the registry's
// error code (distribution spec "errors": [{"code", "message"}]) and never carry a secret.
#pragma once

#include <string>
#include <string_view>

#include "registry/transport.h"

namespace kiln::registry {

/// The ErrorCode for an HTTP status: 401 → kUnauthenticated, 403 → kPermissionDenied,
/// 404 → kNotFound, 408/429/5xx → kUnavailable, others → kFailedPrecondition.
ErrorCode CodeForHttpStatus(int status);

/// Reads (at most 64 KiB of) `resp`'s body and builds
///   "METHOD URL-without-query: 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)".
/// A DIGEST_INVALID error code maps to kDigestMismatch.
Status HttpError(std::string_view method, std::string_view url, Response& resp);

}  // namespace kiln::registry
