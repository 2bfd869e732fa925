#include "executor/sandbox/linux_command_runner.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <utility>
#include <fstream>
#include <sstream>

#include "executor/sandbox/child.h"
#include "executor/sandbox/launch.h"
#include "executor/sandbox/rootfs_touches.h"
#include "executor/sandbox/step_mounts.h"
#include "executor/sandbox/tree_ops.h"
#include "core/unique_fd.h"

namespace kiln::sandbox {
namespace {

using internal::RootfsTouches;
using Outcome = RootfsTouches::Outcome;

constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

// Owns every string a ChildPlan points into; pointers are taken only after all strings exist.
struct PlanStorage {
  std::string rootfs, proc, dev, devpts, devshm, workdir, hostname;
  std::vector<std::string> links;
  std::vector<const char*> link_ptrs;
  struct Bind {
    std::string source, target;
    bool create = false, ro = false, step = false;
    std::optional<std::string> tmpfs;  // RUN --mount=type=tmpfs: its options
    unsigned long locked = 0;           // a step mount's own locked flags
  };
  std::vector<Bind> bind_specs;
  std::vector<internal::BindMount> binds;
  std::vector<std::string> candidates;
  std::vector<const char*> candidate_ptrs;
  std::vector<std::string> argv, env;
  std::vector<char*> argv_ptrs, env_ptrs;
  std::vector<gid_t> groups;
  unsigned long locked_flags = 0;

  void AddBind(std::string source, std::string target, bool create, bool ro) {
    Bind b;
    b.source = std::move(source);
    b.target = std::move(target);
    b.create = create;
    b.ro = ro;
    bind_specs.push_back(std::move(b));
  }
  std::string BindTarget(int i) const {
    if (i < 0 || static_cast<size_t>(i) >= bind_specs.size()) return "?";
    return bind_specs[i].target.substr(rootfs.size());
  }

  void Finish(internal::ChildPlan* plan) {
    plan->rootfs = rootfs.c_str();
    plan->proc_target = proc.c_str();
    plan->dev_target = dev.c_str();
    plan->devpts_target = devpts.c_str();
    plan->devshm_target = devshm.c_str();
    for (const std::string& l : links) link_ptrs.push_back(l.c_str());
    link_ptrs.push_back(nullptr);
    link_ptrs.push_back(nullptr);
    plan->dev_links = link_ptrs.data();
    for (const Bind& b : bind_specs) {
      unsigned long locked = b.step ? b.locked : locked_flags;
      binds.push_back({b.source.c_str(), b.target.c_str(), b.create, b.ro, b.ro ? locked : 0, b.step,
                       b.tmpfs ? b.tmpfs->c_str() : nullptr});
    }
    plan->binds = binds.data();
    plan->num_binds = binds.size();
    plan->hostname = hostname.c_str();
    plan->hostname_len = hostname.size();
    plan->workdir = workdir.c_str();
    for (const std::string& c : candidates) candidate_ptrs.push_back(c.c_str());
    candidate_ptrs.push_back(nullptr);
    plan->exec_candidates = candidate_ptrs.data();
    for (std::string& a : argv) argv_ptrs.push_back(a.data());
    argv_ptrs.push_back(nullptr);
    for (std::string& e : env) env_ptrs.push_back(e.data());
    env_ptrs.push_back(nullptr);
    plan->argv = argv_ptrs.data();
    plan->envp = env_ptrs.data();
    plan->groups = groups.data();
    plan->num_groups = groups.size();
  }
};

// Without privileges (the ptrace tier; in place as non-root) there is no switching ids: a step runs as
// kiln's own uid and gid or not at all.
Status RequireKilnsOwnIds(const RunSpec& spec, SandboxTier tier) {
  if (spec.uid == ::geteuid() && spec.gid == ::getegid()) return OkStatus();
  std::string uid = std::to_string(::geteuid()), gid = std::to_string(::getegid());
  return FailedPrecondition("RUN as uid " + std::to_string(spec.uid) + ", gid " + std::to_string(spec.gid) + ": the " +
                            std::string(SandboxTierName(tier)) + " sandbox runs steps only as kiln's own uid " + uid +
                            " and gid " + gid + " (kiln has neither root nor user namespaces here). Give this step USER " +
                            uid + ":" + gid + ", or run kiln where user namespaces are allowed or as root");
}

bool IsWithin(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string RealPath(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return "";
  std::string out = r;
  ::free(r);
  return out;
}

Result<std::string> ReadHostFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("reading " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The flags a read-only remount of a bind must repeat, or the kernel refuses it inside a user
// namespace ("locked" flags of the source mount).
unsigned long LockedFlags(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

std::string IdList(const std::vector<gid_t>& ids) {
  std::string out;
  for (gid_t g : ids) out += (out.empty() ? "" : ",") + std::to_string(g);
  return out;
}

// A private directory removed with everything in it when the run ends.
class ScratchDir {
 public:
  ~ScratchDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  Status Create(const std::string& base) {
    std::string tmpl = base + "/kiln-run-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating a scratch directory in " + base, errno);
    path_ = tmpl;
    return OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Status WriteScratchFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) return IoError("writing " + path);
  ::chmod(path.c_str(), 0644);
  return OkStatus();
}

// Turns a setup failure reported by the child into a message for the person reading the build log.
Status SetupFailureStatus(const internal::Report& r, const RunSpec& spec, const PlanStorage& st) {
  using internal::Stage;
  auto bind_target = [&](int i) { return st.BindTarget(i); };
  std::string what;
  switch (r.stage) {
    case Stage::kSync: what = "waiting for the user namespace's id mapping"; break;
    case Stage::kMakePrivate: what = "making the sandbox's mounts private"; break;
    case Stage::kBindRootfs: what = "bind-mounting the rootfs " + st.rootfs; break;
    case Stage::kMountProc: what = "mounting /proc in the rootfs"; break;
    case Stage::kMountDev: what = "mounting a tmpfs on /dev in the rootfs"; break;
    case Stage::kDevNode: what = "creating " + bind_target(r.detail); break;
    case Stage::kBindFile: what = "bind-mounting the host's " + bind_target(r.detail) + " into the rootfs"; break;
    case Stage::kStepMount: what = "--mount on " + bind_target(r.detail); break;
    case Stage::kStepMountReadOnly: what = "--mount on " + bind_target(r.detail) + ": making it read-only"; break;
    case Stage::kLoopback: what = "bringing up loopback in the step's network namespace"; break;
    case Stage::kHostname: what = "setting the host name to \"" + spec.hostname + "\""; break;
    case Stage::kPivotRoot: what = "switching the root to " + st.rootfs + " (pivot_root)"; break;
    case Stage::kForkStep: what = "starting the step (fork)"; break;
    case Stage::kChroot: what = "chroot into " + st.rootfs; break;
    case Stage::kDropCap: what = "dropping CAP_SYS_CHROOT for the step"; break;
    case Stage::kSetgroups: what = "setting supplementary groups [" + IdList(spec.supplementary_groups) + "]"; break;
    case Stage::kSetgid: what = "switching to gid " + std::to_string(spec.gid); break;
    case Stage::kSetuid: what = "switching to uid " + std::to_string(spec.uid); break;
    case Stage::kSetsid: what = "starting a new session"; break;
    case Stage::kChdir:
      if (r.err == ENOENT) return NotFound("RUN: working directory " + spec.workdir + " does not exist in the rootfs");
      what = "changing to working directory " + spec.workdir;
      break;
    case Stage::kExec:
      if (r.err == ENOENT && spec.argv[0].find('/') == std::string::npos) {
        return NotFound("RUN: exec: \"" + spec.argv[0] + "\": executable file not found in $PATH");
      }
      what = "exec: \"" + spec.argv[0] + "\"";
      break;
    default: what = "setting up the sandbox"; break;
  }
  return ErrnoStatus("RUN: " + what, r.err);
}

// What the step sees as /etc/resolv.conf and /etc/hosts (nullopt: the host has no such file).
struct HostNetworkFiles {
  std::optional<std::string> resolv_conf;
  std::optional<std::string> hosts;
};

HostNetworkFiles ReadHostNetworkFiles(const LinuxCommandRunnerOptions& options, const std::string& hostname) {
  HostNetworkFiles f;
  if (auto r = ReadHostFile(options.host_resolv_conf); r.ok()) f.resolv_conf = *r;
  if (auto h = ReadHostFile(options.host_hosts); h.ok()) f.hosts = *h;
  if (!hostname.empty()) {
    // Like Docker, the step's own host name resolves to itself.
    std::string hosts = f.hosts.value_or("");
    if (!hosts.empty() && hosts.back() != '\n') hosts += "\n";
    f.hosts = hosts + "127.0.0.1\t" + hostname + "\n";
  }
  return f;
}

// Tier 1: mount targets for /proc, /dev and the two /etc files, plus the bind table the child mounts.
Status PrepareUserNamespaceRootfs(const HostNetworkFiles& files, const std::string& scratch, RootfsTouches& touches,
                                  PlanStorage* st) {
  st->proc = st->rootfs + "/proc";
  st->dev = st->rootfs + "/dev";
  st->devpts = st->dev + "/pts";
  st->devshm = st->dev + "/shm";
  KILN_ASSIGN_OR_RETURN(Outcome proc, touches.EnsureDir("", "proc", 0555));
  if (proc == Outcome::kUnusable) return FailedPrecondition("RUN: /proc in the rootfs is not a directory");
  KILN_ASSIGN_OR_RETURN(Outcome dev, touches.EnsureDir("", "dev", 0755));
  if (dev == Outcome::kUnusable) return FailedPrecondition("RUN: /dev in the rootfs is not a directory");
  st->links = {"/proc/self/fd",   st->dev + "/fd",     "/proc/self/fd/0", st->dev + "/stdin",
               "/proc/self/fd/1", st->dev + "/stdout", "/proc/self/fd/2", st->dev + "/stderr",
               "pts/ptmx",        st->dev + "/ptmx"};
  for (const char* d : kDevices) {
    std::string host = std::string("/dev/") + d;
    if (::access(host.c_str(), F_OK) == 0) st->AddBind(host, st->dev + "/" + d, true, false);
  }
  // The step gets private copies, never the host's files themselves: with an identity mapping a
  // writable bind of the host's /etc/resolv.conf would let a root step change the host's.
  st->locked_flags = LockedFlags(scratch);
  KILN_ASSIGN_OR_RETURN(Outcome etc, touches.EnsureDir("", "etc", 0755));
  if (etc == Outcome::kUnusable) return OkStatus();  // e.g. /etc is a symlink: mounting would follow it
  for (const auto& [name, content] : {std::pair{"resolv.conf", &files.resolv_conf}, std::pair{"hosts", &files.hosts}}) {
    if (!content->has_value()) continue;
    KILN_ASSIGN_OR_RETURN(Outcome target, touches.EnsureFile("etc", name));
    if (target == Outcome::kUnusable) continue;
    std::string copy = scratch + "/" + name;
    KILN_RETURN_IF_ERROR(WriteScratchFile(copy, **content));
    st->AddBind(copy, st->rootfs + "/etc/" + name, false, true);
  }
  return OkStatus();
}

// Tier 1: RUN --mount as real mounts on mount points made in the rootfs. A kDiscarded source is
// bound from a private copy in `scratch`, so the step's writes never reach it.
Status PrepareStepMounts(const std::vector<StepMount>& mounts, int root_fd, const std::string& scratch,
                         RootfsTouches& touches, PlanStorage* st) {
  if (mounts.empty()) return OkStatus();
  KILN_ASSIGN_OR_RETURN(std::vector<internal::MountPoint> points, internal::PrepareMountPoints(root_fd, mounts, touches));
  UniqueFd scratch_fd;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const StepMount& m = mounts[i];
    PlanStorage::Bind b;
    b.target = st->rootfs + "/" + points[i].Rel();
    b.step = true;
    if (m.kind == StepMount::Kind::kTmpfs) {
      b.tmpfs = "mode=1777" + (m.size_limit > 0 ? ",size=" + std::to_string(m.size_limit) : std::string());
    } else if (m.writes == StepMount::Writes::kDiscarded) {
      if (!scratch_fd.valid()) scratch_fd.Reset(::open(scratch.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!scratch_fd.valid()) return ErrnoStatus("opening " + scratch, errno);
      std::string name = "mount-" + std::to_string(i);
      KILN_RETURN_IF_ERROR(internal::CopyTreeTo(m.source, scratch_fd.get(), name, ::geteuid() == 0,
                                                "the private copy of " + m.source));
      b.source = scratch + "/" + name;
    } else {
      b.source = m.source;
      b.ro = m.writes == StepMount::Writes::kReadOnly;
      b.locked = LockedFlags(m.source);
    }
    st->bind_specs.push_back(std::move(b));
  }
  return OkStatus();
}

// Tier 2: no mounts, so device nodes are made with mknod and the /etc files are swapped in place.
Status PrepareChrootRootfs(const HostNetworkFiles& files, bool can_mknod, RootfsTouches& touches) {
  KILN_ASSIGN_OR_RETURN(Outcome dev, touches.EnsureDir("", "dev", 0755));
  if (dev != Outcome::kUnusable && can_mknod) {
    for (const char* d : kDevices) {
      struct stat hs;
      if (::stat((std::string("/dev/") + d).c_str(), &hs) != 0 || !S_ISCHR(hs.st_mode)) continue;
      KILN_RETURN_IF_ERROR(touches.EnsureCharDevice("dev", d, hs.st_rdev).status());
    }
  }
  KILN_ASSIGN_OR_RETURN(Outcome etc, touches.EnsureDir("", "etc", 0755));
  if (etc == Outcome::kUnusable) return OkStatus();
  if (files.resolv_conf) KILN_RETURN_IF_ERROR(touches.SwapFileContent("etc", "resolv.conf", *files.resolv_conf).status());
  if (files.hosts) KILN_RETURN_IF_ERROR(touches.SwapFileContent("etc", "hosts", *files.hosts).status());
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<LinuxCommandRunner>> LinuxCommandRunner::Create(LinuxCommandRunnerOptions options) {
  TierDetection d = DetectSandboxTiers();
  SandboxTier tier = SandboxTier::kInPlace;
  switch (options.tier) {
    case LinuxCommandRunnerOptions::Tier::kAuto: {
      auto best = d.Best();
      if (!best) return FailedPrecondition(d.NoTierMessage());
      tier = *best;
      break;
    }
    case LinuxCommandRunnerOptions::Tier::kUserNamespace:
      if (!d.user_namespace) return FailedPrecondition("the rootless RUN sandbox is unavailable: " + d.user_namespace_problem);
      tier = SandboxTier::kUserNamespace;
      break;
    case LinuxCommandRunnerOptions::Tier::kChroot:
      if (!d.chroot) return FailedPrecondition("the chroot RUN sandbox is unavailable: " + d.chroot_problem);
      tier = SandboxTier::kChroot;
      break;
    case LinuxCommandRunnerOptions::Tier::kPtrace:
      if (!d.ptrace) return FailedPrecondition("the ptrace RUN sandbox is unavailable: " + d.ptrace_problem);
      tier = SandboxTier::kPtrace;
      break;
    case LinuxCommandRunnerOptions::Tier::kInPlace:
      tier = SandboxTier::kInPlace;
      break;
  }
  if (tier == SandboxTier::kPtrace || d.ptrace) {  // the ptrace tier may also run emulated steps
    std::string self = options.tracer_binary.empty() ? "/proc/self/exe" : options.tracer_binary;
    options.tracer_binary = RealPath(self);
    if (options.tracer_binary.empty() && tier == SandboxTier::kPtrace) {
      return NotFound("the ptrace RUN sandbox: cannot find kiln's own binary (" + self + ")");
    }
  }
  if (options.scratch_dir.empty()) {
    const char* t = ::getenv("TMPDIR");
    options.scratch_dir = t != nullptr && *t != '\0' ? t : "/tmp";
  }
  return std::unique_ptr<LinuxCommandRunner>(new LinuxCommandRunner(std::move(options), std::move(d), tier));
}

std::string LinuxCommandRunner::DescribeTier() const {
  if (tier_ == SandboxTier::kInPlace) return "RUN sandbox: in place (Kaniko's mode: steps run in kiln's own filesystem)";
  if (tier_ == SandboxTier::kChroot && detection_.user_namespace) {
    return "RUN sandbox: chroot (forced; user namespaces would be available)";
  }
  if (tier_ == SandboxTier::kChroot) return "RUN sandbox: " + detection_.Describe();
  if (tier_ == SandboxTier::kPtrace && detection_.Best() != SandboxTier::kPtrace) {
    return "RUN sandbox: ptrace (forced; steps run as kiln's own uid " + std::to_string(::geteuid()) + ")";
  }
  if (tier_ == SandboxTier::kPtrace) return "RUN sandbox: " + detection_.Describe();
  if (options_.build_namespace) {
    std::string out = "RUN sandbox: " + std::string(SandboxTierName(tier_)) +
                      ", the whole build in one user namespace, " + options_.build_namespace->Describe();
    if (!options_.build_namespace_note.empty()) out += " (" + options_.build_namespace_note + ")";
    return out;
  }
  std::string out = "RUN sandbox: " + std::string(SandboxTierName(tier_)) + ", " + detection_.id_mapping.Describe();
  if (!detection_.id_mapping_note.empty()) out += " (" + detection_.id_mapping_note + ")";
  return out;
}

Result<RunResult> LinuxCommandRunner::Run(const RunSpec& spec) {
  KILN_RETURN_IF_ERROR(ValidateRunSpec(spec));
  SandboxTier tier = tier_;
  if (!spec.emulation.machine.empty()) {
    KILN_ASSIGN_OR_RETURN(tier, EmulationTier(spec));
  }
  PlanStorage st;
  internal::ChildPlan plan;
  plan.tier = static_cast<int>(tier);

  if (tier == SandboxTier::kInPlace) {
    if (spec.rootfs != "/") return InvalidArgument("RUN: the in-place sandbox runs only in \"/\", not " + spec.rootfs);
    st.rootfs = "/";
  } else {
    st.rootfs = RealPath(spec.rootfs);
    struct stat sb;
    if (st.rootfs.empty() || ::stat(st.rootfs.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
      return NotFound("RUN: rootfs " + spec.rootfs + " is not a directory");
    }
    if (st.rootfs == "/") return InvalidArgument("RUN: refusing to use the host's / as a rootfs outside in-place mode");
    std::vector<std::string> guarded = options_.protected_paths;
    guarded.push_back(options_.scratch_dir);
    guarded.push_back("/proc/self/exe");
    for (const StepMount& m : spec.mounts) {
      std::string real = m.source.empty() ? "" : RealPath(m.source);
      if (!real.empty() && IsWithin(real, st.rootfs)) {
        return InvalidArgument("RUN --mount on " + m.target + ": the source " + real + " lies inside the rootfs");
      }
    }
    for (const std::string& p : guarded) {
      std::string real = RealPath(p);
      if (!real.empty() && IsWithin(real, st.rootfs)) {
        return FailedPrecondition("RUN: kiln's own " + real + " lies inside the rootfs " + st.rootfs +
                                  ", where a RUN step could read it");
      }
    }
  }

  // Who the step runs as, and whether this tier can make it so.
  st.groups = spec.supplementary_groups;
  switch (tier) {
    case SandboxTier::kUserNamespace: {
      const IdMapPlan& m = detection_.id_mapping;
      const IdMapPlan& shown = options_.build_namespace ? *options_.build_namespace : m;
      std::string hint = shown.kind == IdMapPlan::Kind::kSingle
                             ? " (only root is mapped: give kiln's user ranges in /etc/subuid and /etc/subgid and "
                               "install newuidmap/newgidmap to run steps as other users)"
                             : "";
      if (!m.MapsUid(spec.uid)) {
        return FailedPrecondition("RUN as uid " + std::to_string(spec.uid) + ": not mapped in the rootless sandbox, " +
                                  shown.Describe() + hint);
      }
      if (!m.MapsGid(spec.gid)) {
        return FailedPrecondition("RUN as gid " + std::to_string(spec.gid) + ": not mapped in the rootless sandbox, " +
                                  shown.Describe() + hint);
      }
      plan.set_groups = m.setgroups_allowed();
      // Groups the namespace cannot give are dropped, as crun and podman do when setgroups is denied:
      // nearly every distribution lists root in a few groups, and refusing would make the single
      // mapping useless for them. The step's output says so.
      std::vector<gid_t> kept, dropped;
      for (gid_t g : spec.supplementary_groups) {
        if (!m.MapsGid(g) || (!plan.set_groups && g != spec.gid)) {
          dropped.push_back(g);
        } else {
          kept.push_back(g);
        }
      }
      if (!dropped.empty()) {
        st.groups = kept;
        if (spec.output) {
          std::string note = "kiln: the rootless sandbox (" + shown.Describe() + ") cannot give supplementary groups [" +
                             IdList(dropped) + "]; the step runs without them\n";
          spec.output->Write(note.data(), note.size()).IgnoreError();
        }
      }
      break;
    }
    case SandboxTier::kChroot:
      plan.drop_sys_chroot = detection_.can_drop_sys_chroot;
      break;
    case SandboxTier::kPtrace:
      KILN_RETURN_IF_ERROR(RequireKilnsOwnIds(spec, tier));
      plan.change_ids = false;
      break;
    case SandboxTier::kInPlace:
      if (::geteuid() != 0) {
        KILN_RETURN_IF_ERROR(RequireKilnsOwnIds(spec, tier));
        plan.change_ids = false;
      }
      break;
  }
  plan.uid = spec.uid;
  plan.gid = spec.gid;
  plan.net_none = spec.network == NetworkMode::kNone;
  if (plan.net_none && tier != SandboxTier::kUserNamespace) {
    return Unsupported("RUN --network=none needs the rootless (user namespace) sandbox; this one is " +
                       std::string(SandboxTierName(tier)));
  }
  if (tier == SandboxTier::kUserNamespace) st.hostname = spec.hostname;
  st.workdir = spec.workdir;
  st.env = spec.env;
  if (tier == SandboxTier::kPtrace) {
    // The step child execs the tracer, which looks up and starts the command under the rootfs.
    // argv[0] "kiln": installed as /kaniko/executor, kiln would read its arguments as Kaniko's.
    st.argv = {"kiln", "sandbox-trace"};
    if (!spec.emulation.machine.empty()) {
      st.argv.push_back("--emulate=" + spec.emulation.machine + "=" + spec.emulation.qemu);
    }
    st.argv.insert(st.argv.end(), {"3", st.rootfs, spec.workdir});
    st.argv.insert(st.argv.end(), spec.argv.begin(), spec.argv.end());
    st.candidates = {options_.tracer_binary};
    st.workdir = "/";
  } else {
    st.argv = spec.argv;
    st.candidates = ExecCandidates(spec.argv[0], spec.env);
  }

  if (!spec.mounts.empty() && tier == SandboxTier::kInPlace) {
    return Unsupported("RUN --mount is not available in the in-place sandbox");
  }
  // The ptrace tier does not translate socket addresses: a step's connect() reaches the host's path.
  // A socket mounted there (the ssh agent relay) is therefore named to the step by its host path in
  // the variables that name its target (SSH_AUTH_SOCK), once staging has put it in the rootfs.
  std::vector<size_t> ptrace_sockets;
  if (tier == SandboxTier::kPtrace) {
    for (size_t i = 0; i < spec.mounts.size(); ++i) {
      struct stat ss;
      if (::stat(spec.mounts[i].source.c_str(), &ss) == 0 && S_ISSOCK(ss.st_mode)) ptrace_sockets.push_back(i);
    }
  }

  // Prepare the rootfs: mount targets (tier 1) or copied files and device nodes (tier 2), and what
  // RUN --mount puts at its targets. Declared in this order so that the staging (which may rely on
  // directories the touches created) is taken out first, also on every early return.
  std::unique_ptr<RootfsTouches> touches;
  ScratchDir scratch;
  std::unique_ptr<internal::MountStaging> staging;
  if (tier != SandboxTier::kInPlace) {
    KILN_ASSIGN_OR_RETURN(touches, RootfsTouches::Open(st.rootfs));
    UniqueFd root_fd(::open(st.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid()) return ErrnoStatus("opening the rootfs " + st.rootfs, errno);
    HostNetworkFiles files = ReadHostNetworkFiles(options_, st.hostname);
    if (tier == SandboxTier::kUserNamespace || !spec.mounts.empty()) {
      KILN_RETURN_IF_ERROR(scratch.Create(options_.scratch_dir));
    }
    if (tier == SandboxTier::kUserNamespace) {
      KILN_RETURN_IF_ERROR(PrepareUserNamespaceRootfs(files, scratch.path(), *touches, &st));
      KILN_RETURN_IF_ERROR(PrepareStepMounts(spec.mounts, root_fd.get(), scratch.path(), *touches, &st));
    } else {
      // Tier 3 sees the host's /dev through the tracer: no device nodes needed.
      bool mknod = tier == SandboxTier::kChroot && detection_.can_mknod;
      KILN_RETURN_IF_ERROR(PrepareChrootRootfs(files, mknod, *touches));
      if (!spec.mounts.empty()) {
        staging = std::make_unique<internal::MountStaging>(std::move(root_fd), scratch.path(), ::geteuid() == 0);
        KILN_RETURN_IF_ERROR(staging->Stage(spec.mounts, *touches));
        for (size_t i : ptrace_sockets) {
          std::string host = st.rootfs + "/" + staging->StagedRel(i);
          if (host.size() >= 108) {
            return Unsupported("RUN --mount on " + spec.mounts[i].target + ": the ptrace sandbox reaches the socket " +
                               "by its host path, " + host + ", which is longer than a socket address allows; use a " +
                               "shorter --state-dir");
          }
          for (std::string& e : st.env) {
            size_t eq = e.find('=');
            if (e.compare(eq + 1, std::string::npos, spec.mounts[i].target) == 0) e = e.substr(0, eq + 1) + host;
          }
        }
      }
    }
  }
  st.Finish(&plan);

  auto launched = internal::Launch(plan, &detection_.id_mapping, spec.output, spec.cancel);
  Status unstage = staging ? staging->Unstage() : OkStatus();
  Status undo = touches ? touches->Undo() : OkStatus();
  if (!unstage.ok()) return unstage;
  if (!launched.ok()) return launched.status().WithContext("RUN");
  const internal::LaunchResult& l = *launched;
  if (!l.mapping_error.ok()) return l.mapping_error.WithContext("RUN: installing the user namespace's id mapping");
  if (auto f = l.SetupFailure()) return SetupFailureStatus(*f, spec, st);
  if (!undo.ok()) return undo.WithContext("RUN: restoring the rootfs after the step");
  if (!l.output_error.ok()) return l.output_error.WithContext("RUN: writing the step's output");
  auto status = l.ExitStatus();
  if (!status) return InternalError("RUN: the sandbox's supervisor ended without reporting the step's exit status");
  RunResult r;
  r.duration = l.duration;
  r.creator_ids_not_on_disk = tier == SandboxTier::kPtrace;
  if (WIFSIGNALED(*status)) {
    r.signal = WTERMSIG(*status);
    r.exit_code = 128 + r.signal;
  } else {
    r.exit_code = WEXITSTATUS(*status);
  }
  const IdMapPlan& ids = options_.build_namespace ? *options_.build_namespace : detection_.id_mapping;
  if (r.exit_code != 0 && tier == SandboxTier::kUserNamespace && ids.kind == IdMapPlan::Kind::kSingle) {
    // The usual cause of a failing step here (chown, useradd, apt's _apt user), said in the error.
    r.failure_hint = "this sandbox maps only root, " + ids.Describe() +
                     ": chown to any other id fails with \"Invalid argument\" and steps run only as root; add ranges "
                     "for uid " + std::to_string(ids.uids.empty() ? 0 : ids.uids[0].outside) +
                     " to /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids) to map more ids";
  }
  return r;
}

}  // namespace kiln::sandbox
