// The rootless build's own user namespace. An unprivileged kiln runs its whole build as root inside
// one user namespace (as `buildah unshare` does): extraction, COPY, RUN, the snapshots, the layer
// writer and the clean-up then all see the same ids, so image ownership is real on disk (chown works
// for every mapped id), files of any mode stay readable (CAP_DAC_OVERRIDE over mapped ids), and
// everything the build made can be removed by it. RUN steps nest their own namespaces inside
// (identity mapping, see id_mapping.h).
//
// Ids outside the mapping (everything but 0 with a single mapping; above the subordinate range with
// one) cannot exist on disk: chown to them fails with EINVAL, and the extractor and COPY record them
// in the user.rootlesscontainers xattr instead (layers/rootless.h).
#pragma once

#include <functional>

#include "core/status.h"
#include "executor/sandbox/id_mapping.h"

namespace kiln::sandbox {

/// Runs `body` in a forked child that is uid 0 and gid 0 in a new user namespace mapped as `mapping`
/// (kSubordinate or kSingle; installed by the parent through ApplyIdMapping), with every capability
/// there. The child keeps the parent's memory, descriptors, environment and supplementary groups,
/// and dies with the parent (PR_SET_PDEATHSIG). The parent forwards SIGINT, SIGTERM and SIGHUP to
/// the child, waits, and returns the child's exit code (128 + signal when it was killed).
/// REQUIRES: the caller is single-threaded (the kernel refuses a user namespace to a threaded
/// process, and fork copies only the calling thread).
/// Fails, with the child gone and `body` not run, when the namespace could not be set up.
Result<int> RunInUserNamespace(const IdMapPlan& mapping, const std::function<int()>& body);

}  // namespace kiln::sandbox
