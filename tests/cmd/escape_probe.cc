// A static program for the sandbox-escape tests (build_escape_test.cc), run as a RUN step inside a
// busybox image. It tries, one after the other, to reach what a step must never reach, and prints
// one line per attempt: "NAME: blocked (WHY)" or "NAME: ESCAPED (WHAT)". Arguments:
//   escape-probe SECRET STATE_DIR DOCKER_CONFIG_FILE HOST_MARKER_FILE TEST_PID TEST_NAME HOST_UTS
// SECRET (reversed) is a value only kiln's own environment holds; STATE_DIR is kiln's state directory and
// DOCKER_CONFIG_FILE its docker config.json, as host paths; HOST_MARKER_FILE a host file that exists
// only outside the rootfs; TEST_PID the host pid of the test that started kiln, whose command line
// holds TEST_NAME; HOST_UTS the host's UTS namespace (the link /proc/self/ns/uts reads). Every attempt is harmless if it succeeds: files are opened and read,
// never written; a process attached to is detached at once.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

void Report(const char* name, bool escaped, const std::string& detail) {
  printf("%s: %s (%s)\n", name, escaped ? "ESCAPED" : "blocked", detail.c_str());
}

std::string Err(const char* what) { return std::string(what) + ": " + strerror(errno); }

// Reads up to 1 MiB of a file; false with errno set when it cannot be opened or read.
bool ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (1 << 20)) break;
  }
  close(fd);
  return true;
}

std::vector<int> Pids() {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (struct dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && pid > 0) pids.push_back(static_cast<int>(pid));
  }
  closedir(d);
  return pids;
}

std::string Comm(int pid) {
  std::string c;
  ReadFile("/proc/" + std::to_string(pid) + "/comm", &c);
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: escape-probe SECRET STATE_DIR DOCKER_CONFIG_FILE HOST_MARKER_FILE TEST_PID TEST_NAME HOST_UTS\n");
    return 2;
  }
  // The secret comes reversed: the step's own environment (its build args) must not hold it.
  const std::string secret(std::string(argv[1]).rbegin(), std::string(argv[1]).rend());
  const std::string state_dir = argv[2], docker_config = argv[3], marker = argv[4];
  const std::string test_pid = argv[5], test_name = argv[6], host_uts = argv[7];
  setvbuf(stdout, nullptr, _IOLBF, 0);

  // 1. kiln's state directory, by its host path: listing it, and a file in it.
  {
    DIR* d = opendir(state_dir.c_str());
    if (d != nullptr) {
      closedir(d);
      Report("state-dir-list", true, "opened " + state_dir);
    } else {
      Report("state-dir-list", false, Err("opendir"));
    }
    int fd = open((state_dir + "/store").c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
      close(fd);
      Report("state-dir-store", true, "opened " + state_dir + "/store");
    } else {
      Report("state-dir-store", false, Err("open"));
    }
  }
  // 2. The docker config: in the step's environment, and by its host path.
  {
    const char* dc = getenv("DOCKER_CONFIG");
    Report("docker-config-env", dc != nullptr, dc ? std::string("DOCKER_CONFIG=") + dc : "not set");
    std::string content;
    if (ReadFile(docker_config, &content)) {
      Report("docker-config-file", true, "read " + std::to_string(content.size()) + " bytes");
    } else {
      Report("docker-config-file", false, Err("open"));
    }
  }
  // 3. A host file outside the rootfs, by its absolute path and by climbing from the root.
  {
    std::string content;
    bool direct = ReadFile(marker, &content);
    Report("host-file", direct, direct ? "read " + marker : Err("open"));
    std::string up = "/../../../../../../../.." + marker;
    bool climbed = ReadFile(up, &content);
    Report("host-file-dotdot", climbed, climbed ? "read " + up : Err("open"));
  }
  // 4. Other processes' environments: kiln's secret must be in none we can read, our own included.
  {
    std::string mine;
    ReadFile("/proc/self/environ", &mine);
    Report("own-environ", mine.find(secret) != std::string::npos, "checked /proc/self/environ");
    int readable = 0, leaked = 0;
    std::string where;
    for (int pid : Pids()) {
      if (pid == getpid()) continue;
      std::string env;
      if (!ReadFile("/proc/" + std::to_string(pid) + "/environ", &env)) continue;
      ++readable;
      if (env.find(secret) != std::string::npos) {
        ++leaked;
        where += " " + std::to_string(pid) + "(" + Comm(pid) + ")";
      }
    }
    Report("other-environ", leaked > 0,
           std::to_string(readable) + " environments readable" + (leaked ? ", secret in:" + where : ""));
  }
  // 5. The host's /proc: the test process that started kiln (its command line, and whether it is
  // listed at all), and the host's kernel knobs.
  {
    std::string cmdline;
    bool read = ReadFile("/proc/" + test_pid + "/cmdline", &cmdline) && cmdline.find(test_name) != std::string::npos;
    Report("host-cmdline", read, read ? "read the test process's command line" : Err("open"));
    bool listed = Comm(std::stoi(test_pid)) == test_name.substr(0, 15);
    Report("host-pid-visible", listed, listed ? "the test process " + test_pid + " is listed" : "not listed");
    int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);  // nothing written
      Report("proc-sysrq", true, "opened /proc/sysrq-trigger for writing");
    } else {
      Report("proc-sysrq", false, Err("open"));
    }
    fd = open("/proc/sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);  // nothing written
      Report("proc-sys-core-pattern", true, "opened /proc/sys/kernel/core_pattern for writing");
    } else {
      Report("proc-sys-core-pattern", false, Err("open"));
    }
    // The hostname may be the step's own to change, in a UTS namespace of its own only.
    fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
    char ns[64] = {0};
    ssize_t n = readlink("/proc/self/ns/uts", ns, sizeof ns - 1);
    bool host_ns = n > 0 && host_uts == std::string(ns, static_cast<size_t>(n));
    if (fd >= 0) {
      close(fd);  // nothing written
      Report("proc-sys-hostname", host_ns, host_ns ? "the host's hostname is writable" : "writable in the step's own UTS namespace");
    } else {
      Report("proc-sys-hostname", false, Err("open"));
    }
  }
  // 6b. The host's disk, as a device node under /dev (the first one /proc/partitions lists).
  {
    std::string parts, name;
    if (ReadFile("/proc/partitions", &parts)) {
      size_t at = 0;
      while (name.empty() && at < parts.size()) {
        size_t end = parts.find('\n', at);
        std::string line = parts.substr(at, end == std::string::npos ? std::string::npos : end - at);
        at = end == std::string::npos ? parts.size() : end + 1;
        unsigned major, minor;
        unsigned long long blocks;
        char dev[64];
        if (sscanf(line.c_str(), " %u %u %llu %63s", &major, &minor, &blocks, dev) == 4) name = dev;
      }
    }
    if (name.empty()) name = "sda";
    int fd = open(("/dev/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char b[512];
      ssize_t n = read(fd, b, sizeof b);
      close(fd);
      Report("host-disk", n > 0, "opened /dev/" + name + ", read " + std::to_string(n) + " bytes");
    } else {
      Report("host-disk", false, Err(("open /dev/" + name).c_str()));
    }
  }
  // 6. A mount bringing something from outside the rootfs in.
  {
    mkdir("/escape-mnt", 0755);
    if (mount(state_dir.c_str(), "/escape-mnt", nullptr, MS_BIND, nullptr) == 0) {
      DIR* d = opendir("/escape-mnt/store");
      bool reached = d != nullptr;
      if (d) closedir(d);
      umount2("/escape-mnt", MNT_DETACH);
      Report("mount-bind-state-dir", reached, reached ? "state dir's store visible" : "mounted, but not the host's");
    } else {
      Report("mount-bind-state-dir", false, Err("mount"));
    }
    if (mount("/", "/escape-mnt", nullptr, MS_BIND | MS_REC, nullptr) == 0) {
      std::string content;
      bool reached = ReadFile("/escape-mnt" + marker, &content);
      umount2("/escape-mnt", MNT_DETACH);
      Report("mount-bind-root", reached, reached ? "host file visible" : "mounted the rootfs itself only");
    } else {
      Report("mount-bind-root", false, Err("mount"));
    }
    rmdir("/escape-mnt");
  }
  // 7. ptrace of kiln: every process named kiln that we can see (kiln itself, its sandbox supervisor).
  {
    std::vector<int> targets;
    for (int pid : Pids()) {
      if (pid != getpid() && Comm(pid) == "kiln") targets.push_back(pid);
    }
    int attached = 0;
    std::string detail;
    for (int pid : targets) {
      if (ptrace(PTRACE_ATTACH, pid, nullptr, nullptr) == 0) {
        ++attached;
        detail += " attached " + std::to_string(pid) + "(" + Comm(pid) + ")";
        int st;
        waitpid(pid, &st, __WALL);
        ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
      } else {
        detail += " " + std::to_string(pid) + "(" + Comm(pid) + "): " + strerror(errno);
      }
    }
    Report("ptrace-kiln", attached > 0, targets.empty() ? "no kiln process visible" : detail.substr(1));
  }
  return 0;
}
