// Blob uploads: monolithic (POST, PUT with the blob) for small blobs of known digest; one streamed
// PATCH for a blob of unknown digest (a layer sent while it is written: the push resends it from
// kiln's store if that fails); otherwise chunked PATCHes with Content-Range that resume after a failed chunk (OCI distribution spec,
// "Resuming an upload"): GET on the session's Location answers 204 with `Range: 0-N` and a fresh
// Location, and the upload continues at byte N+1 of the chunk still held in memory.
//
// What docker-registry 2.8 does (measured against Debian's 2.8.2): a PATCH refused or reset before
// the registry stored any of its bytes leaves the session as it was, and the GET answers its range.
// A PATCH cut after the registry stored part of the body leaves the session's signed state behind
// the stored size; the registry then answers the GET with 404 BLOB_UPLOAD_INVALID and cancels the
// session. Both 404 and a range outside the chunk kiln holds restart the blob from scratch, once:
// in place when the whole blob so far is still in memory, otherwise by failing with a temporary
// error so the caller (CopyImage's blob attempts) opens the source again.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <thread>

#include "registry/client.h"
#include "registry/errors.h"

namespace kiln::registry {
namespace {

// Reads a string it does not own: a chunk sent as a request body without copying it.
class ViewReader : public Reader {
 public:
  explicit ViewReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(void* buf, size_t n) override {
    size_t k = std::min(n, data_.size());
    std::memcpy(buf, data_.data(), k);
    data_.remove_prefix(k);
    return k;
  }

 private:
  std::string_view data_;
};

}  // namespace

namespace {

std::string Mib(uint64_t bytes) {
  if (bytes < (1u << 20)) return std::to_string(bytes) + " bytes";
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

// "0-N" → N+1 bytes held. distribution answers "0-0" both for an empty session and for one byte;
// kiln reads it as empty (a one-byte session then fails the next PATCH's range check and restarts).
std::optional<uint64_t> ParseUploadRange(std::string_view range) {
  if (range.substr(0, 6) == "bytes=") range.remove_prefix(6);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || range.substr(0, dash) != "0") return std::nullopt;
  std::string_view end = range.substr(dash + 1);
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(end.data(), end.data() + end.size(), n);
  if (ec != std::errc() || ptr != end.data() + end.size()) return std::nullopt;
  return n == 0 ? 0 : n + 1;
}

// After the registry's 201, what it serves for the digest must be the blob: docker-registry 2.8 under
// faults has been seen to answer 201 and then serve the digest as 0 bytes (its blob descriptor
// cache), and a manifest pushed over that would tag a broken image.
Status Repository::CheckStored(const Digest& digest, uint64_t size, std::string_view after) {
  auto have = HeadBlob(digest);
  if (!have.ok()) return have.status();
  if (*have && **have == static_cast<int64_t>(size)) return OkStatus();
  return Unavailable("after " + std::string(after) + " the registry serves " +
                     (*have ? std::to_string(**have) + " bytes" : std::string("nothing")) + " for " +
                     digest.ToString() + " instead of " + std::to_string(size));
}

Result<Descriptor> Repository::CompleteUpload(const std::string& location, const Digest& digest, uint64_t size,
                                              std::string_view after) {
  auto d = FinishUpload(location, digest, static_cast<int64_t>(size), nullptr, std::nullopt);
  if (!d.ok()) {
    auto have = HeadBlob(digest);
    if (!have.ok() || !*have || **have != static_cast<int64_t>(size)) return d.status();
    Descriptor out;
    out.digest = digest;
    out.size = static_cast<int64_t>(size);
    out.media_type = "application/octet-stream";
    return out;
  }
  KILN_RETURN_IF_ERROR(CheckStored(digest, size, after));
  return d;
}

Result<Descriptor> Repository::UploadBlob(Reader& content, std::optional<Digest> expected,
                                          std::optional<int64_t> size) {
  std::string blob_name = expected ? expected->ToString() : std::string("(streamed)");
  std::string what = "pushing blob " + blob_name + " to " + Describe();
  auto location = StartUpload("", nullptr);
  if (!location.ok()) return location.status().WithContext(what);
  std::string loc = *location;
  auto cancel = [&] {
    Request del;
    del.method = "DELETE";
    del.url = loc;
    auto r = transport_->RoundTrip(del);
    (void)r;
  };
  auto notice = [&](const std::string& m) {
    if (options_->notice) options_->notice(m);
  };
  HashingReader hashing(&content);

  uint64_t chunk_size = options_->chunk_size;
  if (chunk_size == 0 && !expected) {
    // Digest unknown: a layer streamed to the registry while it is being written. One streamed
    // PATCH keeps the writer and the upload running side by side in bounded memory; a failure is
    // not resumed here, since the blob is in kiln's store by then and the push sends it again
    // from there (resumably, below).
    Request req;
    req.method = "PATCH";
    req.url = loc;
    req.headers.Set("Content-Type", "application/octet-stream");
    req.body_reader = &hashing;
    auto resp = transport_->RoundTrip(req);
    if (!resp.ok()) {
      cancel();
      return resp.status().WithContext(what);
    }
    if (resp->status != 202 && resp->status != 204) {
      Status failure = HttpError("PATCH", req.url, *resp);
      cancel();
      return failure.WithContext(what);
    }
    if (std::string l = resp->headers.Get("Location"); !l.empty()) loc = ResolveUrl(loc, l);
    auto d = CompleteUpload(loc, hashing.Finish(), hashing.size(), "the upload");
    if (!d.ok()) {
      cancel();
      return d.status().WithContext(what);
    }
    return d;
  }
  if (chunk_size == 0 && options_->resumable_chunk_size > 0 &&
      (!size || *size < 0 || static_cast<uint64_t>(*size) > options_->resumable_chunk_size)) {
    chunk_size = options_->resumable_chunk_size;
  }

  if (chunk_size == 0) {
    // Monolithic: the whole blob in the PUT that closes the session. The registry checks the digest
    // too, and refuses with DIGEST_INVALID if the content differs.
    auto d = FinishUpload(loc, *expected, size.value_or(-1), &hashing, size);
    if (!d.ok()) {
      cancel();
      return d.status().WithContext(what);
    }
    Digest got = hashing.Finish();
    if (got != *expected) return DigestMismatch(what + ": the content hashes to " + got.ToString());
    d->size = static_cast<int64_t>(hashing.size());
    if (Status s = CheckStored(got, hashing.size(), "the upload"); !s.ok()) return s.WithContext(what);
    return d;
  }

  // Where the session stands: bytes held and the Location to continue at. NotFound when it is gone.
  struct Standing {
    uint64_t held;
    std::string location;
  };
  auto query = [&]() -> Result<Standing> {
    Request req;
    req.url = loc;
    auto resp = transport_->RoundTrip(req);
    if (!resp.ok()) return resp.status();
    if (resp->status != 204 && resp->status != 202) return HttpError("GET", req.url, *resp);
    auto held = ParseUploadRange(resp->headers.Get("Range"));
    if (!held) return FailedPrecondition("GET " + RedactUrl(req.url) + ": no usable Range header");
    std::string l = resp->headers.Get("Location");
    return Standing{*held, l.empty() ? loc : ResolveUrl(loc, l)};
  };

  bool restarted = false;
  bool resumed = false;
  std::string chunk;
  while (true) {
    chunk.resize(chunk_size);
    size_t got = 0;
    while (got < chunk.size()) {
      auto n = hashing.Read(chunk.data() + got, chunk.size() - got);
      if (!n.ok()) {
        cancel();
        return n.status().WithContext(what);
      }
      if (*n == 0) break;
      got += *n;
    }
    chunk.resize(got);
    if (got == 0) break;
    const uint64_t start = hashing.size() - got;  // the registry holds [0, start)
    size_t from = 0;                              // of this chunk, what the registry holds
    int resumes = 0;                              // per chunk: a long blob may see several faults
    while (from < got) {
      Request req;
      req.method = "PATCH";
      req.url = loc;
      req.headers.Set("Content-Type", "application/octet-stream");
      // The chunk is sent from where it is (no copy): one chunk per upload is all it holds.
      ViewReader body(std::string_view(chunk).substr(from));
      req.body_reader = &body;
      req.body_size = got - from;
      req.headers.Set("Content-Range", std::to_string(start + from) + "-" + std::to_string(start + got - 1));
      auto resp = transport_->RoundTrip(req);
      Status failure;
      if (!resp.ok()) {
        failure = resp.status();
      } else if (resp->status == 202 || resp->status == 204) {
        if (std::string l = resp->headers.Get("Location"); !l.empty()) loc = ResolveUrl(loc, l);
        from = got;
        break;
      } else {
        failure = HttpError("PATCH", req.url, *resp);
        if (resp->status == 416) failure = Unavailable(failure.message());  // ask where it stands
      }
      if (!failure.temporary() || resumes >= options_->resume_attempts) {
        cancel();
        return failure.WithContext(what);
      }
      ++resumes;
      if (!resp.ok() && options_->resume_settle.count() > 0) {
        // A cut connection may leave the registry still writing the request it had: let that end
        // before asking, or a resumed PATCH races it into the same session file.
        std::this_thread::sleep_for(options_->resume_settle);
      }
      auto standing = query();
      bool lost = !standing.ok() && standing.status().code() == ErrorCode::kNotFound;
      if (!standing.ok() && !lost) {
        cancel();
        return standing.status().WithContext("asking where the upload stands after: " + failure.message())
            .WithContext(what);
      }
      // "0-0" is either nothing or one byte (distribution); a fresh session is the safe reading.
      if (!lost && (standing->held == 0 || standing->held < start || standing->held > start + got)) lost = true;
      if (lost) {
        std::string why = standing.ok() ? "the registry holds " + std::to_string(standing->held) +
                                              " bytes, kiln sent " + std::to_string(start + from)
                                        : "the upload session is gone";
        if (restarted) {
          cancel();
          return failure.WithContext(why + " after a restart already").WithContext(what);
        }
        restarted = true;
        if (start > 0) {
          // Earlier chunks are no longer in memory: the caller opens the source again.
          cancel();
          return Unavailable(what + ": upload interrupted at " + Mib(start + from) + " (" + failure.message() +
                             ") and " + why + "; the blob must be sent again");
        }
        cancel();
        auto fresh = StartUpload("", nullptr);
        if (!fresh.ok()) return fresh.status().WithContext(what);
        loc = *fresh;
        from = 0;
        notice("restarted upload of " + blob_name + " after: " + failure.message() + " (" + why + ")");
        continue;
      }
      loc = standing->location;
      from = static_cast<size_t>(standing->held - start);
      resumed = true;
      notice("resumed upload of " + blob_name + " at " + Mib(standing->held) + " after: " + failure.message());
    }
  }
  Digest got = hashing.Finish();
  if (expected && got != *expected) {
    cancel();
    return DigestMismatch(what + ": the content hashes to " + got.ToString());
  }
  auto d = CompleteUpload(loc, got, hashing.size(), resumed ? "a resumed upload" : "the upload");
  if (!d.ok()) {
    cancel();
    return d.status().WithContext(what);
  }
  return d;
}

}  // namespace kiln::registry
