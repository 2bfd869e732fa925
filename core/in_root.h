// ResolveInRoot: the one algorithm kiln uses to resolve a path inside a root directory with chroot
// semantics — `..` of the root is the root, a symlink met on the way is replaced by its target (an
// absolute target starts again at the root, a relative one at the link's directory), at most 40
// links per path (ELOOP beyond). Three callers walk three kinds of root with it:
//   layers/safe_path.h     RootDir: an fd walk (openat O_PATH|O_NOFOLLOW), creating directories
//                          while extracting hostile layers;
//   executor/steps         COPY/ADD destinations and sources, by relative path under a root fd;
//   executor/sandbox       the ptrace tier's PathTranslator, by host path, with /proc rules.
// The filesystem is reached only through an InRootWalker, so the algorithm is tested on its own and
// each caller supplies only how it looks at one name.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln {

/// How the resolver looks at the filesystem: a cursor on a directory below the root.
class InRootWalker {
 public:
  enum class Kind { kDirectory, kSymlink, kOther, kMissing };
  struct Entry {
    Kind kind = Kind::kMissing;
    std::string link_target;  ///< kSymlink: the link's content
  };
  virtual ~InRootWalker() = default;
  /// What `name` is in the current directory, never following it. A walker may create a missing
  /// directory here and report kDirectory. An error fails the resolution.
  virtual Result<Entry> Look(const std::string& name) = 0;
  /// Moves into `name`, which Look just reported as a directory.
  virtual Status Enter(const std::string& name) = 0;
  /// Moves to the parent directory (never called at the root).
  virtual Status Leave() = 0;
  /// Moves back to the root.
  virtual Status Restart() = 0;
};

/// What to do with the next name (asked before looking at it, with the name already appended to
/// `done`): look at it, take it without looking (the rest of the path is someone else's to
/// resolve, e.g. a passthrough /proc), or start again at the root (e.g. /proc/self/root).
enum class InRootStep { kLook, kTakeAsWritten, kRestartAtRoot };

struct InRootOptions {
  /// Whether a symlink in the last component is followed (open follows, lstat does not).
  bool follow_last = true;
  /// Once a component is missing: stop and leave the rest unresolved (a kernel will answer ENOENT),
  /// or keep going lexically (names appended, `..` applied) as a destination to be created.
  enum class AfterMissing { kStop, kLexical };
  AfterMissing after_missing = AfterMissing::kStop;
  int max_links = 40;
  /// Optional: decides each step (default kLook). May fail the resolution with a status.
  std::function<Result<InRootStep>(const std::vector<std::string>& done, const std::deque<std::string>& todo)> step;
};

struct InRootPath {
  enum class Stop {
    kResolved,      ///< every component was resolved (or taken lexically as asked)
    kMissing,       ///< a component does not exist (after_missing = kStop)
    kNotDirectory,  ///< a component in the middle is not a directory
    kLoop,          ///< more than max_links symlinks
  };
  Stop stop = Stop::kResolved;
  /// Resolved components below the root; no symlink among them except possibly the last one when it
  /// was not followed. With kMissing/kNotDirectory the offending name is the last one.
  std::vector<std::string> components;
  /// Components left as written after the walk stopped (kMissing, kNotDirectory).
  std::vector<std::string> unresolved;
  /// What the last component is (kMissing when it was taken without looking).
  InRootWalker::Kind last_kind = InRootWalker::Kind::kDirectory;

  /// "a/b/c" (components only), "" for the root.
  std::string Joined() const;
};

/// Resolves `path` (relative to `start`, the components of a directory below the root; an absolute
/// path starts at the root). The walker starts at the root and is left at the last directory
/// entered.
Result<InRootPath> ResolveInRoot(std::string_view path, const std::vector<std::string>& start, InRootWalker& walker,
                                 const InRootOptions& options = {});

}  // namespace kiln
