// Users and groups of a rootfs: Docker's USER and COPY --chown semantics, read from the image's own
// /etc/passwd and /etc/group (never the host's), through a resolver that cannot leave the rootfs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kiln::executor {

/// Who a RUN step runs as.
struct ResolvedUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> supplementary_groups;  // gids of /etc/group entries listing the user (sorted, unique)
  std::string home = "/";                      // from passwd, "/" when unknown
};

/// One /etc/passwd entry (runc's user.User).
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
};
/// One /etc/group entry.
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

/// Parses passwd text. Blank lines and '#' comments are skipped; so are lines whose uid or gid is
/// not a number (such an entry must never resolve to root by accident).
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
/// Parses group text with the same rules; members are the comma-separated fourth field.
std::vector<GroupEntry> ParseGroup(std::string_view text);

/// Docker's USER semantics for RUN: "name", "uid", "name:group", "uid:gid", looked up in the
/// rootfs's /etc/passwd and /etc/group (read through the rootfs resolver, so a hostile symlink cannot
/// point outside). A numeric uid not in passwd is fine (gid 0 unless given); a name not found is an
/// error ("unable to find user NAME: no matching entries in passwd file"), likewise for a group;
/// except "root", which is uid (gid) 0 when passwd (group) has no such entry, as in BuildKit.
/// Supplementary groups: every group listing the user's name, only when no group part was given (as
/// runc does). Missing passwd/group files behave like empty ones.
Result<ResolvedUser> ResolveUser(const std::string& rootfs, std::string_view user_spec);

/// COPY/ADD --chown semantics (BuildKit): "user", "user:group", numeric forms. A user without a group
/// gets the user's primary gid when the user is a name found in passwd, else gid = uid. Names not
/// found are errors.
Result<std::pair<uint32_t, uint32_t>> ResolveChown(const std::string& rootfs, std::string_view chown_spec);

}  // namespace kiln::executor
