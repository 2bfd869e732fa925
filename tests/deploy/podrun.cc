// podrun: the part of a container runtime the deploy tests need to run a program the way a Kubernetes
// pod would: in a private mount namespace with volumes bind-mounted into an unpacked image, chrooted
// there, with the pod's user, capability set, no_new_privs, and containerd's RuntimeDefault seccomp
// rule for user namespaces (a process without CAP_SYS_ADMIN cannot create one).
//
//   podrun [--rootfs DIR] [--bind SRC:DST[:ro]]... [--host-dev-proc] [--workdir DIR]
//          [--env K=V]... [--uid N] [--gid N] [--groups N,N] [--caps keep|default|none]
//          [--no-new-privs] [--no-userns] -- PROGRAM ARGS...
//
// The environment of PROGRAM is exactly the --env entries; PROGRAM without a '/' is looked up in
// that PATH inside the rootfs. podrun must start as root; it exits 125 when the setup fails and
// otherwise becomes PROGRAM.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "podrun: %s: %s\n", what.c_str(), strerror(errno));
  exit(125);
}

[[noreturn]] void Usage(const std::string& what) {
  fprintf(stderr, "podrun: %s\n", what.c_str());
  exit(125);
}

void MkdirAll(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string p = path.substr(0, i);
      if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) Die("mkdir " + p);
    }
  }
}

struct Bind {
  std::string src, dst;
  bool ro = false;
};

void BindMount(const std::string& root, const Bind& b) {
  std::string target = root + b.dst;
  struct stat st;
  if (::stat(b.src.c_str(), &st) != 0) Die("stat " + b.src);
  if (S_ISDIR(st.st_mode)) {
    MkdirAll(target);
  } else if (::lstat(target.c_str(), &st) != 0) {
    MkdirAll(target.substr(0, target.rfind('/')));
    int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) Die("creating mount point " + target);
    ::close(fd);
  }
  if (::mount(b.src.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) Die("bind " + b.src);
  if (b.ro && ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    Die("read-only remount of " + target);
  }
}

// Docker's and containerd's default capability set (what a pod has unless it adds or drops some).
const int kDefaultCaps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
                            CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
                            CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,       CAP_AUDIT_WRITE};

void LimitBoundingSet(bool keep_default) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
    bool keep = false;
    if (keep_default) {
      for (int c : kDefaultCaps) keep |= c == cap;
    }
    if (!keep && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) Die("dropping capability " + std::to_string(cap));
  }
}

// containerd's RuntimeDefault profile allows clone/unshare with CLONE_NEWUSER only to processes with
// CAP_SYS_ADMIN, and answers clone3 with ENOSYS (its flags are behind a pointer) so libc falls back
// to clone. Pods run without CAP_SYS_ADMIN, so for them this is the whole rule.
void InstallNoUsernsFilter() {
  constexpr unsigned kNewUser = CLONE_NEWUSER;
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kNewUser, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) Die("installing the seccomp filter");
}

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs, workdir, caps = "keep";
  std::vector<Bind> binds;
  std::vector<std::string> env;
  std::vector<gid_t> groups;
  long uid = -1, gid = -1;
  bool nnp = false, no_userns = false, dev_proc = false;
  int i = 1;
  auto value = [&](const char* flag) -> std::string {
    if (i + 1 >= argc) Usage(std::string(flag) + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    } else if (a == "--rootfs") {
      rootfs = value("--rootfs");
    } else if (a == "--bind") {
      std::string v = value("--bind");
      Bind b;
      size_t c1 = v.find(':');
      if (c1 == std::string::npos) Usage("--bind needs SRC:DST");
      b.src = v.substr(0, c1);
      b.dst = v.substr(c1 + 1);
      if (b.dst.size() > 3 && b.dst.compare(b.dst.size() - 3, 3, ":ro") == 0) {
        b.ro = true;
        b.dst.resize(b.dst.size() - 3);
      }
      binds.push_back(b);
    } else if (a == "--host-dev-proc") {
      dev_proc = true;
    } else if (a == "--workdir") {
      workdir = value("--workdir");
    } else if (a == "--env") {
      env.push_back(value("--env"));
    } else if (a == "--uid") {
      uid = std::stol(value("--uid"));
    } else if (a == "--gid") {
      gid = std::stol(value("--gid"));
    } else if (a == "--groups") {
      std::string v = value("--groups");
      for (size_t p = 0; p < v.size();) {
        size_t c = v.find(',', p);
        if (c == std::string::npos) c = v.size();
        groups.push_back(static_cast<gid_t>(std::stoul(v.substr(p, c - p))));
        p = c + 1;
      }
    } else if (a == "--caps") {
      caps = value("--caps");
      if (caps != "keep" && caps != "default" && caps != "none") Usage("--caps must be keep, default or none");
    } else if (a == "--no-new-privs") {
      nnp = true;
    } else if (a == "--no-userns") {
      no_userns = true;
    } else {
      Usage("unknown option " + a);
    }
  }
  if (i >= argc) Usage("no program given after --");

  if (!rootfs.empty() || !binds.empty()) {
    if (::unshare(CLONE_NEWNS) != 0) Die("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("making / private");
  }
  if (dev_proc) {
    if (rootfs.empty()) Usage("--host-dev-proc needs --rootfs");
    binds.insert(binds.begin(), {Bind{"/proc", "/proc"}, Bind{"/dev", "/dev"}});
  }
  for (const Bind& b : binds) BindMount(rootfs, b);
  if (!rootfs.empty()) {
    if (::chroot(rootfs.c_str()) != 0) Die("chroot " + rootfs);
    if (::chdir("/") != 0) Die("chdir /");
  }
  if (!workdir.empty() && ::chdir(workdir.c_str()) != 0) Die("chdir " + workdir);

  if (caps != "keep") LimitBoundingSet(caps == "default");
  if (gid >= 0) {
    if (::setgroups(groups.size(), groups.data()) != 0) Die("setgroups");
    if (::setresgid(gid, gid, gid) != 0) Die("setresgid");
  }
  if (uid >= 0 && ::setresuid(uid, uid, uid) != 0) Die("setresuid");
  if ((nnp || no_userns) && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Die("PR_SET_NO_NEW_PRIVS");
  if (no_userns) InstallNoUsernsFilter();

  ::clearenv();
  for (std::string& e : env) {
    if (::putenv(e.data()) != 0) Die("putenv");
  }
  ::execvp(argv[i], argv + i);
  Die(std::string("exec ") + argv[i]);
}
