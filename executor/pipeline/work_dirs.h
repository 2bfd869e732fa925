// The per-build work directories under STATE/work, and the housekeeping that removes the ones a
// killed build left behind.
//
// A build holds an exclusive flock(2) on its own work directory for its whole life; the kernel drops
// it when the process dies, however it dies (SIGKILL included). A work directory nobody holds a lock
// on is stale. STATE/work/.lock closes the gap between mkdtemp and flock: builds create their
// directory under a shared lock on it, the clean-up scans under an exclusive one.
//
// Work directories of a rootless build are removable by the user that ran it only from inside the
// build's user namespace (RUN steps made files owned by subordinate ids there); `kiln clean` runs
// RemoveStaleWorkDirs inside one (sandbox/build_namespace.h).
#pragma once

#include <string>

#include "core/status.h"
#include "core/unique_fd.h"

namespace kiln::executor {

/// A build's work directory, locked while this object lives. Movable, not copyable.
struct WorkDirLease {
  std::string path;  ///< absolute: STATE/work/build-XXXXXX
  UniqueFd lock;     ///< the directory, open and flock'ed
};

/// Creates and locks a fresh STATE/work/build-XXXXXX (STATE/work is created 0700 if missing).
/// `keep` (--keep-work): the directory is marked to outlive the build; only `kiln clean` removes it.
Result<WorkDirLease> CreateWorkDir(const std::string& state_dir, bool keep = false);

struct CleanReport {
  int removed = 0;  ///< stale work directories removed
  int in_use = 0;   ///< work directories of running builds, left alone
  int kept = 0;     ///< directories of finished --keep-work builds, left alone (when not included)
};

/// Removes every work directory under STATE/work that no running build holds, and those that builds
/// kept with --keep-work when `include_kept`. A missing STATE/work is not an error. Fails on the first directory it cannot remove (the message names it and, for
/// EACCES/EPERM, says it may belong to ids of a user namespace).
Result<CleanReport> RemoveStaleWorkDirs(const std::string& state_dir, bool include_kept);

}  // namespace kiln::executor
