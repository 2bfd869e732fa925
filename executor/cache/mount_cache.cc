#include "executor/cache/mount_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "executor/cache/mount_remote.h"

namespace kiln::executor {
namespace {

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("creating " + dir + ": " + ec.message());
  return OkStatus();
}

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f) return IoError("writing " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("renaming " + tmp, errno);
  return OkStatus();
}

}  // namespace

CacheMountLease::~CacheMountLease() { Release(); }

void CacheMountLease::Release() {
  if (temporary_ && !dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  temporary_ = false;
  dir_.clear();
  lock_.Reset();
}

CacheMountLease& CacheMountLease::operator=(CacheMountLease&& o) noexcept {
  if (this == &o) return *this;
  Release();  // what this lease held goes first (a temporary directory, the lock)
  dir_ = std::exchange(o.dir_, std::string());
  lock_ = std::move(o.lock_);
  created_ = o.created_;
  temporary_ = std::exchange(o.temporary_, false);
  imported_ = o.imported_;
  return *this;
}

std::string CacheMountStore::KeyOf(const std::string& id, const Platform& platform) {
  std::string safe;
  for (char c : id) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (safe.size() < 40) safe += ok ? c : '_';
  }
  while (!safe.empty() && safe[0] == '.') safe.erase(0, 1);
  std::string hash = Sha256Of(id + "\n" + platform.ToString()).hex().substr(0, 16);
  return (safe.empty() ? "cache" : safe) + "-" + hash;
}

Result<CacheMountLease> CacheMountStore::Acquire(const CacheMountRequest& req,
                                                 const std::function<Status(const std::string&)>& seed) {
  const std::string root = Root();
  KILN_RETURN_IF_ERROR(MakeDirs(root));
  const std::string key = KeyOf(req.id, req.platform);
  CacheMountLease lease;
  UniqueFd lock(::open((root + "/" + key + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return ErrnoStatus("opening the lock of cache mount " + req.id, errno);
  bool busy = false;
  if (req.sharing == CacheSharing::kPrivate) {
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return ErrnoStatus("locking cache mount " + req.id, errno);
      busy = true;
    }
  } else {
    while (::flock(lock.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoStatus("locking cache mount " + req.id, errno);
    }
  }
  std::string dir;
  if (busy) {
    std::string tmpl = root + "/private-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating a private cache directory in " + root, errno);
    dir = tmpl;
    lease.temporary_ = true;
    lease.dir_ = dir;  // removed with the lease from here on, even on failure
    lease.created_ = true;
  } else {
    dir = root + "/" + key;
    lease.lock_ = std::move(lock);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
      if (errno != ENOENT) return ErrnoStatus("inspecting " + dir, errno);
      // Made under a temporary name and renamed, so a crash never leaves a half-seeded cache.
      std::string tmp = dir + ".new";
      std::error_code ec;
      std::filesystem::remove_all(tmp, ec);
      if (::mkdir(tmp.c_str(), 0755) != 0) return ErrnoStatus("creating " + tmp, errno);
      bool imported = remote_ != nullptr && remote_->Import(key, req.id, tmp);
      if (seed && !imported) KILN_RETURN_IF_ERROR(seed(tmp));
      lease.imported_ = imported;
      if (::rename(tmp.c_str(), dir.c_str()) != 0) return ErrnoStatus("renaming " + tmp, errno);
      lease.created_ = true;
      nlohmann::json j = {{"id", req.id}, {"platform", req.platform.ToString()}};
      KILN_RETURN_IF_ERROR(WriteFileAtomically(root + "/" + key + ".json", j.dump() + "\n"));
    } else if (!S_ISDIR(st.st_mode)) {
      return FailedPrecondition(dir + " is not a directory");
    }
    lease.dir_ = dir;
  }
  if (lease.created_) {
    if (busy && seed) KILN_RETURN_IF_ERROR(seed(dir));
    if (::chmod(dir.c_str(), req.mode) != 0) return ErrnoStatus("setting the mode of " + dir, errno);
    uid_t uid = req.uid.value_or(0);
    gid_t gid = req.gid.value_or(0);
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && (st.st_uid != uid || st.st_gid != gid) && ::chown(dir.c_str(), uid, gid) != 0) {
      // Without privileges (the ptrace tier) the directory stays kiln's, as the steps are.
      if (req.uid || req.gid) {
        return ErrnoStatus("cache mount " + req.id + ": giving the directory to uid " + std::to_string(uid) + ", gid " +
                               std::to_string(gid),
                           errno);
      }
    }
  }
  return lease;
}

Result<UniqueFd> CacheMountStore::Lock(const std::string& key) const {
  UniqueFd lock(::open((Root() + "/" + key + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return ErrnoStatus("opening the lock of cache mount " + key, errno);
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoStatus("locking cache mount " + key, errno);
  }
  return lock;
}

std::vector<CacheMountStore::Entry> CacheMountStore::List() const {
  std::vector<Entry> out;
  DIR* d = ::opendir(Root().c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 6 || n.compare(n.size() - 5, 5, ".json") != 0) continue;
    std::ifstream f(Root() + "/" + n);
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("platform")) continue;
    Result<Platform> p = Platform::Parse(j["platform"].get<std::string>());
    if (!p.ok()) continue;
    Entry entry;
    entry.key = n.substr(0, n.size() - 5);
    entry.id = j["id"].get<std::string>();
    entry.platform = *p;
    entry.dir = Root() + "/" + entry.key;
    struct stat st;
    if (::stat(entry.dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(std::move(entry));
  }
  ::closedir(d);
  return out;
}

}  // namespace kiln::executor
