#include "executor/pipeline/contexts.h"

#include <sys/stat.h>

#include <cctype>
#include <climits>
#include <cstdlib>

#include "executor/image/image_fetcher.h"

namespace kiln::executor {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// `base` + "/" + `sub`, symlinks resolved, required to be a directory inside `base`.
Result<std::string> DirInside(const std::string& base, const std::string& sub, const std::string& what) {
  std::string joined = sub.empty() ? base : base + "/" + sub;
  char real_base[PATH_MAX], real[PATH_MAX];
  if (!::realpath(base.c_str(), real_base)) return ErrnoStatus("resolving " + base, errno);
  struct stat st;
  if (!::realpath(joined.c_str(), real) || ::stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFound(what + " " + sub + " is not a directory of the context");
  }
  std::string r = real, b = real_base;
  if (r != b && !r.starts_with(b + "/")) return InvalidArgument(what + " " + sub + " leads out of the context");
  return r;
}

}  // namespace

bool IsGitContext(const std::string& spec) { return spec.starts_with("git://") || IsGitUrl(spec); }

Result<std::string> FetchGitContext(const BuildOptions& options, const GitRunnerFactory& git,
                                    const std::string& dest_dir, BuildLog* log) {
  auto pull = options.environ.find("GIT_PULL_METHOD");
  KILN_ASSIGN_OR_RETURN(GitUrl url, ParseGitContext(options.context, pull == options.environ.end() ? "" : pull->second));
  if (url.ref.empty()) url.ref = options.git.branch;
  GitCheckoutOptions co;
  co.submodules = url.submodules.value_or(options.git.recurse_submodules);
  co.keep_git_dir = url.keep_git_dir.value_or(false);
  co.commit_mtime = options.source_date_epoch.has_value();
  std::unique_ptr<GitRunner> runner = git(url.remote);
  KILN_ASSIGN_OR_RETURN(GitCheckout checkout, CheckoutGit(*runner, url, dest_dir, co));
  if (!url.checksum.empty()) KILN_RETURN_IF_ERROR(VerifyGitChecksum(url.checksum, checkout).WithContext("--context"));
  log->Info("build context: " + RedactGitUrl(url.remote) + " at commit " + checkout.commit +
            (url.ref.empty() ? std::string() : " (" + url.ref + ")") +
            (url.subdir.empty() ? std::string() : ", directory " + url.subdir));
  std::string sub = options.context_sub_path;
  while (!sub.empty() && sub.front() == '/') sub.erase(0, 1);
  return DirInside(checkout.root, sub, "--context-sub-path");
}

NamedContextSource ClassifyNamedContext(const std::string& value) {
  if (value.starts_with("docker-image://")) return {"image", value.substr(15)};
  if (IsOciLayoutRef(value)) return {"oci-layout", value};
  if (IsGitUrl(value)) return {"git", RedactGitUrl(value)};
  if (value.find("://") != std::string::npos || value.starts_with("target:")) {
    return {"", value.substr(0, value.find(':'))};
  }
  return {"directory", value};
}

Result<std::map<std::string, std::string>> PlanNamedContexts(
    const std::vector<std::pair<std::string, std::string>>& build_contexts) {
  std::map<std::string, std::string> out;
  for (const auto& [raw_name, value] : build_contexts) {
    std::string name = Lower(raw_name);
    std::string flag = "--build-context " + raw_name + "=" + RedactGitUrl(value);
    if (name.empty() || value.empty()) return InvalidArgument("--build-context must be NAME=VALUE");
    if (out.count(name)) return InvalidArgument(flag + ": " + name + " is named twice");
    NamedContextSource src = ClassifyNamedContext(value);
    if (src.kind.empty()) {
      return Unsupported(flag + ": kiln takes a directory, docker-image://REF, oci-layout://DIR or a git URL here (not " + src.source + ")");
    }
    if (src.kind == "image" && src.source.empty()) {
      return InvalidArgument(flag + ": no image reference after docker-image://");
    }
    if (src.kind == "oci-layout") KILN_RETURN_IF_ERROR(ParseOciLayoutRef(value).status().WithContext(flag));
    out[name] = src.kind == "image" || src.kind == "oci-layout" ? src.source : "";
  }
  return out;
}

Result<NamedContexts> ResolveNamedContexts(const BuildOptions& options, const GitRunnerFactory& git,
                                           const std::string& work_dir, BuildLog* log) {
  NamedContexts out;
  int fetched = 0;
  for (const auto& [raw_name, value] : options.build_contexts) {
    std::string name = Lower(raw_name);
    std::string flag = "--build-context " + raw_name + "=" + RedactGitUrl(value);
    if (name.empty() || value.empty()) return InvalidArgument("--build-context must be NAME=VALUE");
    if (out.dirs.count(name) || out.images.count(name)) return InvalidArgument(flag + ": " + name + " is named twice");
    if (value.starts_with("docker-image://")) {
      std::string ref = value.substr(15);
      if (ref.empty()) return InvalidArgument(flag + ": no image reference after docker-image://");
      out.images[name] = ref;
    } else if (IsOciLayoutRef(value)) {
      // Read by the image fetcher like a registry image; the directory made absolute here.
      Result<OciLayoutRef> layout = ParseOciLayoutRef(value);
      if (!layout.ok()) return layout.status().WithContext(flag);
      char real[PATH_MAX];
      if (!::realpath(layout->dir.c_str(), real)) return NotFound(flag + ": " + layout->dir + " is not an OCI layout directory");
      out.images[name] = "oci-layout://" + std::string(real) + (layout->tag.empty() ? "" : ":" + layout->tag) +
                         (layout->digest ? "@" + layout->digest->ToString() : "");
    } else if (IsGitUrl(value)) {
      KILN_ASSIGN_OR_RETURN(GitUrl url, ParseGitUrl(value));
      std::string dir = work_dir + "/named-context-" + std::to_string(fetched++);
      std::unique_ptr<GitRunner> runner = git(url.remote);
      GitCheckoutOptions co;
      co.submodules = url.submodules.value_or(true);
      co.keep_git_dir = url.keep_git_dir.value_or(false);
      Result<GitCheckout> checkout = CheckoutGit(*runner, url, dir, co);
      if (!checkout.ok()) return checkout.status().WithContext(flag);
      if (!url.checksum.empty()) KILN_RETURN_IF_ERROR(VerifyGitChecksum(url.checksum, *checkout).WithContext(flag));
      log->Info("build context " + name + ": " + RedactGitUrl(url.remote) + " at commit " + checkout->commit);
      out.dirs[name] = checkout->root;
    } else if (value.find("://") != std::string::npos || value.starts_with("target:")) {
      return Unsupported(flag + ": kiln takes a directory, docker-image://REF, oci-layout://DIR or a git URL here (not " +
                         value.substr(0, value.find(':')) + ")");
    } else {
      char real[PATH_MAX];
      struct stat st;
      if (!::realpath(value.c_str(), real) || ::stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NotFound(flag + ": " + value + " is not a directory");
      }
      out.dirs[name] = real;
    }
  }
  return out;
}

}  // namespace kiln::executor
