// User-namespace id mappings for the rootless tier: which ids exist inside the sandbox and how they
// are installed (written directly, or through the setuid newuidmap/newgidmap helpers).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::sandbox {

/// One line of /proc/PID/uid_map: ids [inside, inside+count) map to [outside, outside+count).
struct IdRange {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
  bool operator==(const IdRange&) const = default;
};

/// How ids are mapped into a new user namespace.
///  - kIdentity: kiln is root (CAP_SETUID/CAP_SETGID); every id valid in kiln's own namespace maps to
///    itself, so files extracted with their real owners look right and USER can be any id. The
///    sandbox's strength then comes from the mount and pid namespaces, not from the id mapping.
///  - kSubordinate: unprivileged kiln with entries in /etc/subuid and /etc/subgid: 0 → kiln's id,
///    1..N → the subordinate range (installed by newuidmap/newgidmap, as rootless Podman does).
///  - kSingle: unprivileged kiln without subordinate ids: only 0 → kiln's id. setgroups(2) is denied
///    inside (the kernel requires that for unprivileged gid maps), so USER must be root.
struct IdMapPlan {
  enum class Kind { kIdentity, kSubordinate, kSingle };
  Kind kind = Kind::kSingle;
  std::vector<IdRange> uids;
  std::vector<IdRange> gids;
  /// kIdentity inside a namespace whose /proc/self/setgroups says "deny" (kiln's own build namespace
  /// over a single mapping): nested namespaces inherit the denial.
  bool setgroups_denied = false;

  bool MapsUid(uint32_t id) const;
  bool MapsGid(uint32_t id) const;
  /// True when processes inside may call setgroups(2).
  bool setgroups_allowed() const { return kind != Kind::kSingle && !setgroups_denied; }
  /// "identity (root)", "subordinate: uid 0→1000, 1-65536→100000-165535; gid …" or "single: …".
  std::string Describe() const;
};

/// Parses the content of /proc/PID/uid_map or gid_map.
Result<std::vector<IdRange>> ParseProcIdMap(std::string_view content);

/// Finds the first range of `user` (matched by name or by numeric id) in the content of /etc/subuid
/// or /etc/subgid ("name:start:count" lines). Returns {start, count} as {outside, count}.
std::optional<IdRange> FindSubordinateRange(std::string_view content, std::string_view user_name,
                                            uint32_t id);

/// Chooses the mapping for the current process: identity when root with CAP_SETUID and CAP_SETGID;
/// subordinate when newuidmap and newgidmap exist and both files list the user; else single.
/// `subuid_path`/`subgid_path` are injectable for tests.
IdMapPlan PlanIdMapping(const std::string& subuid_path = "/etc/subuid",
                        const std::string& subgid_path = "/etc/subgid");

/// The single mapping for the current process (the fallback when the helpers fail).
IdMapPlan SingleIdMapping();

/// Installs `plan` for process `pid`, which must have just created its user namespace and be
/// waiting. Errors carry the helper's own message (newuidmap explains what /etc/subuid lacks).
Status ApplyIdMapping(pid_t pid, const IdMapPlan& plan);

}  // namespace kiln::sandbox
