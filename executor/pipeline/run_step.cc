#include <fcntl.h>

#include "core/stop_signals.h"
#include "core/unique_fd.h"
#include "executor/dockerfile/parser.h"
#include "executor/pipeline/stage_build.h"
#include "executor/sandbox/foreign_exec.h"
#include "layers/rootless.h"

namespace kiln::executor {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

namespace {

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

}  // namespace

// The stage's programs are built for the image's architecture: on another machine they run through
// an emulator (foreign_exec.h decides which way). Said once per stage, before the first RUN starts.
Status StageBuild::CheckArchitecture() {
  if (foreign_checked_) return foreign_status_;
  foreign_checked_ = true;
  Platform want = image_.config.platform();
  if (want.architecture.empty()) return OkStatus();
  Platform host = Platform::Host();
  sandbox::ForeignExecEnv where;
  where.qemu_dirs = svc_.qemu_dirs;
  sandbox::ForeignExec exec = sandbox::ProbeForeignExec(want, host, where);
  if (exec.way == sandbox::ForeignExec::Way::kNone) {
    foreign_status_ = FailedPrecondition(exec.problem);
    return foreign_status_;
  }
  // This machine's own architecture goes without saying.
  if (want.architecture != host.architecture) svc_.log->Info(exec.how);
  if (exec.way == sandbox::ForeignExec::Way::kQemuTraced) emulation_ = {exec.machine, exec.qemu};
  return OkStatus();
}

Status StageBuild::Run(size_t index, const Instruction& inst, const RunInst& run) {
  if (run.security == "insecure") return Unsupported("RUN --security=insecure is not supported: kiln runs steps unprivileged");
  std::vector<std::string> argv;
  if (run.cmd.exec_form) {
    argv = run.cmd.args;
  } else {
    argv = meta_.shell;
    argv.push_back(RunScriptWithHeredocs(run.cmd));
  }
  if (argv.empty() || argv[0].empty()) return InvalidArgument("RUN has no command");
  // History as Docker writes it: the build args the step saw, then the command.
  std::string created_by = "RUN ";
  std::vector<std::string> args;
  for (const auto& [k, v] : scope_.args()) {
    if (!IsProxyArg(k)) args.push_back(k + "=" + v);
  }
  if (!args.empty()) created_by += "|" + std::to_string(args.size()) + " " + JoinArgv(args) + " ";
  created_by += JoinArgv(argv);
  Vars env = scope_.RunEnvironment();
  const std::string workdir = ResolveWorkdir("/", image_.config.config.working_dir);
  KILN_ASSIGN_OR_RETURN(std::vector<Mount> mounts, ResolveRunMounts(run, workdir));

  if (CacheOn(svc_.cache_run)) {
    CacheVars visible;
    for (const auto& [k, v] : env) {
      if (!IsProxyArg(k)) visible.emplace(k, v);  // proxies never change what a step makes
    }
    std::string what = created_by + "\nuser=" + image_.config.config.user + "\nworkdir=" + workdir +
                       "\nnetwork=" + run.network;
    KILN_ASSIGN_OR_RETURN(std::string mounts_key, MountsKeyText(index, mounts));
    what += mounts_key;
    KILN_ASSIGN_OR_RETURN(bool hit, TryCache(index, what, visible, std::nullopt));
    if (hit) return OkStatus();
  }

  KILN_RETURN_IF_ERROR(CheckArchitecture());
  KILN_RETURN_IF_ERROR(EnsureRootfs());
  KILN_ASSIGN_OR_RETURN(sandbox::CommandRunner * runner, svc_.runner());
  if (!svc_.single_snapshot && (!snap_ || snap_stale_)) KILN_RETURN_IF_ERROR(FreshSnapshot());

  sandbox::RunSpec spec;
  spec.rootfs = rootfs_;
  spec.argv = argv;
  spec.emulation = emulation_;
  KILN_ASSIGN_OR_RETURN(ResolvedUser user, CurrentUser());
  spec.uid = user.uid;
  spec.gid = user.gid;
  spec.supplementary_groups.assign(user.supplementary_groups.begin(), user.supplementary_groups.end());
  if (!env.count("PATH")) env["PATH"] = kDefaultPath;
  if (!env.count("HOME")) env["HOME"] = user.home.empty() ? "/" : user.home;
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
  spec.workdir = workdir;
  if (spec.workdir != "/") {
    std::vector<std::string> created;
    KILN_RETURN_IF_ERROR(CreateDirs(spec.workdir, true, &created));
  }
  spec.network = run.network == "none" ? sandbox::NetworkMode::kNone : sandbox::NetworkMode::kHost;
  spec.output = svc_.log->StepOutput();
  spec.cancel = svc_.cancelled;
  StepMountsHeld held;  // released after the step, whatever happens
  KILN_RETURN_IF_ERROR(PrepareMounts(index, mounts, &spec, &held));

  auto t = Clock::now();
  Result<sandbox::RunResult> rr = runner->Run(spec);
  WaitIfStopping();  // the step was ended by kiln's stop: the clean-up is under way, not a RUN failure
  svc_.times->run += Clock::now() - t;
  if (!rr.ok()) return rr.status().WithContext("RUN could not start");
  if (!rr->success()) {
    if (svc_.cancelled && *svc_.cancelled) return Status(ErrorCode::kCancelled, "stopped: another stage failed");
    return Status(ErrorCode::kFailedPrecondition, "RUN " + JoinArgv(spec.argv) + " failed: " + rr->Describe())
        .WithStepExitCode(rr->exit_code != 0 ? rr->exit_code : 1);
  }
  if (svc_.single_snapshot) {
    AddHistory(created_by, true);
    return OkStatus();
  }
  auto ts = Clock::now();
  Result<snapshot::ChangeSet> cs = snap_->Changes();
  svc_.times->snapshot += Clock::now() - ts;
  if (!cs.ok()) return cs.status().WithContext("finding what RUN changed");
  if (rr->creator_ids_not_on_disk) KILN_RETURN_IF_ERROR(RecordCreator(cs->created, spec.uid, spec.gid));
  KILN_RETURN_IF_ERROR(AddSnapshotLayer(*cs, created_by));
  return StoreInCache();
}

// The files a step created belong to it: where the sandbox could not make that so on disk (kiln
// owns them), the step's ids go where rootless extraction keeps image owners, for the layer writer.
// Symlinks cannot carry user xattrs; they keep the owner kiln's own files get (root).
Status StageBuild::RecordCreator(const std::vector<std::string>& created, uid_t uid, gid_t gid) {
  if (created.empty()) return OkStatus();
  int fd = ::open(rootfs_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening the rootfs " + rootfs_, errno);
  UniqueFd root(fd);
  for (const std::string& rel : created) {
    Result<bool> stored = layers::WriteRootlessOwner(root.get(), rel, {uid, gid},
                                                     rel + " (created by RUN as " + std::to_string(uid) + ")");
    // false: a symlink, which cannot carry the xattr; kNotFound: gone. Nothing to record either way.
    if (!stored.ok() && stored.status().code() != ErrorCode::kNotFound) return stored.status();
  }
  return OkStatus();
}

}  // namespace kiln::executor
