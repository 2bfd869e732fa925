#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/unique_fd.h"

extern char** environ;

namespace kiln {
namespace {

struct PipePair {
  UniqueFd read;
  UniqueFd write;
};

Result<PipePair> MakePipe(const std::string& program) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("running " + program + ": pipe", errno);
  return PipePair{UniqueFd(p[0]), UniqueFd(p[1])};
}

// Writes `input` without blocking and without dying of SIGPIPE: a child that exits or closes its
// standard input early just gets less of it.
void WriteInput(int fd, const std::string& input) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  while (written < input.size()) {
    ssize_t n = ::write(fd, input.data() + written, input.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EPIPE (the child is gone) or EAGAIN (it does not read): give up on the rest
    written += static_cast<size_t>(n);
  }
  // A SIGPIPE raised by this thread's write is pending now: take it, so unblocking does not deliver it.
  if (!sigismember(&old, SIGPIPE)) {
    timespec zero{0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

bool SubprocessResult::Succeeded() const { return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0; }

std::string SubprocessResult::Why() const {
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

Result<SubprocessResult> RunSubprocess(const SubprocessSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("RunSubprocess: no program");
  const std::string& program = spec.argv[0];
  std::optional<PipePair> in;
  if (!spec.input.empty()) {
    KILN_ASSIGN_OR_RETURN(in, MakePipe(program));
  }
  KILN_ASSIGN_OR_RETURN(PipePair out, MakePipe(program));
  std::optional<PipePair> err;
  if (!spec.merge_stderr) {
    KILN_ASSIGN_OR_RETURN(err, MakePipe(program));
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in) {
    posix_spawn_file_actions_adddup2(&fa, in->read.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&fa, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err ? err->write.get() : out.write.get(), 2);
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (spec.env) {
    for (const std::string& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, program.c_str(), &fa, nullptr, argv.data(), spec.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == ENOENT) return NotFound(program + " is not installed (not found" + (program.find('/') == std::string::npos ? " on PATH)" : ")"));
  if (rc != 0) return ErrnoStatus("running " + program, rc);
  out.write.Reset();
  if (err) err->write.Reset();
  if (in) {
    in->read.Reset();
    WriteInput(in->write.get(), spec.input);
    in->write.Reset();
  }

  SubprocessResult result;
  pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {err ? err->read.get() : -1, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = err ? 2 : 1;
  const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  while (open_fds > 0) {
    int wait_ms = -1;
    if (spec.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      int64_t ms = spec.timeout.count();
      return Unavailable(program + " did not finish within " +
                         (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms"));
    }
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[8192];
      ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::string& dst = *sinks[i];
      if (dst.size() < spec.max_output) dst.append(buf, std::min(static_cast<size_t>(k), spec.max_output - dst.size()));
    }
  }
  while (::waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

}  // namespace kiln
