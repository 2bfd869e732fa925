// Helpers for the sandbox tests: a busybox rootfs, a listing of a tree to prove nothing was left
// behind, and an output Writer that records when each chunk arrived.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/io.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox::testing {

inline constexpr const char* kBusybox = "/bin/busybox";  // Debian's busybox-static

inline bool HaveBusybox() { return ::access(kBusybox, X_OK) == 0; }

/// Fills `root` with bin/busybox (a copy: a static binary needs nothing else) and applet symlinks.
inline void MakeBusyboxRootfs(const std::string& root) {
  kiln::testing::WriteFile(root + "/bin/busybox", kiln::testing::ReadFile(kBusybox), 0755);
  for (const char* applet : {"sh", "echo", "id", "cat", "ls", "env", "pwd", "sleep", "kill", "touch", "mkdir",
                             "rm", "test", "true", "false", "printf", "readlink", "stat", "hostname", "grep",
                             "wc", "sort", "chroot", "head", "tr", "mknod", "ifconfig"}) {
    ::symlink("busybox", (root + "/bin/" + applet).c_str());
  }
}

/// path → "type mode uid:gid size mtime [content]" for every entry under `root` (root itself as ".").
inline std::map<std::string, std::string> ListTree(const std::string& root) {
  std::map<std::string, std::string> out;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    std::string full = rel.empty() ? root : root + "/" + rel;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) continue;
    std::string desc = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                       std::to_string(st.st_gid) + " " + std::to_string(st.st_size) + " " +
                       std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + " ino" +
                       std::to_string(st.st_ino);
    if (S_ISREG(st.st_mode) && st.st_size < 4096) desc += " " + kiln::testing::ReadFile(full);
    out[rel.empty() ? "." : rel] = desc;
    if (S_ISDIR(st.st_mode)) {
      DIR* d = ::opendir(full.c_str());
      if (d == nullptr) continue;
      while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        todo.push_back(rel.empty() ? n : rel + "/" + n);
      }
      ::closedir(d);
    }
  }
  return out;
}

/// Collects output and the time each chunk arrived.
class RecordingWriter : public Writer {
 public:
  Status Write(const void* data, size_t n) override {
    data_.append(static_cast<const char*>(data), n);
    arrivals_.push_back({std::chrono::steady_clock::now(), data_.size()});
    return OkStatus();
  }
  using Writer::Write;
  const std::string& data() const { return data_; }
  /// (time, total bytes so far) per chunk.
  const std::vector<std::pair<std::chrono::steady_clock::time_point, size_t>>& arrivals() const { return arrivals_; }

 private:
  std::string data_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, size_t>> arrivals_;
};

}  // namespace kiln::sandbox::testing
