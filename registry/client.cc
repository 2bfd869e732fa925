#include "registry/client.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "core/media_types.h"
#include "registry/errors.h"
#include "core/reference.h"

namespace kiln::registry {

const char kManifestAccept[] =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

namespace {

// OCI distribution: registries may refuse manifests over 4 MiB; clients should too.
constexpr size_t kMaxManifestBytes = 4 << 20;

std::string WithQuery(const std::string& url, std::string_view query) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + std::string(query);
}

bool Ok2xx(int s) { return s >= 200 && s < 300; }

}  // namespace

// A blob stream that survives a connection cut: it asks again for the rest with a Range request.
class ResumingBlobReader : public Reader {
 public:
  ResumingBlobReader(Repository* repo, std::string url, Response first)
      : repo_(repo), url_(std::move(url)), resp_(std::move(first)) {}

  Result<size_t> Read(void* buf, size_t n) override {
    while (true) {
      auto r = resp_.body->Read(buf, n);
      if (r.ok()) {
        offset_ += *r;
        return r;
      }
      if (!r.status().temporary() || attempts_ >= repo_->options_->resume_attempts) {
        return repo_->Fail(r.status(), "pulling blob");
      }
      ++attempts_;
      Request req;
      req.url = url_;
      req.headers.Set("Range", "bytes=" + std::to_string(offset_) + "-");
      auto next = repo_->transport_->RoundTrip(req);
      if (!next.ok()) {
        if (next.status().temporary()) continue;  // counts as an attempt; resp_ still fails → retry
        return repo_->Fail(next.status(), "resuming blob");
      }
      if (next->status == 200) {
        // The registry ignored the Range: skip what we already have.
        uint64_t skip = offset_;
        char tmp[64 << 10];
        while (skip > 0) {
          auto k = next->body->Read(tmp, std::min<uint64_t>(skip, sizeof tmp));
          if (!k.ok()) return repo_->Fail(k.status(), "resuming blob");
          if (*k == 0) return repo_->Fail(Unavailable("blob shorter on retry"), "resuming blob");
          skip -= *k;
        }
      } else if (next->status != 206) {
        return repo_->Fail(HttpError("GET", url_, *next), "resuming blob");
      }
      resp_ = std::move(next).value();
    }
  }

 private:
  Repository* repo_;
  std::string url_;
  Response resp_;
  uint64_t offset_ = 0;
  int attempts_ = 0;
};

Repository::Repository(Endpoint endpoint, std::string name, std::unique_ptr<Transport> transport,
                       const ClientOptions* options)
    : endpoint_(std::move(endpoint)), name_(std::move(name)), transport_(std::move(transport)), options_(options) {}

std::string Repository::Url(std::string_view kind, std::string_view ref) const {
  return endpoint_.base_url + "/v2/" + name_ + "/" + std::string(kind) + "/" + std::string(ref);
}

Status Repository::Fail(Status s, std::string_view what) const {
  return s.WithContext(std::string(what) + " (registry " + endpoint_.registry + ", repository " + name_ + ")");
}

Result<RawManifest> Repository::GetManifest(std::string_view ref) {
  std::string what = "pulling manifest " + Describe() + (ref.find(':') != std::string_view::npos ? "@" : ":") +
                     std::string(ref);
  Request req;
  req.url = Url("manifests", ref);
  req.headers.Set("Accept", kManifestAccept);
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext(what);
  if (resp->status != 200) return HttpError("GET", req.url, *resp).WithContext(what);
  RawManifest m;
  auto body = ReadAll(*resp->body, kMaxManifestBytes);
  if (!body.ok()) return body.status().WithContext(what);
  m.bytes = std::move(body).value();
  m.media_type = resp->headers.Get("Content-Type");
  if (size_t semi = m.media_type.find(';'); semi != std::string::npos) m.media_type.resize(semi);
  m.digest = Sha256Of(m.bytes);

  auto pinned = Digest::Parse(ref);
  std::string header = resp->headers.Get("Docker-Content-Digest");
  if (pinned.ok() && pinned->algorithm() == "sha256" && *pinned != m.digest) {
    return DigestMismatch(what + ": content hashes to " + m.digest.ToString());
  }
  if (!pinned.ok() && !header.empty()) {
    auto hd = Digest::Parse(header);
    if (hd.ok() && hd->algorithm() == "sha256" && *hd != m.digest) {
      return DigestMismatch(what + ": the registry says " + header + " but the content hashes to " +
                            m.digest.ToString());
    }
  }
  auto kind = DetectManifestKind(m.bytes, m.media_type);
  if (!kind.ok()) return kind.status().WithContext(what);
  if (m.media_type.empty() || (!media_type::IsImageManifest(m.media_type) && !media_type::IsIndex(m.media_type))) {
    // Some registries serve application/json; fall back to the document's own mediaType.
    try {
      auto j = nlohmann::json::parse(m.bytes);
      m.media_type = j.value("mediaType", "");
    } catch (const std::exception&) {
    }
    if (m.media_type.empty()) {
      m.media_type = std::string(*kind == ManifestKind::kIndex ? media_type::kOciIndex : media_type::kOciManifest);
    }
  }
  return m;
}

Result<std::optional<Descriptor>> Repository::HeadManifest(std::string_view ref) {
  Request req;
  req.method = "HEAD";
  req.url = Url("manifests", ref);
  req.headers.Set("Accept", kManifestAccept);
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return Fail(resp.status(), "checking manifest");
  if (resp->status == 404) return std::optional<Descriptor>();
  if (resp->status != 200) return Fail(HttpError("HEAD", req.url, *resp), "checking manifest");
  Descriptor d;
  d.media_type = resp->headers.Get("Content-Type");
  d.size = std::atoll(resp->headers.Get("Content-Length").c_str());
  auto dg = Digest::Parse(resp->headers.Get("Docker-Content-Digest"));
  if (dg.ok()) d.digest = *dg;
  return std::optional<Descriptor>(d);
}

Result<Digest> Repository::PutManifest(std::string_view ref, std::string_view bytes, std::string_view mt) {
  std::string what = "pushing manifest " + Describe() + (ref.find(':') != std::string_view::npos ? "@" : ":") +
                     std::string(ref);
  Digest digest = Sha256Of(bytes);
  Request req;
  req.method = "PUT";
  req.url = Url("manifests", ref);
  req.headers.Set("Content-Type", std::string(mt));
  req.body = std::string(bytes);
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext(what);
  if (!Ok2xx(resp->status)) return HttpError("PUT", req.url, *resp).WithContext(what);
  std::string header = resp->headers.Get("Docker-Content-Digest");
  if (!header.empty() && header != digest.ToString()) {
    return DigestMismatch(what + ": the registry stored " + header + " but kiln sent " + digest.ToString());
  }
  return digest;
}

Result<std::optional<std::string>> Repository::GetReferrers(const Digest& subject) {
  std::string what = "listing referrers of " + Describe() + "@" + subject.ToString();
  Request req;
  req.url = Url("referrers", subject.ToString());
  req.headers.Set("Accept", std::string(media_type::kOciIndex));
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext(what);
  // A registry without the API answers 404 (distribution 2.x: "page not found"); one with it answers
  // 200 with an index, empty when nothing refers to the digest.
  if (resp->status == 404) return std::optional<std::string>();
  if (resp->status != 200) return HttpError("GET", req.url, *resp).WithContext(what);
  auto body = ReadAll(*resp->body, kMaxManifestBytes);
  if (!body.ok()) return body.status().WithContext(what);
  return std::optional<std::string>(std::move(body).value());
}

Result<std::unique_ptr<Reader>> Repository::GetBlob(const Digest& digest, std::optional<int64_t> size) {
  std::string what = "pulling blob " + digest.ToString() + " from " + Describe();
  Request req;
  req.url = Url("blobs", digest.ToString());
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext(what);
  if (resp->status != 200) return HttpError("GET", req.url, *resp).WithContext(what);
  auto raw = std::make_unique<ResumingBlobReader>(this, req.url, std::move(resp).value());
  std::optional<uint64_t> want;
  if (size && *size >= 0) want = static_cast<uint64_t>(*size);
  return NewVerifyingReader(std::move(raw), digest, want, what);
}

Result<std::optional<int64_t>> Repository::HeadBlob(const Digest& digest) {
  Request req;
  req.method = "HEAD";
  req.url = Url("blobs", digest.ToString());
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return Fail(resp.status(), "checking blob " + digest.Short());
  if (resp->status == 404) return std::optional<int64_t>();
  if (resp->status != 200) return Fail(HttpError("HEAD", req.url, *resp), "checking blob " + digest.Short());
  return std::optional<int64_t>(std::atoll(resp->headers.Get("Content-Length").c_str()));
}

Result<std::string> Repository::StartUpload(std::string_view query, bool* mounted) {
  Request req;
  req.method = "POST";
  req.url = endpoint_.base_url + "/v2/" + name_ + "/blobs/uploads/" + (query.empty() ? "" : "?" + std::string(query));
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status();
  if (mounted != nullptr && resp->status == 201) {
    *mounted = true;
    return std::string();
  }
  if (resp->status != 202) return HttpError("POST", req.url, *resp);
  std::string location = resp->headers.Get("Location");
  if (location.empty()) return FailedPrecondition("POST " + RedactUrl(req.url) + ": 202 without a Location header");
  return ResolveUrl(req.url, location);
}

Result<bool> Repository::MountBlob(const Digest& digest, std::string_view from) {
  std::string what = "mounting blob " + digest.Short() + " from " + std::string(from);
  bool mounted = false;
  auto location = StartUpload("mount=" + UrlEscape(digest.ToString()) + "&from=" + UrlEscape(from), &mounted);
  if (!location.ok()) return Fail(location.status(), what);
  if (mounted) return true;
  // The registry opened an upload session instead; cancel it (best effort).
  Request del;
  del.method = "DELETE";
  del.url = *location;
  auto r = transport_->RoundTrip(del);
  (void)r;
  return false;
}

Result<Descriptor> Repository::FinishUpload(const std::string& location, const Digest& digest, int64_t size,
                                            Reader* body, std::optional<int64_t> body_size) {
  Request req;
  req.method = "PUT";
  req.url = WithQuery(location, "digest=" + UrlEscape(digest.ToString()));
  req.headers.Set("Content-Type", "application/octet-stream");
  if (body != nullptr) {
    req.body_reader = body;
    if (body_size) req.body_size = static_cast<uint64_t>(*body_size);
  }
  auto resp = transport_->RoundTrip(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 201) return HttpError("PUT", req.url, *resp);
  std::string header = resp->headers.Get("Docker-Content-Digest");
  if (!header.empty() && header != digest.ToString()) {
    return DigestMismatch("the registry stored " + header + " for a blob kiln sent as " + digest.ToString());
  }
  Descriptor d;
  d.digest = digest;
  d.size = size;
  d.media_type = "application/octet-stream";
  return d;
}

Client::Client(Transport* wire, Keychain* keychain, ClientOptions options, Clock* clock)
    : keychain_(keychain), options_(std::move(options)), clock_(clock), retry_(wire, options_.retry, clock) {}

std::vector<Endpoint> Client::PullEndpoints(const std::string& registry) const {
  std::vector<std::string> replacements;
  if (auto it = options_.registry_maps.find(registry); it != options_.registry_maps.end()) {
    replacements = it->second;
  }
  if (registry == kDockerHub) {
    replacements.insert(replacements.end(), options_.docker_io_mirrors.begin(), options_.docker_io_mirrors.end());
  }
  std::vector<Endpoint> out;
  for (const std::string& m : replacements) {
    Endpoint e;
    std::string scheme;
    std::string rest = m;
    if (size_t p = m.find("://"); p != std::string::npos) {
      scheme = m.substr(0, p);
      rest = m.substr(p + 3);
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    size_t slash = rest.find('/');
    e.registry = rest.substr(0, slash);
    if (slash != std::string::npos) e.repository_prefix = rest.substr(slash + 1);
    if (scheme.empty()) scheme = options_.insecure_registries.count(e.registry) ? "http" : "https";
    e.base_url = scheme + "://" + (e.registry == kDockerHub ? ApiHostFor(e.registry) : e.registry);
    out.push_back(e);
  }
  if (!out.empty() && !options_.mirror_fallback) return out;
  out.push_back(PushEndpoint(registry));
  return out;
}

Endpoint Client::PushEndpoint(const std::string& registry) const {
  return Endpoint{registry, (options_.insecure_registries.count(registry) ? "http://" : "https://") +
                                ApiHostFor(registry), ""};
}

Result<std::shared_ptr<Authenticator>> Client::AuthFor(const Endpoint& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = auths_.find(endpoint.base_url);
  if (it != auths_.end()) return it->second;
  auto cred = keychain_->Resolve(endpoint.registry);
  if (!cred.ok()) return cred.status().WithContext("looking up credentials for " + endpoint.registry);
  auto auth = std::make_shared<Authenticator>(&retry_, endpoint.registry, endpoint.base_url, *cred, clock_);
  auth->SetCredentialSources(keychain_->Searched());
  auths_[endpoint.base_url] = auth;
  return auth;
}

Result<std::unique_ptr<Repository>> Client::Open(const Endpoint& endpoint, const std::string& repository, bool push,
                                                 const std::vector<std::string>& mount_from) {
  KILN_ASSIGN_OR_RETURN(auto auth, AuthFor(endpoint));
  if (!endpoint.repository_prefix.empty()) {
    return Open(Endpoint{endpoint.registry, endpoint.base_url, ""}, endpoint.repository_prefix + "/" + repository,
                push, mount_from);
  }
  std::vector<std::string> scopes{RepositoryScope(repository, push)};
  for (const auto& from : mount_from) {
    if (from != repository) scopes.push_back(RepositoryScope(from, false));
  }
  auto transport = std::make_unique<AuthTransport>(&retry_, std::move(auth), std::move(scopes));
  return std::make_unique<Repository>(endpoint, repository, std::move(transport), &options_);
}

}  // namespace kiln::registry
