// Snapshotter: the executor's handle on a rootfs between steps. It keeps the latest baseline, so
// each step costs one walk: the walk that finds a step's changes is the baseline of the next step.
//
//   KILN_ASSIGN_OR_RETURN(auto snap, Snapshotter::Create(rootfs, options));  // after extraction
//   ... RUN ...
//   KILN_ASSIGN_OR_RETURN(ChangeSet changes, snap.Changes());               // -> layers/
//   ... COPY (its layer comes from what it copied) ...
//   KILN_RETURN_IF_ERROR(snap.Rebaseline());
#pragma once

#include <string>

#include "core/status.h"
#include "snapshot/baseline.h"
#include "snapshot/diff.h"

namespace kiln::snapshot {

/// Not thread-safe; one per rootfs. Nothing may write to the rootfs while a method runs.
class Snapshotter {
 public:
  /// Takes the first baseline of `rootfs`.
  static Result<Snapshotter> Create(std::string rootfs, WalkOptions options);

  /// Walks once and returns what changed since Create, the last Changes or the last Rebaseline; the
  /// walk becomes the new baseline. On failure the old baseline is kept.
  Result<ChangeSet> Changes();
  /// Walks and makes that the baseline without diffing (after a step whose layer is known).
  Status Rebaseline();

  const Baseline& baseline() const { return baseline_; }
  const std::string& rootfs() const { return rootfs_; }

 private:
  Snapshotter(std::string rootfs, WalkOptions options, Baseline baseline)
      : rootfs_(std::move(rootfs)), options_(std::move(options)), baseline_(std::move(baseline)) {}

  std::string rootfs_;
  WalkOptions options_;
  Baseline baseline_;
};

}  // namespace kiln::snapshot
