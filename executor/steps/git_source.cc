#include "executor/steps/git_source.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <mutex>

#include "core/io.h"
#include "core/subprocess.h"
#include "core/unique_fd.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxGitOutput = 1 << 20;

std::string Base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// "scheme://host/" of an http(s) remote: what git's http.<url>.extraHeader is scoped to.
std::string HttpScope(const std::string& remote) {
  if (!remote.starts_with("http://") && !remote.starts_with("https://")) return "";
  size_t start = remote.find("://") + 3;
  size_t end = remote.find('/', start);
  std::string authority = remote.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  return remote.substr(0, start) + authority + "/";
}

class CliGitRunner : public GitRunner {
 public:
  explicit CliGitRunner(const GitRunnerOptions& o) : remote_(o.remote) {
    std::map<std::string, std::string> env;
    for (const auto& [k, v] : o.environ) {
      // Variables that would point git at another repository or config are not inherited.
      if (k.starts_with("GIT_CONFIG") || k == "GIT_DIR" || k == "GIT_WORK_TREE" || k == "GIT_INDEX_FILE" ||
          k == "GIT_OBJECT_DIRECTORY" || k == "GIT_NAMESPACE" || k == "GIT_AUTH_TOKEN" || k == "GIT_AUTH_HEADER" ||
          k == "GIT_PASSWORD" || k == "GIT_TOKEN") {
        continue;
      }
      env[k] = v;
    }
    env["GIT_TERMINAL_PROMPT"] = "0";
    env["LC_ALL"] = "C";
    if (!env.count("GIT_SSH_COMMAND") && !env.count("GIT_SSH")) env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes";
    if (o.insecure_skip_tls) env["GIT_SSL_NO_VERIFY"] = "true";
    std::string header = AuthHeader(o.environ);
    std::string scope = HttpScope(o.remote);
    if (!header.empty() && !scope.empty()) {
      env["GIT_CONFIG_COUNT"] = "1";
      env["GIT_CONFIG_KEY_0"] = "http." + scope + ".extraheader";
      env["GIT_CONFIG_VALUE_0"] = "Authorization: " + header;
      secret_ = header;
    }
    for (const auto& [k, v] : env) env_.push_back(k + "=" + v);
  }

  Result<std::string> Run(const std::vector<std::string>& args) override {
    SubprocessSpec spec;
    spec.argv = {"git"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = env_;
    spec.max_output = kMaxGitOutput;
    Result<SubprocessResult> ran = RunSubprocess(spec);
    if (!ran.ok() && ran.status().code() == ErrorCode::kNotFound) {
      return NotFound("git is not installed (kiln runs Debian's git for git sources: apt-get install git)");
    }
    if (!ran.ok()) return ran.status();
    if (ran->Succeeded()) return std::move(ran->out);
    std::string detail = Redact(Trim(ran->err));
    if (detail.size() > 800) detail = detail.substr(0, 800) + "...";
    std::string why = ran->Why();
    return FailedPrecondition("git " + (args.empty() ? std::string() : args.front() == "-C" && args.size() > 2 ? args[2] : args.front()) +
                              " failed (" + why + ")" + (detail.empty() ? "" : ": " + detail));
  }

 private:
  static std::string AuthHeader(const std::map<std::string, std::string>& env) {
    auto get = [&](const char* k) {
      auto it = env.find(k);
      return it == env.end() ? std::string() : it->second;
    };
    if (std::string h = get("GIT_AUTH_HEADER"); !h.empty()) return h;
    if (std::string t = get("GIT_AUTH_TOKEN"); !t.empty()) return "basic " + Base64("x-access-token:" + t);
    // Kaniko's variables for git contexts.
    std::string user = get("GIT_USERNAME"), password = get("GIT_PASSWORD"), token = get("GIT_TOKEN");
    if (!token.empty()) return "basic " + Base64((user.empty() ? std::string("x-access-token") : user) + ":" + token);
    if (!user.empty() && !password.empty()) return "basic " + Base64(user + ":" + password);
    return "";
  }

  std::string Redact(std::string s) const {
    if (!secret_.empty()) {
      for (size_t at; (at = s.find(secret_)) != std::string::npos;) s.replace(at, secret_.size(), "xxxxx");
    }
    if (!remote_.empty()) {
      std::string shown = RedactGitUrl(remote_);
      for (size_t at = 0; (at = s.find(remote_, at)) != std::string::npos; at += shown.size()) {
        s.replace(at, remote_.size(), shown);
      }
    }
    return s;
  }

  std::string remote_;
  std::string secret_;
  std::vector<std::string> env_;
};

int64_t g_commit_time = 0;  // nftw has no user pointer; guarded by g_mtime_mu
std::mutex g_mtime_mu;

int SetMtime(const char* path, const struct stat*, int, struct FTW*) {
  struct timespec ts[2] = {{g_commit_time, 0}, {g_commit_time, 0}};
  return ::utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -1;
}

Status SetTreeMtime(const std::string& dir, int64_t t) {
  std::lock_guard<std::mutex> lock(g_mtime_mu);
  g_commit_time = t;
  if (::nftw(dir.c_str(), SetMtime, 32, FTW_PHYS | FTW_DEPTH) != 0) {
    return ErrnoStatus("setting file times in " + dir, errno);
  }
  return OkStatus();
}

Status RemoveDir(const std::string& parent, const std::string& name) {
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + parent, errno);
  UniqueFd owned(fd);
  return layers::RemoveAllAt(fd, name);
}

}  // namespace

std::unique_ptr<GitRunner> NewCliGitRunner(const GitRunnerOptions& options) {
  return std::make_unique<CliGitRunner>(options);
}

GitRunnerFactory CliGitRunnerFactory(std::map<std::string, std::string> environ, bool insecure_skip_tls) {
  return [environ = std::move(environ), insecure_skip_tls](const std::string& remote) {
    GitRunnerOptions o;
    o.environ = environ;
    o.remote = remote;
    o.insecure_skip_tls = insecure_skip_tls;
    return NewCliGitRunner(o);
  };
}

Result<GitCheckout> CheckoutGit(GitRunner& git, const GitUrl& url, const std::string& dest_dir,
                                const GitCheckoutOptions& options) {
  const std::string shown = RedactGitUrl(url.remote);
  const std::string what = url.ref.empty() ? "the default branch" : "\"" + url.ref + "\"";
  auto in = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-C", dest_dir});
    return git.Run(args);
  };
  KILN_RETURN_IF_ERROR(MakeDirs(dest_dir, 0700));
  KILN_RETURN_IF_ERROR(git.Run({"-c", "init.defaultBranch=main", "init", "-q", dest_dir}).status());
  KILN_RETURN_IF_ERROR(in({"remote", "add", "origin", url.remote}).status());

  std::string target = "FETCH_HEAD";
  if (IsCommitSha(url.ref)) {
    // Servers often refuse a shallow fetch of an unadvertised commit: then fetch every branch and tag
    // (as BuildKit does for commits) and look for it there.
    Result<std::string> shallow = in({"fetch", "-q", "--depth=1", "--no-tags", "origin", url.ref});
    if (!shallow.ok()) {
      Result<std::string> full = in({"fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"});
      if (!full.ok()) return full.status().WithContext("fetching " + shown);
      if (!in({"cat-file", "-e", url.ref + "^{commit}"}).ok()) {
        return NotFound("git repository " + shown + " has no commit " + url.ref);
      }
    }
    target = url.ref;
  } else {
    Result<std::string> fetched =
        in({"fetch", "-q", "--depth=1", "--no-tags", "origin", url.ref.empty() ? std::string("HEAD") : url.ref});
    if (!fetched.ok()) return fetched.status().WithContext("fetching " + what + " from " + shown);
  }

  GitCheckout c;
  c.dir = dest_dir;
  KILN_ASSIGN_OR_RETURN(std::string type, in({"cat-file", "-t", target}));
  if (Trim(type) == "tag") {
    KILN_ASSIGN_OR_RETURN(std::string tag, in({"rev-parse", target}));
    c.tag_object = Trim(tag);
  }
  KILN_ASSIGN_OR_RETURN(std::string commit, in({"rev-parse", target + "^{commit}"}));
  c.commit = Trim(commit);
  if (!url.commit.empty() && c.commit != url.commit) {
    return DigestMismatch("git repository " + shown + ": " + what + " is commit " + c.commit + ", not the expected " +
                          url.commit);
  }
  KILN_RETURN_IF_ERROR(in({"-c", "advice.detachedHead=false", "checkout", "-q", c.commit}).status());
  struct stat st;
  if (options.submodules && ::stat((dest_dir + "/.gitmodules").c_str(), &st) == 0) {
    Status s = in({"submodule", "update", "--init", "--recursive", "--depth=1"}).status();
    if (!s.ok()) return s.WithContext("updating the submodules of " + shown);
  }
  KILN_ASSIGN_OR_RETURN(std::string time, in({"show", "-s", "--format=%ct", c.commit}));
  c.commit_time = std::strtoll(Trim(time).c_str(), nullptr, 10);
  if (options.keep_git_dir) {
    // The kept .git/config must not carry credentials that were part of the URL.
    KILN_RETURN_IF_ERROR(in({"remote", "set-url", "origin", shown}).status());
  } else {
    KILN_RETURN_IF_ERROR(RemoveDir(dest_dir, ".git"));
  }

  std::string wanted = url.subdir.empty() ? dest_dir : dest_dir + "/" + url.subdir;
  char real_dir[PATH_MAX], real_root[PATH_MAX];
  if (!::realpath(dest_dir.c_str(), real_dir)) return ErrnoStatus("resolving " + dest_dir, errno);
  if (!::realpath(wanted.c_str(), real_root) || ::stat(real_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFound("git repository " + shown + " at " + c.commit.substr(0, 12) + " has no directory " + url.subdir);
  }
  std::string root = real_root, base = real_dir;
  if (root != base && !root.starts_with(base + "/")) {
    return InvalidArgument("git subdirectory " + url.subdir + " of " + shown + " leads out of the repository");
  }
  c.root = root;
  if (options.commit_mtime) KILN_RETURN_IF_ERROR(SetTreeMtime(dest_dir, c.commit_time));
  return c;
}

Status VerifyGitChecksum(const std::string& checksum, const GitCheckout& c) {
  std::string want;
  for (char ch : checksum) want += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  bool hex = !want.empty();
  for (char ch : want) hex = hex && std::isxdigit(static_cast<unsigned char>(ch));
  if (!hex) return InvalidArgument("--checksum=" + checksum + " for a git source must be a commit sha (hex)");
  if (c.commit.starts_with(want) || (!c.tag_object.empty() && c.tag_object.starts_with(want))) return OkStatus();
  return DigestMismatch("checksum mismatch: expected commit " + checksum + ", but the repository is at commit " + c.commit +
                        (c.tag_object.empty() ? "" : " (annotated tag " + c.tag_object + ")"));
}

}  // namespace kiln::executor
