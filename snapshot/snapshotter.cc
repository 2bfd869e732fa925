#include "snapshot/snapshotter.h"

namespace kiln::snapshot {

Result<Snapshotter> Snapshotter::Create(std::string rootfs, WalkOptions options) {
  KILN_ASSIGN_OR_RETURN(Baseline first, Baseline::Take(rootfs, options));
  return Snapshotter(std::move(rootfs), std::move(options), std::move(first));
}

Result<ChangeSet> Snapshotter::Changes() {
  KILN_ASSIGN_OR_RETURN(Baseline now, Baseline::Take(rootfs_, options_));
  KILN_ASSIGN_OR_RETURN(ChangeSet changes, Diff(baseline_, now));
  baseline_ = std::move(now);
  return changes;
}

Status Snapshotter::Rebaseline() {
  KILN_ASSIGN_OR_RETURN(Baseline now, Baseline::Take(rootfs_, options_));
  baseline_ = std::move(now);
  return OkStatus();
}

}  // namespace kiln::snapshot
