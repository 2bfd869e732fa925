#include "cmd/tree_builds.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace kiln::cmd {
namespace {

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("kiln");
}

std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string l;
  while (std::getline(in, l)) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

Status RunChild(const std::vector<std::string>& args, const std::string& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create " + log);
  std::string self = SelfExe();
  std::vector<std::string> words = {self};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd);
  if (rc != 0) return IoError("cannot start " + self + ": " + std::strerror(rc));
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return OkStatus();
  std::string how = WIFEXITED(st) ? "exit code " + std::to_string(WEXITSTATUS(st))
                                  : "signal " + std::to_string(WTERMSIG(st));
  return Status(ErrorCode::kFailedPrecondition, "kiln build failed (" + how + "); last lines of " + log + ":\n" +
                                                    Tail(log, 15));
}

}  // namespace

TreeBuildResult RunTreeBuilds(const std::vector<TreeBuild>& builds, int jobs, const std::string& log_dir) {
  TreeBuildResult result;
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> started;
  size_t finished = 0;
  int running = 0;
  // The next build whose parents all succeeded. Records builds with a failed parent as abandoned
  // (setting *changed) on the way.
  auto next = [&](bool* changed) -> const TreeBuild* {
    for (const TreeBuild& b : builds) {
      if (started.count(b.name)) continue;
      bool ready = true;
      for (const std::string& p : b.after) {
        auto it = result.status.find(p);
        if (it == result.status.end()) {
          ready = false;
        } else if (!it->second.ok()) {
          started.insert(b.name);
          result.status[b.name] = FailedPrecondition("not built: " + p + " failed");
          std::cout << "skipped " << b.name << ": " << p << " failed\n" << std::flush;
          ++finished;
          *changed = true;
          ready = false;
          break;
        }
      }
      if (ready) return &b;
    }
    return nullptr;
  };
  auto worker = [&] {
    std::unique_lock<std::mutex> lock(mu);
    while (finished < builds.size()) {
      bool changed = false;
      const TreeBuild* b = next(&changed);
      if (b == nullptr) {
        if (changed) {
          cv.notify_all();
        } else if (running == 0) {
          // Nothing runs and nothing can start: a parent outside the run (a caller's mistake).
          for (const TreeBuild& x : builds) {
            if (started.insert(x.name).second) {
              result.status[x.name] = FailedPrecondition("not built: a parent is not part of the run");
              ++finished;
            }
          }
        } else {
          cv.wait(lock);
        }
        continue;
      }
      started.insert(b->name);
      ++running;
      lock.unlock();
      std::cout << "building " << b->name << "\n" << std::flush;
      std::vector<std::string> args = b->args;
      Status s = b->prepare ? b->prepare(args) : OkStatus();
      if (s.ok()) s = RunChild(args, log_dir + "/" + b->name + ".log");
      if (s.ok()) {
        std::cout << "built " << b->name << "\n" << std::flush;
      } else {
        std::cout << "FAILED " << b->name << ": " << s.message() << "\n" << std::flush;
      }
      lock.lock();
      result.status[b->name] = s;
      --running;
      ++finished;
      cv.notify_all();
    }
    cv.notify_all();
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, jobs); ++i) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return result;
}

}  // namespace kiln::cmd
