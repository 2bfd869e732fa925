#include "executor/steps/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "core/unique_fd.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxSecretBytes = 500 * 1024;  // BuildKit's limit for a secret's value

std::vector<std::string_view> SplitCommas(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

Result<SecretSource> ParseSecretFlag(std::string_view value, const std::map<std::string, std::string>& environ) {
  SecretSource s;
  std::string type, src, env;
  for (std::string_view field : SplitCommas(value)) {
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("--secret " + std::string(value) + ": \"" + std::string(field) +
                             "\" is not key=value (expected id=ID,src=FILE or id=ID,env=VAR)");
    }
    std::string key(field.substr(0, eq)), val(field.substr(eq + 1));
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == "id") {
      s.id = val;
    } else if (key == "src" || key == "source") {
      src = val;
    } else if (key == "env") {
      env = val;
    } else if (key == "type") {
      if (val != "file" && val != "env") {
        return InvalidArgument("--secret " + std::string(value) + ": type must be file or env, not \"" + val + "\"");
      }
      type = val;
    } else {
      return InvalidArgument("--secret " + std::string(value) + ": unknown key \"" + key +
                             "\" (known: id, src, source, env, type)");
    }
  }
  if (s.id.empty()) {
    if (src.empty() && env.empty()) return InvalidArgument("--secret " + std::string(value) + ": id= is required");
    s.id = !src.empty() ? src.substr(src.find_last_of('/') + 1) : env;
  }
  if (type.empty()) {
    if (!env.empty()) type = "env";
    else if (!src.empty()) type = "file";
    else type = environ.count(s.id) ? "env" : "file";
  }
  if (type == "env") {
    if (!src.empty() && !env.empty()) {
      return InvalidArgument("--secret " + std::string(value) + ": give either src= or env=, not both");
    }
    s.kind = SecretSource::Kind::kEnv;
    s.from = !env.empty() ? env : !src.empty() ? src : s.id;
  } else {
    if (!env.empty()) return InvalidArgument("--secret " + std::string(value) + ": type=file takes src=, not env=");
    s.kind = SecretSource::Kind::kFile;
    s.from = src.empty() ? s.id : src;
  }
  return s;
}

SecretStore::SecretStore(std::vector<SecretSource> sources, std::map<std::string, std::string> environ)
    : environ_(std::move(environ)) {
  for (SecretSource& s : sources) {
    std::string id = s.id;
    sources_[id] = std::move(s);  // the last --secret for an id wins, as with buildx
  }
}

Result<std::string> SecretStore::Read(const std::string& id) const {
  auto it = sources_.find(id);
  if (it == sources_.end()) return NotFound("secret " + id + " was not given (kiln build --secret id=" + id + ",src=FILE)");
  const SecretSource& s = it->second;
  if (s.kind == SecretSource::Kind::kEnv) {
    auto e = environ_.find(s.from);
    if (e == environ_.end()) return NotFound("secret " + id + ": environment variable " + s.from + " is not set");
    return e->second;
  }
  std::ifstream f(s.from, std::ios::binary);
  if (!f) return ErrnoStatus("secret " + id + ": reading " + s.from, errno ? errno : ENOENT);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string v = ss.str();
  if (v.size() > kMaxSecretBytes) return InvalidArgument("secret " + id + ": " + s.from + " is larger than 500 KiB");
  return v;
}

Status SecretStore::Validate() const {
  for (const auto& [id, s] : sources_) {
    if (s.kind == SecretSource::Kind::kEnv) {
      if (!environ_.count(s.from)) return NotFound("--secret id=" + id + ": environment variable " + s.from + " is not set");
      continue;
    }
    struct stat st;
    if (::stat(s.from.c_str(), &st) != 0) return ErrnoStatus("--secret id=" + id + ": " + s.from, errno);
    if (!S_ISREG(st.st_mode)) return InvalidArgument("--secret id=" + id + ": " + s.from + " is not a regular file");
  }
  return OkStatus();
}

std::vector<std::string> SecretStore::Ids() const {
  std::vector<std::string> out;
  for (const auto& [id, s] : sources_) out.push_back(id);
  return out;
}

Status WriteSecretFile(const std::string& path, const std::string& value, mode_t mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("creating the secret's private copy " + path, errno);
  size_t off = 0;
  while (off < value.size()) {
    ssize_t n = ::write(fd.get(), value.data() + off, value.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus("writing " + path, n < 0 ? errno : EIO);
    off += static_cast<size_t>(n);
  }
  if ((uid || gid) && ::fchown(fd.get(), uid ? *uid : static_cast<uid_t>(-1), gid ? *gid : static_cast<gid_t>(-1)) != 0) {
    return ErrnoStatus("giving the secret to uid " + std::to_string(uid.value_or(0)) + ", gid " +
                           std::to_string(gid.value_or(0)),
                       errno);
  }
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus("setting the mode of " + path, errno);
  return OkStatus();
}

}  // namespace kiln::executor
