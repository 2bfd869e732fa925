#include "registry/errors.h"

#include <nlohmann/json.hpp>

namespace kiln::registry {
namespace {

std::string_view Reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace

ErrorCode CodeForHttpStatus(int status) {
  if (status == 401) return ErrorCode::kUnauthenticated;
  if (status == 403) return ErrorCode::kPermissionDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status == 408 || status == 429 || status >= 500) return ErrorCode::kUnavailable;
  return ErrorCode::kFailedPrecondition;
}

Status HttpError(std::string_view method, std::string_view url, Response& resp) {
  std::string msg = std::string(method) + " " + RedactUrl(url) + ": " + std::to_string(resp.status);
  if (auto r = Reason(resp.status); !r.empty()) msg += " " + std::string(r);
  ErrorCode code = CodeForHttpStatus(resp.status);
  std::string detail;
  if (resp.body != nullptr) {
    std::string body;
    char buf[4096];
    while (body.size() < (64u << 10)) {
      auto n = resp.body->Read(buf, sizeof buf);
      if (!n.ok() || *n == 0) break;
      body.append(buf, *n);
    }
    try {
      auto j = nlohmann::json::parse(body);
      if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
        for (const auto& e : j["errors"]) {
          std::string c = e.value("code", "");
          std::string m = e.value("message", "");
          if (c == "DIGEST_INVALID") code = ErrorCode::kDigestMismatch;
          if (!detail.empty()) detail += "; ";
          detail += c;
          if (!m.empty()) detail += ": " + m;
        }
      }
    } catch (const std::exception&) {
      // Not a distribution error document (an HTML page from a proxy, say): the status says enough.
    }
  }
  if (!detail.empty()) msg += " (" + detail + ")";
  if ((resp.status == 401 || resp.status == 403) && !resp.auth_note.empty()) msg += "; " + resp.auth_note;
  return Status(code, msg);
}

}  // namespace kiln::registry
