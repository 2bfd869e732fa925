// RunJobGraph: runs jobs that depend on each other, independent ones at the same time (kiln build
// --jobs: the stages of a Dockerfile with no COPY --from / FROM / RUN --mount from= edge between them).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <vector>

#include "core/status.h"

namespace kiln::executor {

/// `after[i]`: the jobs job i needs (indexes below i, so the list order is a valid serial order).
using JobDeps = std::vector<std::vector<size_t>>;

/// Runs `run(i)` once for every job, each after all of `after[i]` succeeded, at most `jobs` at once
/// (the ready job with the lowest index first). jobs <= 1: one after the other in index order on the
/// calling thread, no thread started. After the first failure no job starts, `*cancel` (when given)
/// is set for the running ones to notice, they are awaited, and that first failure is returned
/// (failures of jobs that stopped because of it are not). `run` must be safe to call from several
/// threads at once when jobs > 1.
Status RunJobGraph(const JobDeps& after, int jobs, const std::function<Status(size_t)>& run,
                   std::atomic<bool>* cancel = nullptr);

/// True when some two jobs may run at the same time: neither needs the other, even through others.
bool HasIndependentJobs(const JobDeps& after);

}  // namespace kiln::executor
