#include "registry/curl_transport.h"

#include <curl/curl.h>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

namespace kiln::registry {

struct CurlTransport::Handle {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

namespace {

// Above this much unread response data the transfer is paused until the reader catches up.
constexpr size_t kMaxBuffered = 1 << 20;
constexpr size_t kMaxIdleHandles = 8;

// A reader over bytes owned by someone else (the Request outlives the transfer).
class ViewReader : public Reader {
 public:
  explicit ViewReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(void* buf, size_t n) override {
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

// The state of one transfer; owned by the response body reader once RoundTrip returns.
struct Transfer {
  CurlTransport* owner = nullptr;
  std::unique_ptr<CurlTransport::Handle> h;
  curl_slist* req_headers = nullptr;
  std::string what;  // "METHOD url-without-query" for messages
  std::unique_ptr<Reader> owned_body;
  Reader* body = nullptr;
  Status body_error;
  Headers headers;
  std::string buf;
  size_t buf_pos = 0;
  bool paused = false;
  bool got_data = false;
  bool done = false;
  bool added = false;
  CURLcode result = CURLE_OK;
  char errbuf[CURL_ERROR_SIZE] = {0};

  ~Transfer() {
    if (added) curl_multi_remove_handle(h->multi, h->easy);
    if (req_headers != nullptr) curl_slist_free_all(req_headers);
    if (h != nullptr) owner->Release(std::move(h));
  }

  size_t Buffered() const { return buf.size() - buf_pos; }

  static size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    size_t len = size * n;
    t->got_data = true;
    if (t->Buffered() >= kMaxBuffered) {
      t->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (t->buf_pos > 0 && t->buf_pos * 2 >= t->buf.size()) {
      t->buf.erase(0, t->buf_pos);
      t->buf_pos = 0;
    }
    t->buf.append(p, len);
    return len;
  }

  static size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string_view line(p, size * n);
    // Every status line starts a new header block (100 Continue, followed redirects).
    if (line.substr(0, 5) == "HTTP/") {
      t->headers = Headers();
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      t->headers.Add(std::string(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
    }
    return size * n;
  }

  static size_t OnRead(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    auto r = t->body->Read(p, size * n);
    if (!r.ok()) {
      t->body_error = r.status();
      return CURL_READFUNC_ABORT;
    }
    return *r;
  }

  Status Error() const {
    if (!body_error.ok()) return body_error.WithContext(what + ": reading the request body");
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(result));
    std::string msg = what + ": " + detail + " [curl " + std::to_string(static_cast<int>(result)) + "]";
    switch (result) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SEND_FAIL_REWIND:  // the connection broke mid-upload; the caller re-opens the body
        return Unavailable(msg);
      case CURLE_PEER_FAILED_VERIFICATION:
        return Status(ErrorCode::kFailedPrecondition,
                      msg + " (trust the registry's CA with --registry-certificate HOST=CA.pem or "
                            "/etc/docker/certs.d/HOST/ca.crt, or skip verification for this registry only "
                            "with --skip-tls-verify-registry HOST)");
      default:
        return IoError(msg);
    }
  }

  // Runs the transfer until `ready()` or completion.
  Status Drive(const std::function<bool()>& ready) {
    while (!ready() && !done) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(h->multi, &running);
      if (mc != CURLM_OK) return IoError(what + ": " + curl_multi_strerror(mc));
      int queued = 0;
      while (CURLMsg* m = curl_multi_info_read(h->multi, &queued)) {
        if (m->msg == CURLMSG_DONE) {
          done = true;
          result = m->data.result;
        }
      }
      if (ready() || done) break;
      mc = curl_multi_poll(h->multi, nullptr, 0, 1000, nullptr);
      if (mc != CURLM_OK) return IoError(what + ": " + curl_multi_strerror(mc));
    }
    return OkStatus();
  }
};

class CurlBodyReader : public Reader {
 public:
  explicit CurlBodyReader(std::unique_ptr<Transfer> t) : t_(std::move(t)) {}

  Result<size_t> Read(void* out, size_t n) override {
    if (n == 0) return size_t{0};
    if (t_->Buffered() == 0 && !t_->done) {
      if (t_->paused) {
        t_->paused = false;
        curl_easy_pause(t_->h->easy, CURLPAUSE_CONT);
      }
      KILN_RETURN_IF_ERROR(t_->Drive([this] { return t_->Buffered() > 0 || t_->paused; }));
    }
    if (t_->Buffered() > 0) {
      size_t k = std::min(n, t_->Buffered());
      std::memcpy(out, t_->buf.data() + t_->buf_pos, k);
      t_->buf_pos += k;
      return k;
    }
    if (t_->done && t_->result != CURLE_OK) return t_->Error().WithContext("reading the response body");
    return size_t{0};
  }

 private:
  std::unique_ptr<Transfer> t_;
};

CurlTransport::CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlTransport::~CurlTransport() = default;

std::unique_ptr<CurlTransport::Handle> CurlTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      curl_easy_reset(h->easy);
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->multi = curl_multi_init();
  h->easy = curl_easy_init();
  return h;
}

void CurlTransport::Release(std::unique_ptr<Handle> h) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(h));
}

Status AddCertsDir(const std::string& dir, HostTlsOptions* tls) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return OkStatus();
    return ErrnoStatus("reading certificate directory " + dir, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());  // deterministic order, as Docker's ReadDir
  auto ends_with = [](const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const std::string& n : names) {
    if (ends_with(n, ".crt")) {
      tls->ca_files.push_back(dir + "/" + n);
    } else if (ends_with(n, ".cert")) {
      std::string key = n.substr(0, n.size() - 5) + ".key";
      if (std::find(names.begin(), names.end(), key) == names.end()) {
        return NotFound("client certificate " + dir + "/" + n + " has no key " + key + " beside it");
      }
      tls->client_cert = dir + "/" + n;
      tls->client_key = dir + "/" + key;
    }
  }
  return OkStatus();
}

Result<HostTlsOptions> CurlTransport::TlsFor(const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = tls_cache_.find(host); it != tls_cache_.end()) return it->second;
  HostTlsOptions tls;
  if (auto it = options_.hosts.find(host); it != options_.hosts.end()) tls = it->second;
  for (const std::string& root : options_.certs_d_roots) {
    KILN_RETURN_IF_ERROR(AddCertsDir(root + "/" + host, &tls));
  }
  tls_cache_[host] = tls;
  return tls;
}

namespace {

bool Slurp(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out += ss.str();
  *out += "\n";
  return true;
}

// The PEM "CERTIFICATE" blocks of `text`, each with its BEGIN and END lines (what Go's
// AppendCertsFromPEM takes; other blocks and text between blocks are skipped).
std::vector<std::string_view> PemCertificates(std::string_view text) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string_view> out;
  size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    size_t end = text.find(kEnd, pos + kBegin.size());
    if (end == std::string_view::npos) break;
    out.push_back(text.substr(pos, end + kEnd.size() - pos));
    pos = end + kEnd.size();
  }
  return out;
}

}  // namespace

Status CurlTransport::LoadSystemTrustLocked() {
  if (system_loaded_) return OkStatus();
  std::string bundle;
  if (!options_.system_ca_file.empty()) {
    if (!Slurp(options_.system_ca_file, &bundle)) {
      return NotFound("cannot read the CA bundle " + options_.system_ca_file + " (named by SSL_CERT_FILE)");
    }
  } else if (!Slurp("/etc/ssl/certs/ca-certificates.crt", &bundle)) {
    Slurp("/etc/pki/tls/certs/ca-bundle.crt", &bundle);
  }
  // Every file of every directory, as Go does: GitLab's documented recipe appends a private CA to
  // /kaniko/ssl/certs/additional-ca-cert-bundle.crt, a name OpenSSL's hashed lookup never finds.
  size_t added = 0;
  for (const std::string& dir : options_.system_ca_dirs) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      std::string path = dir + "/" + n;
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) continue;
      std::string text;
      if (!Slurp(path, &text)) continue;
      for (std::string_view cert : PemCertificates(text)) {
        if (bundle.find(cert) != std::string::npos) continue;  // the hashed links of the bundle's own CAs
        bundle.append(cert);
        bundle += "\n";
        ++added;
      }
    }
  }
  system_bundle_ = std::move(bundle);
  system_extra_ = added;
  system_loaded_ = true;
  return OkStatus();
}

Result<const std::string*> CurlTransport::CaBundleFor(const std::string& host, const HostTlsOptions& tls) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = ca_bundles_.find(host); it != ca_bundles_.end()) return &it->second;
  KILN_RETURN_IF_ERROR(LoadSystemTrustLocked());
  if (tls.ca_files.empty() && system_extra_ == 0) return nullptr;  // libcurl's own store is the same trust
  std::string bundle = system_bundle_;
  for (const auto& f : tls.ca_files) {
    if (!Slurp(f, &bundle)) return NotFound("cannot read CA file " + f + " for registry " + host);
  }
  return &(ca_bundles_[host] = std::move(bundle));
}

Result<Response> CurlTransport::RoundTrip(const Request& req) {
  auto t = std::make_unique<Transfer>();
  t->owner = this;
  t->h = Acquire();
  t->what = req.method + " " + RedactUrl(req.url);
  if (t->h->multi == nullptr || t->h->easy == nullptr) return InternalError("curl initialisation failed");
  CURL* e = t->h->easy;

  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());

  // TLS: per-host options only for hosts the user named; otherwise the system store.
  if (req.url.rfind("https://", 0) == 0) {
    std::string host = UrlHost(req.url);
    KILN_ASSIGN_OR_RETURN(HostTlsOptions tls, TlsFor(host));
    if (tls.skip_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      KILN_ASSIGN_OR_RETURN(const std::string* bundle, CaBundleFor(host, tls));
      if (bundle != nullptr) {
        // Built once per host and kept by the transport, which outlives every transfer: not copied.
        curl_blob blob{const_cast<char*>(bundle->data()), bundle->size(), CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
      } else if (!options_.system_ca_file.empty()) {
        curl_easy_setopt(e, CURLOPT_CAINFO, options_.system_ca_file.c_str());
      }
    }
    if (!tls.client_cert.empty()) {
      curl_easy_setopt(e, CURLOPT_SSLCERT, tls.client_cert.c_str());
      curl_easy_setopt(e, CURLOPT_SSLKEY, tls.client_key.c_str());
    }
  }

  bool upload = req.HasStreamBody() || !req.body.empty() || req.method == "PUT" || req.method == "POST" ||
                req.method == "PATCH";
  if (req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (upload) {
    if (req.body_reader != nullptr) {
      t->body = req.body_reader;
    } else if (req.body_opener) {
      KILN_ASSIGN_OR_RETURN(t->owned_body, req.body_opener());
      t->body = t->owned_body.get();
    } else {
      t->owned_body = std::make_unique<ViewReader>(req.body);
      t->body = t->owned_body.get();
    }
    curl_off_t size = req.HasStreamBody() ? (req.body_size ? static_cast<curl_off_t>(*req.body_size) : -1)
                                          : static_cast<curl_off_t>(req.body.size());
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Transfer::OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  // Blob GETs are commonly redirected to object storage. curl (since 7.58) does not forward a custom
  // Authorization header to another host, which is what registries expect.
  if (req.method == "GET" || req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  }

  bool has_content_type = false;
  for (const auto& [k, v] : req.headers.entries()) {
    std::string line = k + ": " + v;
    t->req_headers = curl_slist_append(t->req_headers, line.c_str());
    if (strcasecmp(k.c_str(), "Content-Type") == 0) has_content_type = true;
  }
  // No "Expect: 100-continue" round trip; and no form content type curl would invent for POST.
  t->req_headers = curl_slist_append(t->req_headers, "Expect:");
  if (!has_content_type && upload) t->req_headers = curl_slist_append(t->req_headers, "Content-Type:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->req_headers);

  CURLMcode mc = curl_multi_add_handle(t->h->multi, e);
  if (mc != CURLM_OK) return IoError(t->what + ": " + curl_multi_strerror(mc));
  t->added = true;

  Transfer* raw = t.get();
  KILN_RETURN_IF_ERROR(raw->Drive([raw] { return raw->got_data; }));
  if (raw->done && raw->result != CURLE_OK) return raw->Error();

  Response resp;
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  resp.status = static_cast<int>(code);
  resp.headers = raw->headers;
  resp.body = std::make_unique<CurlBodyReader>(std::move(t));
  return resp;
}

}  // namespace kiln::registry
