#include "executor/sandbox/build_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace kiln::sandbox {
namespace {

std::atomic<pid_t> g_child{0};

void Forward(int sig) {
  pid_t c = g_child.load();
  if (c > 0) ::kill(c, sig);
}

bool ReadByte(int fd, char* c) {
  ssize_t n;
  while ((n = ::read(fd, c, 1)) < 0 && errno == EINTR) {
  }
  return n == 1;
}

void WriteByte(int fd, char c) {
  while (::write(fd, &c, 1) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<int> RunInUserNamespace(const IdMapPlan& mapping, const std::function<int()>& body) {
  // to_child: "the mapping is installed" (or EOF: give up); to_parent: "the namespace exists" or an
  // errno byte when unshare failed.
  int to_child[2], to_parent[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  if (::pipe2(to_parent, O_CLOEXEC) != 0) {
    ::close(to_child[0]);
    ::close(to_child[1]);
    return ErrnoStatus("pipe", errno);
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(137);  // the parent died before the line above
    if (::unshare(CLONE_NEWUSER) != 0) {
      WriteByte(to_parent[1], static_cast<char>(errno));
      ::_exit(126);
    }
    WriteByte(to_parent[1], 0);
    char go = 0;
    if (!ReadByte(to_child[0], &go) || go != 'g') ::_exit(126);
    ::close(to_child[0]);
    ::close(to_parent[1]);
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
      std::fprintf(stderr, "kiln: becoming root in the build's user namespace: %s\n", std::strerror(errno));
      ::_exit(1);
    }
    int rc = body();
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  auto reap = [pid] {  // the child's wait status
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
  };
  char unshared = 0;
  bool ok = ReadByte(to_parent[0], &unshared);
  ::close(to_parent[0]);
  if (!ok || unshared != 0) {
    ::close(to_child[1]);
    reap();
    return ErrnoStatus("creating the build's user namespace", ok ? unshared : EPIPE);
  }
  Status mapped = ApplyIdMapping(pid, mapping);
  if (!mapped.ok()) {
    ::close(to_child[1]);  // EOF: the child gives up
    reap();
    return mapped.WithContext("mapping ids into the build's user namespace");
  }
  g_child = pid;
  struct sigaction sa = {}, old_int, old_term, old_hup;
  sa.sa_handler = Forward;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  WriteByte(to_child[1], 'g');
  ::close(to_child[1]);
  int st = reap();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  g_child = 0;
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

}  // namespace kiln::sandbox
