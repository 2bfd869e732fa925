// Parent side of a sandboxed run: start the supervising child for a ChildPlan, install the id
// mapping (tier 1), stream the step's output and collect the child's reports. Internal.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <vector>

#include "core/io.h"
#include "core/status.h"
#include "executor/sandbox/child.h"
#include "executor/sandbox/id_mapping.h"

namespace kiln::sandbox::internal {

struct LaunchResult {
  std::vector<Report> reports;          // in arrival order
  Status mapping_error;                 // tier 1: installing the id mapping failed
  Status output_error;                  // the output Writer failed (the rest was discarded)
  std::chrono::nanoseconds duration{0};

  /// The first setup failure, if any.
  std::optional<Report> SetupFailure() const;
  /// The step's wait status, if the supervisor reported one.
  std::optional<int> ExitStatus() const;
  bool ProbeOk() const;
};

/// Runs `plan` (its fd fields are filled in here) to completion. `mapping` is required for tier 1.
/// `output` may be null. When `cancel` becomes true the child is stopped as on a stop of kiln
/// (core/stop_signals.h) and awaited. Fails only when the child could not be created at all.
Result<LaunchResult> Launch(ChildPlan plan, const IdMapPlan* mapping, Writer* output,
                            const std::atomic<bool>* cancel = nullptr);

}  // namespace kiln::sandbox::internal
