// RUN --mount: from the Dockerfile's mount specs to what the sandbox puts at each target
// (sandbox::StepMount), and the part of the step's cache key the mounts contribute.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/unique_fd.h"
#include "executor/dockerfile/mount.h"
#include "executor/pipeline/stage_build.h"
#include "layers/safe_path.h"

namespace kiln::executor {

using namespace kiln::dockerfile;

StepMountsHeld::~StepMountsHeld() {
  if (!private_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(private_dir, ec);
  }
}

namespace {

std::string JoinTarget(const std::string& workdir, const std::string& target) {
  if (!target.empty() && target[0] == '/') return target;
  return (workdir == "/" ? "" : workdir) + "/" + target;
}

std::string Lexical(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out.empty() ? "/" : out;
}

CacheSharing SharingOf(const std::string& s) {
  if (s == "private") return CacheSharing::kPrivate;
  if (s == "locked") return CacheSharing::kLocked;
  return CacheSharing::kShared;
}

// The id a secret mount reads: id=, else source= (BuildKit's alias), else the target's base name.
std::string SecretId(const Mount& m) {
  if (!m.id.empty()) return m.id;
  if (!m.source.empty()) return m.source;
  return std::filesystem::path(m.target).filename().string();
}

}  // namespace

Result<std::vector<Mount>> StageBuild::ResolveRunMounts(const RunInst& run, const std::string& workdir) {
  std::vector<Mount> out;
  int ssh_count = 0;
  for (const MountSpec& spec : run.mounts) {
    Result<Mount> r = ResolveMount(spec, Vars_(), svc_.plan->escape);
    if (!r.ok()) return InvalidArgument("--mount=" + spec.raw + ": " + r.status().message());
    Mount m = std::move(r).value();
    switch (m.type) {
      case MountType::kSecret:
        m.id = SecretId(m);
        if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
        break;
      case MountType::kSsh:
        if (m.id.empty()) m.id = "default";
        if (m.target.empty()) m.target = "/run/buildkit/ssh_agent." + std::to_string(ssh_count);
        ++ssh_count;
        break;
      default:
        if (m.target.empty()) {
          return InvalidArgument("--mount=" + spec.raw + ": target= is required for a " +
                                 std::string(MountTypeName(m.type)) + " mount");
        }
        break;
    }
    if (!m.target.empty()) {
      m.target = Lexical(JoinTarget(workdir, m.target));
      if (m.target == "/") return InvalidArgument("--mount=" + spec.raw + ": the target cannot be /");
    }
    if (m.type == MountType::kCache && m.id.empty()) m.id = m.target;
    if (m.type == MountType::kBind && m.source.empty()) m.source = "/";
    out.push_back(std::move(m));
  }
  return out;
}

// What the mounts add to the step's key: every spec as resolved (never a secret's value, never a
// cache's content), and for a bind what it shows: the content of the context files, or the key of
// the stage or the digest of the image it comes from.
Result<std::string> StageBuild::MountsKeyText(size_t index, const std::vector<Mount>& mounts) {
  std::string out;
  for (const Mount& m : mounts) {
    out += "\nmount=" + std::string(MountTypeName(m.type)) + " target=" + m.target + " id=" + m.id +
           " from=" + m.from + " source=" + m.source + " ro=" + (m.read_only ? "1" : "0") + " sharing=" + m.sharing +
           " required=" + (m.required ? "1" : "0") + " env=" + m.env + " size=" + std::to_string(m.size_limit);
    if (m.mode) out += " mode=" + std::to_string(*m.mode);
    if (m.uid) out += " uid=" + std::to_string(*m.uid);
    if (m.gid) out += " gid=" + std::to_string(*m.gid);
    if (m.type != MountType::kBind) continue;
    if (m.from.empty()) {
      if (!svc_.context) return FailedPrecondition("RUN --mount=type=bind needs a build context");
      CopySource src;
      src.root = svc_.context->root();
      src.ignore = &svc_.context->ignore();
      CopyRequest req;
      req.sources = {m.source == "/" ? "." : m.source};
      req.dest = "/kiln-bind";
      KILN_ASSIGN_OR_RETURN(std::optional<Digest> d, HashCopySources(src, req));
      out += " content=" + (d ? d->ToString() : std::string("none"));
    } else {
      std::optional<Digest> k = FromKey(index, m.from);
      out += " from-key=" + (k ? k->ToString() : std::string("none"));
    }
  }
  return out;
}

// The host path a bind or cache seed reads: `source` resolved inside the context or `from`'s root.
Result<std::string> StageBuild::MountSource(size_t index, const Mount& m) {
  std::string root;
  if (m.from.empty()) {
    if (!svc_.context) return FailedPrecondition("no build context");
    root = svc_.context->root();
  } else {
    KILN_ASSIGN_OR_RETURN(root, FromRoot(index, m.from, /*match_name=*/true));
  }
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("opening " + root, errno);
  KILN_ASSIGN_OR_RETURN(std::string rel, layers::ResolveBelow(fd.get(), m.source));
  std::string path = rel.empty() ? root : root + "/" + rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return NotFound("--mount source " + m.source + " does not exist in " +
                    (m.from.empty() ? std::string("the build context") : m.from));
  }
  return path;
}

Status StageBuild::PrepareMounts(size_t index, const std::vector<Mount>& mounts, sandbox::RunSpec* spec,
                                 StepMountsHeld* held) {
  using sandbox::StepMount;
  auto private_dir = [&]() -> Result<std::string> {
    if (held->private_dir.empty()) {
      std::string tmpl = svc_.work_dir + "/mount-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating a directory in " + svc_.work_dir, errno);
      held->private_dir = tmpl;
    }
    return held->private_dir;
  };
  int n = 0;
  bool ssh_env_set = false;
  for (const Mount& m : mounts) {
    ++n;
    StepMount sm;
    sm.target = m.target;
    switch (m.type) {
      case MountType::kTmpfs:
        sm.kind = StepMount::Kind::kTmpfs;
        sm.writes = StepMount::Writes::kDiscarded;
        sm.size_limit = m.size_limit;
        break;
      case MountType::kBind: {
        KILN_ASSIGN_OR_RETURN(sm.source, MountSource(index, m));
        struct stat st;
        if (::stat(sm.source.c_str(), &st) != 0) return ErrnoStatus("--mount source " + m.source, errno);
        sm.kind = S_ISDIR(st.st_mode) ? StepMount::Kind::kDirectory : StepMount::Kind::kFile;
        sm.writes = m.read_only ? StepMount::Writes::kReadOnly : StepMount::Writes::kDiscarded;
        break;
      }
      case MountType::kCache: {
        if (!svc_.cache_mounts) return FailedPrecondition("RUN --mount=type=cache: no directory for cache mounts");
        CacheMountRequest req;
        req.id = m.id;
        req.platform = ps_.platform;
        req.sharing = SharingOf(m.sharing);
        if (m.mode) req.mode = *m.mode;
        req.uid = m.uid;
        req.gid = m.gid;
        std::function<Status(const std::string&)> seed;
        if (!m.from.empty()) {
          seed = [&](const std::string& dir) -> Status {
            KILN_ASSIGN_OR_RETURN(std::string src, MountSource(index, m));
            std::error_code ec;
            std::filesystem::copy(src, dir, std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks, ec);
            if (ec) return IoError("seeding cache mount " + m.id + " from " + m.from + ": " + ec.message());
            return OkStatus();
          };
        }
        KILN_ASSIGN_OR_RETURN(CacheMountLease lease, svc_.cache_mounts->Acquire(req, seed));
        svc_.log->Info("cache mount " + m.target + " (id " + m.id + "): " +
                       (lease.temporary()  ? "busy, a private empty directory for this step"
                        : lease.imported() ? "imported"
                        : lease.created()  ? "new"
                                           : "reused"));
        sm.kind = StepMount::Kind::kDirectory;
        sm.source = lease.dir();
        sm.writes = m.read_only ? StepMount::Writes::kReadOnly : StepMount::Writes::kKept;
        if (svc_.cache_mounts_used) svc_.cache_mounts_used->insert(CacheMountStore::KeyOf(m.id, ps_.platform));
        held->leases.push_back(std::move(lease));
        break;
      }
      case MountType::kSecret: {
        if (!svc_.secrets || !svc_.secrets->Has(m.id)) {
          if (m.required) {
            return NotFound("secret " + m.id + " is required by this RUN but was not given (kiln build --secret id=" +
                            m.id + ",src=FILE or id=" + m.id + ",env=VAR)");
          }
          continue;  // BuildKit: an optional secret that was not given is simply absent
        }
        KILN_ASSIGN_OR_RETURN(std::string value, svc_.secrets->Read(m.id));
        if (!m.env.empty()) spec->env.push_back(m.env + "=" + value);
        if (m.target.empty()) continue;
        KILN_ASSIGN_OR_RETURN(std::string dir, private_dir());
        std::string file = dir + "/secret-" + std::to_string(n);
        bool root = ::geteuid() == 0;
        std::optional<uid_t> uid = m.uid ? std::optional<uid_t>(*m.uid) : root ? std::optional<uid_t>(0) : std::nullopt;
        std::optional<gid_t> gid = m.gid ? std::optional<gid_t>(*m.gid) : root ? std::optional<gid_t>(0) : std::nullopt;
        KILN_RETURN_IF_ERROR(WriteSecretFile(file, value, m.mode.value_or(0400), uid, gid));
        sm.kind = StepMount::Kind::kFile;
        sm.source = file;
        sm.writes = StepMount::Writes::kReadOnly;
        break;
      }
      case MountType::kSsh: {
        if (!svc_.ssh_agents || !svc_.ssh_agents->Has(m.id)) {
          if (m.required) {
            return NotFound("ssh agent " + m.id + " is required by this RUN but was not given (kiln build --ssh " +
                            (m.id == "default" ? std::string("default") : m.id + "=PATH") + ")");
          }
          continue;  // as BuildKit: an optional agent that was not given is simply absent
        }
        KILN_ASSIGN_OR_RETURN(std::string dir, private_dir());
        KILN_ASSIGN_OR_RETURN(std::string agent, svc_.ssh_agents->AgentSocket(m.id, dir));
        std::string relay_path = dir + "/ssh-" + std::to_string(n);
        KILN_ASSIGN_OR_RETURN(std::unique_ptr<SshAgentRelay> relay,
                              SshAgentRelay::Start(agent, relay_path, m.uid.value_or(0), m.gid.value_or(0),
                                                   m.mode.value_or(0600)));
        held->relays.push_back(std::move(relay));
        if (!ssh_env_set) spec->env.push_back("SSH_AUTH_SOCK=" + m.target);
        ssh_env_set = true;
        sm.kind = StepMount::Kind::kFile;
        sm.source = relay_path;
        sm.writes = StepMount::Writes::kKept;  // the socket is moved in and back, never copied
        break;
      }
    }
    spec->mounts.push_back(std::move(sm));
  }
  return OkStatus();
}

}  // namespace kiln::executor
