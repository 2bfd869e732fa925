#include "executor/sandbox/launch.h"

#include "core/stop_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kiln::sandbox::internal {
namespace {

struct Pipe {
  int r = -1, w = -1;
  ~Pipe() { CloseBoth(); }
  Status Make() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("creating a pipe", errno);
    r = p[0];
    w = p[1];
    return OkStatus();
  }
  static void Close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void CloseBoth() {
    Close(r);
    Close(w);
  }
};

using Clock = std::chrono::steady_clock;

}  // namespace

std::optional<Report> LaunchResult::SetupFailure() const {
  for (const Report& r : reports) {
    if (r.kind == ReportKind::kSetupFailed) return r;
  }
  return std::nullopt;
}

std::optional<int> LaunchResult::ExitStatus() const {
  for (const Report& r : reports) {
    if (r.kind == ReportKind::kExited) return r.detail;
  }
  return std::nullopt;
}

bool LaunchResult::ProbeOk() const {
  for (const Report& r : reports) {
    if (r.kind == ReportKind::kProbeOk) return true;
  }
  return false;
}

Result<LaunchResult> Launch(ChildPlan plan, const IdMapPlan* mapping, Writer* output,
                            const std::atomic<bool>* cancel) {
  if (plan.tier == 1 && mapping == nullptr) return InternalError("tier 1 launch without an id mapping");
  Pipe report, sync, out;
  KILN_RETURN_IF_ERROR(report.Make());
  if (plan.tier == 1) KILN_RETURN_IF_ERROR(sync.Make());
  if (!plan.probe) KILN_RETURN_IF_ERROR(out.Make());
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return ErrnoStatus("opening /dev/null", errno);
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    plan.max_fd = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ? (1 << 20) : static_cast<int>(rl.rlim_cur);
  }
  plan.report_fd = report.w;
  plan.sync_fd = sync.r;
  plan.out_fd = out.w;
  plan.stdin_fd = devnull;

  LaunchResult result;
  Clock::time_point start = Clock::now();
  pid_t pid = plan.tier == 1 ? CloneWithFlags(Tier1CloneFlags(plan)) : ::fork();
  if (pid == 0) {
    // Our copies of the parent's ends must go, or the supervisor would never see EOF on `sync`.
    if (report.r >= 0) ::close(report.r);
    if (sync.w >= 0) ::close(sync.w);
    if (out.r >= 0) ::close(out.r);
    SupervisorMain(plan);
  }
  int clone_err = errno;
  // A stop of kiln (SIGTERM from a cancelled job) ends the step: tier 1's supervisor is the pid
  // namespace's init (SIGKILL ends everything in it); the others end the step's group themselves.
  const int stop_signal = plan.tier == 1 ? SIGKILL : SIGTERM;
  std::optional<StopChild> stop;
  if (pid > 0) stop.emplace(pid, stop_signal);
  bool cancelled = false;
  ::close(devnull);
  Pipe::Close(report.w);
  Pipe::Close(sync.r);
  Pipe::Close(out.w);
  if (pid < 0) {
    return ErrnoStatus(plan.tier == 1 ? "creating user, mount and pid namespaces (clone)" : "fork", clone_err);
  }

  if (plan.tier == 1) {
    result.mapping_error = ApplyIdMapping(pid, *mapping);
    if (result.mapping_error.ok()) {
      char go = 1;
      if (::write(sync.w, &go, 1) != 1) result.mapping_error = ErrnoStatus("releasing the sandbox child", errno);
    }
    Pipe::Close(sync.w);  // on failure the child reads EOF and gives up
  }

  // Stream output until the supervisor is gone (EOF on the report pipe), then drain what is left.
  // Once the supervisor has exited, tier 1's processes are dead; in tiers 2 and 3 a daemon that left
  // the step's process group may still hold the pipe, so stop waiting for it after a grace period.
  char buf[65536];
  std::string pending;  // partial report records
  Clock::time_point drain_deadline{};
  while (report.r >= 0 || out.r >= 0) {
    struct pollfd fds[2];
    int n = 0;
    if (out.r >= 0) fds[n++] = {out.r, POLLIN, 0};
    if (report.r >= 0) fds[n++] = {report.r, POLLIN, 0};
    int timeout = cancel != nullptr && !cancelled ? 100 : -1;
    if (cancel != nullptr && !cancelled && cancel->load()) {
      cancelled = true;
      ::kill(pid, stop_signal);
      timeout = -1;
    }
    if (report.r < 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - Clock::now()).count();
      if (left <= 0) break;
      timeout = static_cast<int>(left);
    }
    int rc = ::poll(fds, n, timeout);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (fds[i].fd == out.r) {
        if (got <= 0) {
          Pipe::Close(out.r);
        } else if (output != nullptr && result.output_error.ok()) {
          result.output_error = output->Write(buf, static_cast<size_t>(got));
        }
      } else {
        if (got <= 0) {
          Pipe::Close(report.r);
          drain_deadline = Clock::now() + std::chrono::milliseconds(plan.tier == 1 ? 2000 : 300);
        } else {
          pending.append(buf, static_cast<size_t>(got));
          while (pending.size() >= sizeof(Report)) {
            Report r;
            std::memcpy(&r, pending.data(), sizeof r);
            result.reports.push_back(r);
            pending.erase(0, sizeof r);
          }
        }
      }
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  result.duration = Clock::now() - start;
  return result;
}

}  // namespace kiln::sandbox::internal
