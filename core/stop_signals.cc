#include "core/stop_signals.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace kiln {
namespace {

constexpr int kMaxChildren = 64;

std::atomic<int> g_signal{0};
int g_wake[2] = {-1, -1};
std::atomic<pid_t> g_children[kMaxChildren];
std::atomic<int> g_child_signals[kMaxChildren];

std::mutex g_mu;  // guards everything below
std::function<void(int)> g_announce;
std::map<long, std::function<void()>> g_cleanups;
long g_next_cleanup = 1;
bool g_installed = false;

void OnSignal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) return;  // a second signal: already stopping
  char b = static_cast<char>(sig);
  int saved = errno;
  (void)::write(g_wake[1], &b, 1);
  errno = saved;
}

bool AnyChildAlive() {
  for (auto& c : g_children) {
    pid_t p = c.load();
    if (p > 0 && ::kill(p, 0) == 0) return true;
  }
  return false;
}

void Watch() {
  char b;
  while (::read(g_wake[0], &b, 1) < 0 && errno == EINTR) {
  }
  int sig = g_signal.load();
  std::function<void(int)> announce;
  {
    std::lock_guard<std::mutex> l(g_mu);
    announce = g_announce;
  }
  if (announce) announce(sig);
  for (int i = 0; i < kMaxChildren; ++i) {
    pid_t p = g_children[i].load();
    int sig_for_child = g_child_signals[i].load();
    if (p > 0) ::kill(p, sig_for_child != 0 ? sig_for_child : SIGKILL);
  }
  // The children reap themselves through their parent (the main thread's waitpid); give them a
  // moment to end their process trees and release the rootfs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (AnyChildAlive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::map<long, std::function<void()>> cleanups;
  {
    std::lock_guard<std::mutex> l(g_mu);
    cleanups = g_cleanups;
  }
  for (auto it = cleanups.rbegin(); it != cleanups.rend(); ++it) it->second();
  ::_exit(128 + sig);
}

}  // namespace

void InstallStopHandlers(std::function<void(int)> announce) {
  std::lock_guard<std::mutex> l(g_mu);
  g_announce = std::move(announce);
  if (g_installed) return;
  g_installed = true;
  if (::pipe2(g_wake, O_CLOEXEC) != 0) return;
  std::thread(Watch).detach();
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int StopSignal() { return g_signal.load(); }

void WaitIfStopping() {
  if (g_signal.load() == 0) return;
  for (;;) ::pause();
}

StopChild::StopChild(pid_t pid, int signal) {
  for (int i = 0; i < kMaxChildren; ++i) {
    pid_t expected = 0;
    if (g_children[i].compare_exchange_strong(expected, pid)) {
      g_child_signals[i].store(signal);
      slot_ = i;
      return;
    }
  }
}

StopChild::~StopChild() {
  if (slot_ >= 0) g_children[slot_].store(0);
}

StopCleanup::StopCleanup(std::function<void()> cleanup) {
  std::lock_guard<std::mutex> l(g_mu);
  id_ = g_next_cleanup++;
  g_cleanups[id_] = std::move(cleanup);
}

StopCleanup::~StopCleanup() {
  std::lock_guard<std::mutex> l(g_mu);
  g_cleanups.erase(id_);
}

}  // namespace kiln
