// ImageSource and ImageSink over a registry repository.
#include <map>
#include <mutex>

#include "registry/registry_image.h"

namespace kiln::registry {
namespace {

class RegistrySource : public ImageSource {
 public:
  RegistrySource(Reference ref, std::unique_ptr<Repository> repo, RawManifest root)
      : ref_(std::move(ref)), repo_(std::move(repo)), root_(std::move(root)) {}

  std::string Describe() const override { return "docker://" + ref_.ToString(); }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    KILN_ASSIGN_OR_RETURN(RawManifest m, repo_->GetManifest(d.digest.ToString()));
    if (d.size > 0 && static_cast<int64_t>(m.bytes.size()) != d.size) {
      return DigestMismatch("manifest " + d.digest.ToString() + " in " + Describe() + " is " +
                            std::to_string(m.bytes.size()) + " bytes, the index says " + std::to_string(d.size));
    }
    return m;
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    return repo_->GetBlob(d.digest, d.size > 0 ? std::optional<int64_t>(d.size) : std::nullopt);
  }
  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    return std::make_pair(repo_->endpoint().registry, repo_->name());
  }

 private:
  Reference ref_;
  std::unique_ptr<Repository> repo_;
  RawManifest root_;
};

class RegistrySink : public ImageSink {
 public:
  RegistrySink(Client* client, Reference ref, std::shared_ptr<Repository> repo)
      : client_(client), ref_(std::move(ref)), repo_(std::move(repo)) {}

  std::string Describe() const override { return "docker://" + ref_.ToString(); }

  Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource& from) override {
    KILN_ASSIGN_OR_RETURN(auto size, repo_->HeadBlob(d.digest));
    // A blob of the wrong size (a broken earlier upload) is not there: send it again.
    if (size && (d.size <= 0 || *size == d.size)) return BlobPresence::kPresent;
    auto loc = from.RegistryLocation();
    if (!loc || loc->first != repo_->endpoint().registry || loc->second == repo_->name()) return BlobPresence::kAbsent;
    KILN_ASSIGN_OR_RETURN(Repository * mount_repo, MountRepo(loc->second));
    KILN_ASSIGN_OR_RETURN(bool mounted, mount_repo->MountBlob(d.digest, loc->second));
    return mounted ? BlobPresence::kMounted : BlobPresence::kAbsent;
  }

  Status PutBlob(const Descriptor& d, Reader& content) override {
    auto r = repo_->UploadBlob(content, d.digest, d.size > 0 ? std::optional<int64_t>(d.size) : std::nullopt);
    return r.status();
  }

  Status PutManifest(const RawManifest& m) override {
    return repo_->PutManifest(m.digest.ToString(), m.bytes, m.media_type).status();
  }

  Status PutRoot(const RawManifest& m) override {
    if (ref_.digest() && *ref_.digest() != m.digest) {
      return FailedPrecondition("cannot push to " + ref_.ToString() + ": the image's digest is " + m.digest.ToString());
    }
    std::string tag = ref_.TagOrDefault();
    return repo_->PutManifest(tag.empty() ? m.digest.ToString() : tag, m.bytes, m.media_type).status();
  }

 private:
  // A handle with pull scope on the mount source as well as push on the target.
  Result<Repository*> MountRepo(const std::string& from) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mount_repos_.find(from);
    if (it != mount_repos_.end()) return it->second.get();
    KILN_ASSIGN_OR_RETURN(auto repo, client_->Open(repo_->endpoint(), repo_->name(), true, {from}));
    Repository* raw = repo.get();
    mount_repos_[from] = std::move(repo);
    return raw;
  }

  Client* client_;
  Reference ref_;
  std::shared_ptr<Repository> repo_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Repository>> mount_repos_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(Client& client, const Reference& ref) {
  Status first_error, last_error;
  for (const Endpoint& e : client.PullEndpoints(ref.registry())) {
    KILN_ASSIGN_OR_RETURN(auto repo, client.Open(e, ref.repository(), false));
    auto root = repo->GetManifest(ref.Identifier());
    if (root.ok()) {
      return std::unique_ptr<ImageSource>(std::make_unique<RegistrySource>(ref, std::move(repo), std::move(root).value()));
    }
    // A manifest kiln refuses (schema 1) or a digest mismatch is the answer, not a mirror problem.
    if (root.status().code() == ErrorCode::kUnsupported) return root.status();
    if (first_error.ok()) first_error = root.status();
    last_error = root.status();
  }
  if (!first_error.ok() && first_error.message() != last_error.message()) {
    return last_error.WithContext("(mirrors failed too: " + first_error.message() + ")");
  }
  return last_error;
}

Result<std::unique_ptr<ImageSink>> OpenRegistrySink(Client& client, const Reference& ref) {
  KILN_ASSIGN_OR_RETURN(auto repo, client.Open(client.PushEndpoint(ref.registry()), ref.repository(), true));
  return OpenRegistrySink(client, ref, std::move(repo));
}

std::unique_ptr<ImageSink> OpenRegistrySink(Client& client, const Reference& ref, std::shared_ptr<Repository> repo) {
  return std::make_unique<RegistrySink>(&client, ref, std::move(repo));
}

}  // namespace kiln::registry
