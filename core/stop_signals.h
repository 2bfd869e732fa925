// Stopping a build on SIGTERM, SIGINT or SIGHUP (a CI job cancelled, Ctrl-C): what runs is ended and
// what the build wrote is removed, then kiln exits with 128 + the signal, as a shell reports it.
//
// The signal handler only records the signal and wakes a watcher thread; the watcher does the work
// outside signal context: it asks every registered child to stop (the RUN sandbox's supervisor,
// which ends the step's whole process tree), waits for them briefly, runs every registered clean-up
// (removing the build's work directory: its rootfs, staged secrets, private copies), and exits.
// Nothing unwinds on the main thread: whatever it was doing (a pull, a push) is simply abandoned,
// which the registry protocol tolerates (a manifest is pushed last, so no tag names a missing blob).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace kiln {

/// Installs the handlers (once per process; later calls only replace `announce`). `announce` is
/// called on the watcher thread first, e.g. to log "SIGTERM: stopping the build".
void InstallStopHandlers(std::function<void(int sig)> announce = nullptr);

/// The signal that started a stop, or 0.
int StopSignal();

/// When a stop is under way, never returns (the watcher thread exits the process once it has
/// cleaned up): for the main thread, whose own failure (a step killed by the stop) must not race
/// the clean-up to the exit. Returns at once otherwise.
void WaitIfStopping();

/// A child process to stop while this object lives: `signal` is sent to `pid` on a stop.
class StopChild {
 public:
  StopChild(pid_t pid, int signal);
  ~StopChild();
  StopChild(const StopChild&) = delete;
  StopChild& operator=(const StopChild&) = delete;

 private:
  int slot_ = -1;
};

/// A clean-up run on a stop while this object lives (after the children are stopped).
class StopCleanup {
 public:
  explicit StopCleanup(std::function<void()> cleanup);
  ~StopCleanup();
  StopCleanup(const StopCleanup&) = delete;
  StopCleanup& operator=(const StopCleanup&) = delete;

 private:
  long id_ = 0;
};

}  // namespace kiln
