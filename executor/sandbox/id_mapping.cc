#include "executor/sandbox/id_mapping.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include "core/subprocess.h"
#include "executor/sandbox/linux_caps.h"

namespace kiln::sandbox {
namespace {

bool Maps(const std::vector<IdRange>& ranges, uint32_t id) {
  for (const IdRange& r : ranges) {
    if (id >= r.inside && id - r.inside < r.count) return true;
  }
  return false;
}

std::string RangesText(const std::vector<IdRange>& ranges) {
  std::string out;
  for (const IdRange& r : ranges) {
    if (!out.empty()) out += ", ";
    if (r.count == 1) {
      out += std::to_string(r.inside) + "→" + std::to_string(r.outside);
    } else {
      out += std::to_string(r.inside) + "-" + std::to_string(uint64_t{r.inside} + r.count - 1) + "→" +
             std::to_string(r.outside) + "-" + std::to_string(uint64_t{r.outside} + r.count - 1);
    }
  }
  return out;
}

bool ParseU32(std::string_view s, uint32_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string CurrentUserName() {
  struct passwd pw, *res = nullptr;
  char buf[4096];
  if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &res) == 0 && res != nullptr) return pw.pw_name;
  return "";
}

bool Executable(const char* path) { return ::access(path, X_OK) == 0; }

std::string MapText(const std::vector<IdRange>& ranges) {
  std::string out;
  for (const IdRange& r : ranges) {
    out += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " + std::to_string(r.count) + "\n";
  }
  return out;
}

Status WriteProcFile(pid_t pid, const char* name, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + path, errno);
  ssize_t n = ::write(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) {
    return ErrnoStatus("writing \"" + content.substr(0, content.find('\n')) + "\" to " + path, n < 0 ? err : EIO);
  }
  return OkStatus();
}

// Runs newuidmap/newgidmap with an empty environment and returns its stderr in the error.
Status RunMapHelper(const std::string& helper, pid_t pid, const std::vector<IdRange>& ranges) {
  std::vector<std::string> args = {helper, std::to_string(pid)};
  for (const IdRange& r : ranges) {
    args.push_back(std::to_string(r.inside));
    args.push_back(std::to_string(r.outside));
    args.push_back(std::to_string(r.count));
  }
  SubprocessSpec spec;
  spec.argv = std::move(args);
  spec.env = std::vector<std::string>{};
  spec.merge_stderr = true;
  spec.max_output = 4096;
  Result<SubprocessResult> ran = RunSubprocess(spec);
  if (!ran.ok()) return ran.status().WithContext("starting " + helper);
  if (ran->Succeeded()) return OkStatus();
  std::string out = std::move(ran->out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return PermissionDenied(helper + " " + RangesText(ranges) + " failed" + (out.empty() ? "" : ": " + out));
}

}  // namespace

bool IdMapPlan::MapsUid(uint32_t id) const { return Maps(uids, id); }
bool IdMapPlan::MapsGid(uint32_t id) const { return Maps(gids, id); }

std::string IdMapPlan::Describe() const {
  switch (kind) {
    case Kind::kIdentity:
      return "identity mapping (kiln is root)";
    case Kind::kSubordinate:
      return "subordinate ids: uid " + RangesText(uids) + "; gid " + RangesText(gids);
    case Kind::kSingle:
      return "single mapping: uid " + RangesText(uids) + ", gid " + RangesText(gids) + " (no subordinate ids)";
  }
  return "";
}

Result<std::vector<IdRange>> ParseProcIdMap(std::string_view content) {
  std::vector<IdRange> out;
  std::istringstream in{std::string(content)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    uint64_t a, b, c;
    if (!(ls >> a >> b >> c)) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      return InvalidArgument("malformed id map line \"" + line + "\"");
    }
    if (a > UINT32_MAX || b > UINT32_MAX || c > UINT32_MAX) return InvalidArgument("id map value out of range");
    out.push_back({static_cast<uint32_t>(a), static_cast<uint32_t>(b), static_cast<uint32_t>(c)});
  }
  return out;
}

std::optional<IdRange> FindSubordinateRange(std::string_view content, std::string_view user_name, uint32_t id) {
  std::string idtext = std::to_string(id);
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view who = line.substr(0, c1);
    if (who != idtext && (user_name.empty() || who != user_name)) continue;
    uint32_t start = 0, count = 0;
    std::string_view count_text = line.substr(c2 + 1);
    while (!count_text.empty() && (count_text.back() == '\r' || count_text.back() == ' ')) count_text.remove_suffix(1);
    if (!ParseU32(line.substr(c1 + 1, c2 - c1 - 1), &start) || !ParseU32(count_text, &count) || count == 0) continue;
    return IdRange{0, start, count};
  }
  return std::nullopt;
}

IdMapPlan SingleIdMapping() {
  IdMapPlan plan;
  plan.kind = IdMapPlan::Kind::kSingle;
  plan.uids = {{0, static_cast<uint32_t>(::geteuid()), 1}};
  plan.gids = {{0, static_cast<uint32_t>(::getegid()), 1}};
  return plan;
}

IdMapPlan PlanIdMapping(const std::string& subuid_path, const std::string& subgid_path) {
  if (::geteuid() == 0 && HasEffectiveCap(CAP_SETUID) && HasEffectiveCap(CAP_SETGID)) {
    // Mirror whatever ids exist in kiln's own namespace (all of them on a normal host; a subset when
    // kiln itself runs in a user namespace, where writing 0 0 4294967295 would be refused).
    auto uids = ParseProcIdMap(ReadSmallFile("/proc/self/uid_map"));
    auto gids = ParseProcIdMap(ReadSmallFile("/proc/self/gid_map"));
    if (uids.ok() && gids.ok() && !uids->empty() && !gids->empty()) {
      IdMapPlan plan;
      plan.kind = IdMapPlan::Kind::kIdentity;
      for (const IdRange& r : *uids) plan.uids.push_back({r.inside, r.inside, r.count});
      for (const IdRange& r : *gids) plan.gids.push_back({r.inside, r.inside, r.count});
      std::string setgroups = ReadSmallFile("/proc/self/setgroups");
      plan.setgroups_denied = setgroups.rfind("deny", 0) == 0;
      return plan;
    }
  }
  IdMapPlan single = SingleIdMapping();
  if (!Executable("/usr/bin/newuidmap") || !Executable("/usr/bin/newgidmap")) return single;
  std::string name = CurrentUserName();
  auto su = FindSubordinateRange(ReadSmallFile(subuid_path), name, ::geteuid());
  auto sg = FindSubordinateRange(ReadSmallFile(subgid_path), name, ::geteuid());  // keyed by user too
  if (!su || !sg) return single;
  IdMapPlan plan;
  plan.kind = IdMapPlan::Kind::kSubordinate;
  plan.uids = {single.uids[0], {1, su->outside, su->count}};
  plan.gids = {single.gids[0], {1, sg->outside, sg->count}};
  return plan;
}

Status ApplyIdMapping(pid_t pid, const IdMapPlan& plan) {
  switch (plan.kind) {
    case IdMapPlan::Kind::kSubordinate:
      KILN_RETURN_IF_ERROR(RunMapHelper("/usr/bin/newuidmap", pid, plan.uids));
      return RunMapHelper("/usr/bin/newgidmap", pid, plan.gids);
    case IdMapPlan::Kind::kSingle:
      KILN_RETURN_IF_ERROR(WriteProcFile(pid, "uid_map", MapText(plan.uids)));
      // An unprivileged process may write a gid map only after giving up setgroups(2) (since Linux
      // 3.19), so that dropping a group cannot be undone to regain access.
      KILN_RETURN_IF_ERROR(WriteProcFile(pid, "setgroups", "deny"));
      return WriteProcFile(pid, "gid_map", MapText(plan.gids));
    case IdMapPlan::Kind::kIdentity:
      KILN_RETURN_IF_ERROR(WriteProcFile(pid, "uid_map", MapText(plan.uids)));
      return WriteProcFile(pid, "gid_map", MapText(plan.gids));
  }
  return InternalError("unknown id mapping kind");
}

}  // namespace kiln::sandbox
