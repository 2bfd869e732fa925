// Fetching a git repository at one ref into a directory, for ADD of a git URL, git build contexts and
// git named contexts. git itself is Debian's CLI, run as a subprocess behind GitRunner so unit tests
// can replace it.
//
// What a checkout does (BuildKit's source/git, simplified to one fetch per use):
//   git init; git fetch --depth=1 --no-tags origin REF (a commit sha that the server will not serve
//   shallowly is fetched with the whole history instead); git checkout FETCH_HEAD; submodules
//   (--depth=1, recursive) when asked; the .git directory removed unless keep_git_dir, and when
//   kept its origin URL has no credentials.
// Credentials never reach the image or the command line: for http(s) remotes GIT_AUTH_TOKEN (sent as
// BuildKit does, basic x-access-token:TOKEN) or GIT_AUTH_HEADER (a whole Authorization value) from
// kiln's environment, or Kaniko's GIT_USERNAME/GIT_PASSWORD and GIT_TOKEN, become an extra HTTP
// header handed to git through GIT_CONFIG_* variables; ssh uses the machine's ssh setup
// (BatchMode: never a prompt). git never prompts (GIT_TERMINAL_PROMPT=0).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/steps/git_url.h"

namespace kiln::executor {

/// Runs git. Implementations need not be thread-safe.
class GitRunner {
 public:
  virtual ~GitRunner() = default;
  /// Runs `git ARGS...` and returns its standard output. A non-zero exit fails with
  /// kFailedPrecondition carrying git's standard error (credentials redacted); kNotFound when git is
  /// not installed.
  virtual Result<std::string> Run(const std::vector<std::string>& args) = 0;
};

struct GitRunnerOptions {
  /// kiln's environment: PATH, HOME, proxies and ssh settings pass through; the credential variables
  /// above are read from it.
  std::map<std::string, std::string> environ;
  /// The remote the credentials are for (they are scoped to its scheme and host).
  std::string remote;
  bool insecure_skip_tls = false;  ///< Kaniko's --git insecure-skip-tls=true: GIT_SSL_NO_VERIFY
};

/// Debian's git CLI (`git` on PATH).
std::unique_ptr<GitRunner> NewCliGitRunner(const GitRunnerOptions& options);

/// Makes a GitRunner for a remote (tests hand in fakes).
using GitRunnerFactory = std::function<std::unique_ptr<GitRunner>(const std::string& remote)>;
/// NewCliGitRunner for each remote, with `environ` (see GitRunnerOptions).
GitRunnerFactory CliGitRunnerFactory(std::map<std::string, std::string> environ, bool insecure_skip_tls = false);

struct GitCheckoutOptions {
  bool keep_git_dir = false;
  bool submodules = true;  ///< BuildKit always updates submodules; Kaniko only with recurse-submodules
  /// Set every file's mtime to the commit's time (BuildKit does when SOURCE_DATE_EPOCH is set); else
  /// files keep the time of the checkout, as BuildKit's default.
  bool commit_mtime = false;
};

struct GitCheckout {
  std::string dir;   ///< the work tree (dest_dir)
  std::string root;  ///< dir + "/" + subdir, symlinks resolved, inside dir
  std::string commit;      ///< the commit checked out (40 hex)
  std::string tag_object;  ///< the annotated tag's own object name when REF was one, else ""
  int64_t commit_time = 0;  ///< committer time, seconds since the epoch
};

/// Fetches `url` at its ref into `dest_dir` (created; must not exist yet). Errors name the remote
/// (redacted) and carry git's message: an unreachable remote, an unknown ref, a subdir that is not a
/// directory, a commit that does not match url.commit.
Result<GitCheckout> CheckoutGit(GitRunner& git, const GitUrl& url, const std::string& dest_dir,
                                const GitCheckoutOptions& options);

/// ADD --checksum for a git source, BuildKit's rule: a hex prefix of the commit's name or of the
/// annotated tag's. kDigestMismatch naming both when it is neither.
Status VerifyGitChecksum(const std::string& checksum, const GitCheckout& checkout);

}  // namespace kiln::executor
