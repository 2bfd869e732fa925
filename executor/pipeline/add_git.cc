// ADD of a git repository (BuildKit's rules): the repository is fetched at its ref (git_source.h) and
// its tree — the subdirectory when the URL names one — is copied into the destination as a directory
// of the build context would be: owned by 0:0 (or --chown), modes as git checked them out, mtimes
// those of the checkout (the commit's time when SOURCE_DATE_EPOCH is set, as BuildKit), no .git
// unless --keep-git-dir. --checksum names the commit (or the annotated tag) to expect. The layer
// cache key covers the resolved commit: a new commit on a branch rebuilds the step.
#include "core/digest.h"
#include "executor/cache/cache_key.h"
#include "executor/pipeline/stage_build.h"
#include "executor/steps/copy_step.h"
#include "executor/steps/git_source.h"
#include "layers/safe_path.h"

#include <fcntl.h>
#include <cctype>
#include <unistd.h>

namespace kiln::executor {

using namespace kiln::dockerfile;

namespace {

void RemoveCheckout(const std::string& dir) {
  size_t slash = dir.rfind('/');
  int fd = ::open(dir.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)layers::RemoveAllAt(fd, dir.substr(slash + 1));
  ::close(fd);
}

}  // namespace

Status StageBuild::AddGit(size_t index, const Instruction& inst, CopyRequest req, const std::string& chown,
                          const std::string& chmod) {
  if (req.sources.size() != 1 || !req.inline_sources.empty()) {
    return InvalidArgument("ADD of a git repository takes exactly one source (give each repository its own ADD)");
  }
  if (!svc_.git) return FailedPrecondition("ADD of a git repository: no git runner was configured");
  const auto* add = std::get_if<AddInst>(&inst.cmd);
  const std::string shown = RedactGitUrl(req.sources[0]);
  KILN_ASSIGN_OR_RETURN(GitUrl url, ParseGitUrl(req.sources[0]));
  // The URL's query may say what the flags say (BuildKit's "?keep-git-dir=", "?checksum="); the two
  // must agree.
  bool keep_git_dir = add != nullptr && add->keep_git_dir;
  if (url.keep_git_dir) {
    if (keep_git_dir && !*url.keep_git_dir) {
      return InvalidArgument("ADD " + shown + ": --keep-git-dir=true conflicts with the URL's keep-git-dir=false");
    }
    keep_git_dir = *url.keep_git_dir;
  }
  if (!url.checksum.empty()) {
    if (!req.checksum.empty() && req.checksum != url.checksum) {
      return InvalidArgument("ADD " + shown + ": --checksum=" + req.checksum + " conflicts with the URL's checksum=" +
                             url.checksum);
    }
    req.checksum = url.checksum;
  }
  std::string scheme = url.remote.substr(0, 7);
  for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (scheme == "file://" && !svc_.git_allow_file) {
    return PermissionDenied("ADD " + shown + ": a file:// repository is on the build machine, outside the build "
                            "context; set KILN_ALLOW_FILE_GIT=1 to allow it (local mirrors, tests), or pass it "
                            "with --build-context NAME=" + shown + " and COPY --from=NAME");
  }

  std::string dir = svc_.work_dir + "/git-" + std::to_string(ps_.index) + "-" + std::to_string(index);
  RemoveCheckout(dir);
  GitCheckoutOptions options;
  options.keep_git_dir = keep_git_dir;
  options.commit_mtime = svc_.git_commit_mtime;
  if (url.submodules) options.submodules = *url.submodules;
  std::unique_ptr<GitRunner> git = svc_.git(url.remote);
  auto t = std::chrono::steady_clock::now();
  Result<GitCheckout> checkout = CheckoutGit(*git, url, dir, options);
  svc_.times->copy += std::chrono::steady_clock::now() - t;
  if (!checkout.ok()) {
    RemoveCheckout(dir);
    return checkout.status().WithContext("ADD " + shown);
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() { RemoveCheckout(dir); }
  } cleanup{dir};
  svc_.log->Info("ADD " + shown + ": commit " + checkout->commit +
                 (url.subdir.empty() ? std::string() : ", directory " + url.subdir) +
                 (keep_git_dir ? ", with its .git directory" : ""));
  if (!req.checksum.empty()) {
    Status s = VerifyGitChecksum(req.checksum, *checkout);
    if (!s.ok()) return s.WithContext("ADD " + shown);
  }

  req.sources = {"."};
  req.checksum.clear();
  if (CacheOn(true)) {
    // The commit stands for the whole tree: the files need not be hashed.
    std::string what = inst.keyword + " git\nremote=" + RedactGitUrl(url.remote) + "\nref=" + url.ref +
                       "\ncommit=" + checkout->commit + "\nsubdir=" + url.subdir + "\nkeep_git_dir=" +
                       (keep_git_dir ? "1" : "0") + "\nsubmodules=" + (options.submodules ? "1" : "0") + "\nmtime=" + (options.commit_mtime ? "commit" : "checkout") +
                       "\ndest=" + req.dest + "\nworkdir=" + req.workdir + "\nchown=" + chown + "\nchmod=" + chmod;
    for (const std::string& x : req.excludes) what += "\nexclude=" + x;
    KILN_ASSIGN_OR_RETURN(bool hit, TryCopyCache(index, what, Sha256Of("git:" + checkout->commit + ":" + url.subdir)));
    if (hit) return OkStatus();
  }
  KILN_RETURN_IF_ERROR(EnsureRootfs());
  if (!chown.empty()) {
    KILN_ASSIGN_OR_RETURN(auto ids, ResolveChown(rootfs_, chown));
    req.chown = ids;
  }
  CopySource src;
  src.root = checkout->root;
  t = std::chrono::steady_clock::now();
  Result<CopyResult> r = ExecuteCopy(src, rootfs_, req, nullptr);
  svc_.times->copy += std::chrono::steady_clock::now() - t;
  if (!r.ok()) return r.status().WithContext("ADD " + shown);
  KILN_RETURN_IF_ERROR(AddPathsLayer(r->changed, inst.original));
  note_ = std::to_string(r->files) + " files at " + checkout->commit.substr(0, 12) + ", " + FormatBytes(r->bytes) +
          (note_.empty() ? "" : "; " + note_);
  return StoreInCache();
}

}  // namespace kiln::executor
