// The distribution API for one repository (manifest GET/PUT, blob GET/HEAD, mount, upload) and the
// Client that builds each repository's transport stack: auth → retry → wire.
//
// Every error names the registry and repository and keeps the HTTP status and the registry's error
// code; none carries a credential, token or upload-session URL query.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/image_model.h"
#include "core/io.h"
#include "registry/auth.h"
#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/retry.h"
#include "registry/transport.h"

namespace kiln::registry {

/// The Accept header value for manifest GETs: OCI index/manifest, Docker list/v2s2.
extern const char kManifestAccept[];

struct ClientOptions {
  /// Registries reached over plain HTTP (only those the user named).
  std::set<std::string> insecure_registries;
  /// Mirrors for docker.io, tried in order for pulls: "host[:port]" (HTTPS unless listed in
  /// insecure_registries) or "http(s)://host[:port]".
  std::vector<std::string> docker_io_mirrors;
  /// Kaniko's --registry-map: registry (as normalised: "docker.io", "ghcr.io") → replacements tried
  /// in order for pulls, each "host[:port][/path]" or "http(s)://host[:port][/path]". A path is a
  /// prefix of the repository ("mirror.example.com/dockerhub" pulls library/debian from
  /// mirror.example.com/dockerhub/library/debian), as Harbor and Nexus proxy projects need.
  /// docker_io_mirrors above are the same as entries for "docker.io" (after the map's).
  std::map<std::string, std::vector<std::string>> registry_maps;
  /// After every mirror or mapped registry failed, try the registry itself.
  bool mirror_fallback = true;
  RetryPolicy retry;
  /// 0: monolithic uploads (POST, then PUT with the whole blob). Otherwise PATCH chunks of this size,
  /// each held in memory once.
  uint64_t chunk_size = 0;
  /// With chunk_size 0, blobs larger than this, or of unknown size or digest, are still sent in
  /// PATCH chunks of this size so that a failed request resumes where the registry stands instead
  /// of starting the blob again (0: never). 16 MiB: one chunk per concurrent upload is held in memory
  /// (4 parallel uploads stay at 64 MiB, under kiln's 128 MiB budget), a resend after a fault costs at
  /// most 16 MiB, and the per-request overhead is negligible (a 2 GiB layer is 128 requests).
  uint64_t resumable_chunk_size = 16 << 20;
  /// After a connection cut mid-PATCH, wait this long before asking the registry where the upload
  /// stands, so the request it may still be writing ends first.
  std::chrono::milliseconds resume_settle{300};
  /// Called (from upload threads) with a one-line notice when an upload resumes or restarts.
  std::function<void(std::string_view)> notice;
  /// How many times a blob stream cut mid-way is resumed with a Range request.
  int resume_attempts = 5;
};

/// The bytes an upload session holds from its `Range: 0-N` header (N+1; "0-0" reads as 0), or
/// nullopt when the header is missing or not of that form.
std::optional<uint64_t> ParseUploadRange(std::string_view range);

/// One registry endpoint: the name credentials and messages use, and the base URL requests go to.
struct Endpoint {
  std::string registry;  // "docker.io", "127.0.0.1:5000"
  std::string base_url;  // "https://registry-1.docker.io"
  /// Prepended to repository names on this endpoint ("dockerhub" for a mirror "host/dockerhub").
  std::string repository_prefix;
};

/// One repository on one endpoint, with the scopes it was opened for. Thread-safe.
class Repository {
 public:
  Repository(Endpoint endpoint, std::string name, std::unique_ptr<Transport> transport, const ClientOptions* options);

  const Endpoint& endpoint() const { return endpoint_; }
  const std::string& name() const { return name_; }
  /// "registry/name" for messages.
  std::string Describe() const { return endpoint_.registry + "/" + name_; }

  /// GET a manifest by tag or digest with the Accept header above. Checks the bytes against the
  /// requested digest, or against Docker-Content-Digest for a tag. Schema 1 and unknown types fail
  /// with kUnsupported.
  Result<RawManifest> GetManifest(std::string_view tag_or_digest);
  /// HEAD a manifest: its descriptor, or nullopt when the registry does not have it.
  Result<std::optional<Descriptor>> HeadManifest(std::string_view tag_or_digest);
  /// PUT a manifest under a tag or its digest. Fails with kDigestMismatch if the registry's
  /// Docker-Content-Digest differs from the bytes' digest. Returns the digest.
  Result<Digest> PutManifest(std::string_view tag_or_digest, std::string_view bytes, std::string_view media_type);

  /// GET /v2/NAME/referrers/DIGEST (the OCI referrers API): the image index listing the manifests
  /// whose subject is `subject`, or nullopt when the registry has no referrers API (404).
  Result<std::optional<std::string>> GetReferrers(const Digest& subject);

  /// Streams a blob, verified against `digest` (and `size` when known) as it arrives; a connection
  /// cut mid-way is resumed with a Range request. The reader fails with kDigestMismatch at the end
  /// of a corrupt stream, before returning end-of-stream.
  Result<std::unique_ptr<Reader>> GetBlob(const Digest& digest, std::optional<int64_t> size = std::nullopt);
  /// The blob's size if the repository has it, nullopt if not.
  Result<std::optional<int64_t>> HeadBlob(const Digest& digest);
  /// Cross-repository mount (POST ?mount=&from=). True when the registry mounted it (201); false
  /// when it did not (the upload session it opened instead is cancelled).
  Result<bool> MountBlob(const Digest& digest, std::string_view from_repository);
  /// Uploads `content` (read once, streamed). With `expected` set, the upload is checked against it
  /// and fails with kDigestMismatch if the content differs; without it, the digest is computed while
  /// streaming. `size` (when known) becomes the Content-Length. Succeeds only after the registry
  /// answered 201 for the computed digest. Returns the blob's descriptor (digest and size).
  Result<Descriptor> UploadBlob(Reader& content, std::optional<Digest> expected = std::nullopt,
                                std::optional<int64_t> size = std::nullopt);

 private:
  friend class ResumingBlobReader;
  std::string Url(std::string_view kind, std::string_view ref) const;
  Status Fail(Status s, std::string_view what) const;
  Result<std::string> StartUpload(std::string_view query, bool* mounted);
  Status CheckStored(const Digest& digest, uint64_t size, std::string_view after);
  // Closes the upload session at `location` (every byte sent) with the PUT for `digest`, then checks
  // that the registry serves the blob (CheckStored). A PUT that landed but whose answer was lost
  // (the retried PUT then finds no session) counts as done when HEAD finds the blob.
  Result<Descriptor> CompleteUpload(const std::string& location, const Digest& digest, uint64_t size,
                                    std::string_view after);
  Result<Descriptor> FinishUpload(const std::string& location, const Digest& digest, int64_t size,
                                  Reader* body, std::optional<int64_t> body_size);

  Endpoint endpoint_;
  std::string name_;
  std::unique_ptr<Transport> transport_;
  const ClientOptions* options_;
};

/// Builds repositories for a run: one retry layer over the wire, one Authenticator per registry
/// endpoint (shared token cache). Thread-safe. Does not own `wire`, `keychain` or `clock`.
class Client {
 public:
  Client(Transport* wire, Keychain* keychain, ClientOptions options, Clock* clock = RealClock::Get());

  /// The endpoints to pull `registry` from: its registry_maps entries (and for docker.io the
  /// mirrors) first, then the registry itself unless mirror_fallback is off.
  std::vector<Endpoint> PullEndpoints(const std::string& registry) const;
  /// The endpoint to push to (never a mirror).
  Endpoint PushEndpoint(const std::string& registry) const;

  /// Opens `repository` on `endpoint` with pull (and push) scope, plus pull scope on each repository
  /// in `mount_from` (sources of cross-repository mounts).
  Result<std::unique_ptr<Repository>> Open(const Endpoint& endpoint, const std::string& repository, bool push,
                                           const std::vector<std::string>& mount_from = {});

  const ClientOptions& options() const { return options_; }

 private:
  Result<std::shared_ptr<Authenticator>> AuthFor(const Endpoint& endpoint);

  Keychain* keychain_;
  ClientOptions options_;
  Clock* clock_;
  RetryTransport retry_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Authenticator>> auths_;  // by base URL
};

}  // namespace kiln::registry
