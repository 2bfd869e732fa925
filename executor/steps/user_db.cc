#include "executor/steps/user_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "executor/steps/build_context.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxDbBytes = 16 << 20;

std::vector<std::string_view> SplitFields(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    size_t j = line.find(sep, i);
    if (j == std::string_view::npos) {
      out.push_back(line.substr(i));
      return out;
    }
    out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A uid/gid as the kernel takes it: decimal, below 2^32 - 1 (which means "no change" to chown).
std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v >= 0xffffffffULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

template <typename F>
void ForEachLine(std::string_view text, F f) {
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = TrimSpace(text.substr(i, j - i));
    i = j + 1;
    if (line.empty() || line.front() == '#') continue;
    f(line);
  }
}

struct Db {
  std::vector<PasswdEntry> users;
  std::vector<GroupEntry> groups;
};

Result<std::string> ReadDbFile(int root_fd, std::string_view rel) {
  auto text = ReadFileInRoot(root_fd, rel, kMaxDbBytes);
  if (!text.ok()) {
    // A path component that is not a directory is as good as missing (runc treats ENOTDIR so).
    if (text.status().code() == ErrorCode::kFailedPrecondition) return std::string();
    return text.status().WithContext("reading /" + std::string(rel) + " of the rootfs");
  }
  return text->value_or("");
}

Result<Db> LoadDb(const std::string& rootfs, bool need_groups) {
  int fd = ::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening rootfs " + rootfs, errno);
  layers::UniqueFd root(fd);
  Db db;
  KILN_ASSIGN_OR_RETURN(std::string passwd, ReadDbFile(root.get(), "etc/passwd"));
  db.users = ParsePasswd(passwd);
  if (need_groups) {
    KILN_ASSIGN_OR_RETURN(std::string group, ReadDbFile(root.get(), "etc/group"));
    db.groups = ParseGroup(group);
  }
  return db;
}

std::pair<std::string_view, std::optional<std::string_view>> SplitSpec(std::string_view spec) {
  size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return {spec, std::nullopt};
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

const PasswdEntry* FindUserByName(const Db& db, std::string_view name) {
  for (const auto& u : db.users) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

// runc matches the name first, then a numeric argument against the uid.
const PasswdEntry* FindUser(const Db& db, std::string_view arg) {
  if (const PasswdEntry* u = FindUserByName(db, arg)) return u;
  if (auto id = ParseId(arg)) {
    for (const auto& u : db.users) {
      if (u.uid == *id) return &u;
    }
  }
  return nullptr;
}

const GroupEntry* FindGroup(const Db& db, std::string_view arg) {
  for (const auto& g : db.groups) {
    if (g.name == arg) return &g;
  }
  if (auto id = ParseId(arg)) {
    for (const auto& g : db.groups) {
      if (g.gid == *id) return &g;
    }
  }
  return nullptr;
}

Status UserNotFound(std::string_view name) {
  return NotFound("unable to find user " + std::string(name) + ": no matching entries in passwd file");
}
Status GroupNotFound(std::string_view name) {
  return NotFound("unable to find group " + std::string(name) + ": no matching entries in group file");
}

Result<uint32_t> ResolveGroupPart(const Db& db, std::string_view group) {
  if (const GroupEntry* g = FindGroup(db, group)) return g->gid;
  if (auto id = ParseId(group)) return *id;
  if (group == "root") return 0u;  // as for the user: gid 0 needs no group file
  return GroupNotFound(group);
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  ForEachLine(text, [&](std::string_view line) {
    auto f = SplitFields(line, ':');
    if (f.size() < 4) return;
    auto uid = ParseId(f[2]);
    auto gid = ParseId(f[3]);
    if (!uid || !gid || f[0].empty()) return;
    PasswdEntry e;
    e.name = std::string(f[0]);
    e.uid = *uid;
    e.gid = *gid;
    if (f.size() > 5) e.home = std::string(f[5]);
    out.push_back(std::move(e));
  });
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  ForEachLine(text, [&](std::string_view line) {
    auto f = SplitFields(line, ':');
    if (f.size() < 3) return;
    auto gid = ParseId(f[2]);
    if (!gid || f[0].empty()) return;
    GroupEntry e;
    e.name = std::string(f[0]);
    e.gid = *gid;
    if (f.size() > 3) {
      for (std::string_view m : SplitFields(f[3], ',')) {
        m = TrimSpace(m);
        if (!m.empty()) e.members.emplace_back(m);
      }
    }
    out.push_back(std::move(e));
  });
  return out;
}

Result<ResolvedUser> ResolveUser(const std::string& rootfs, std::string_view user_spec) {
  auto [user, group] = SplitSpec(user_spec);
  if (user.empty() && !group) user = "root";  // USER "" means the default, as in Docker
  if (user.empty()) return InvalidArgument("invalid user \"" + std::string(user_spec) + "\": empty user name");
  KILN_ASSIGN_OR_RETURN(Db db, LoadDb(rootfs, true));
  ResolvedUser out;
  std::string name;
  if (const PasswdEntry* u = FindUser(db, user)) {
    out.uid = u->uid;
    out.gid = u->gid;
    out.home = u->home.empty() ? "/" : u->home;
    name = u->name;
  } else if (auto id = ParseId(user)) {
    out.uid = *id;
  } else if (user == "root") {
    // BuildKit's parseUID: root is uid 0 with or without a passwd entry (a scratch image has none).
    out.uid = 0;
  } else {
    return UserNotFound(user);
  }
  if (group) {
    if (group->empty()) return InvalidArgument("invalid user \"" + std::string(user_spec) + "\": empty group name");
    KILN_ASSIGN_OR_RETURN(out.gid, ResolveGroupPart(db, *group));
    return out;
  }
  if (!name.empty()) {
    for (const auto& g : db.groups) {
      if (std::find(g.members.begin(), g.members.end(), name) != g.members.end()) {
        out.supplementary_groups.push_back(g.gid);
      }
    }
    std::sort(out.supplementary_groups.begin(), out.supplementary_groups.end());
    out.supplementary_groups.erase(std::unique(out.supplementary_groups.begin(), out.supplementary_groups.end()),
                                   out.supplementary_groups.end());
  }
  return out;
}

Result<std::pair<uint32_t, uint32_t>> ResolveChown(const std::string& rootfs, std::string_view chown_spec) {
  auto [user, group] = SplitSpec(chown_spec);
  if (user.empty() || (group && group->empty())) {
    return InvalidArgument("invalid --chown \"" + std::string(chown_spec) + "\": expected USER[:GROUP]");
  }
  auto uid_num = ParseId(user);
  bool need_names = !uid_num || (group && !ParseId(*group));
  Db db;
  if (need_names) {
    KILN_ASSIGN_OR_RETURN(db, LoadDb(rootfs, group && !ParseId(*group)));
  }
  uint32_t uid, gid;
  if (uid_num) {
    // BuildKit: a numeric user is taken as is, and its gid defaults to the same number.
    uid = gid = *uid_num;
  } else {
    const PasswdEntry* u = FindUserByName(db, user);
    if (!u) return UserNotFound(user).WithContext("--chown=" + std::string(chown_spec));
    uid = u->uid;
    gid = u->gid;
  }
  if (group) {
    if (auto id = ParseId(*group)) {
      gid = *id;
    } else {
      const GroupEntry* g = nullptr;
      for (const auto& e : db.groups) {
        if (e.name == *group) {
          g = &e;
          break;
        }
      }
      if (!g) return GroupNotFound(*group).WithContext("--chown=" + std::string(chown_spec));
      gid = g->gid;
    }
  }
  return std::make_pair(uid, gid);
}

}  // namespace kiln::executor
