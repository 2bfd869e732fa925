#include "executor/steps/copy_sources.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "executor/steps/build_context.h"
#include "executor/steps/git_url.h"
#include "executor/steps/url_fetcher.h"

namespace kiln::executor::copy_internal {

using layers::UniqueFd;

std::string JoinRel(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  out += '/';
  out += b;
  return out;
}

std::string Display(std::string_view rel) { return "/" + std::string(rel); }

// Cleans a path as Go's path.Clean("/" + p) does and drops the leading slash: `..` stops at the root.
std::string CleanRel(std::string_view p) {
  std::string c = dockerfile::CleanPath("/" + std::string(p));
  return c == "/" ? std::string() : c.substr(1);
}

bool HasGlob(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '*' || s[i] == '?' || s[i] == '[') return true;
  }
  return false;
}

bool IsUrl(std::string_view s) { return s.starts_with("http://") || s.starts_with("https://"); }

// BuildKit treats these as git sources (ADD of a repository): git_url.h has the rules.
bool IsGitUrl(std::string_view s) { return executor::IsGitUrl(s); }

std::vector<std::string> SplitComponents(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Lists a directory's entry names, sorted (the order of errors and of hardlink targets is then
// the same on every run).
Result<std::vector<std::string>> ListDir(int dirfd, std::string_view what) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("listing " + std::string(what), errno);
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("listing " + std::string(what), err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoStatus("listing " + std::string(what), err);
  std::sort(names.begin(), names.end());
  return names;
}

bool IgnoredByContext(const CopySource& source, const std::string& src_rel, bool is_dir) {
  if (!source.ignore || src_rel.empty() || !source.ignore->Excluded(src_rel)) return false;
  return !(is_dir && source.ignore->HasExceptions());
}

Result<std::vector<SourceChild>> IncludedChildren(const CopySource& source, const dockerfile::IgnoreMatcher* exclude,
                                                  int src_dir, const std::string& src_rel, const std::string& ex_rel) {
  KILN_ASSIGN_OR_RETURN(auto names, ListDir(src_dir, Display(src_rel)));
  std::vector<SourceChild> out;
  out.reserve(names.size());
  for (auto& name : names) {
    SourceChild c;
    if (::fstatat(src_dir, name.c_str(), &c.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("inspecting " + Display(JoinRel(src_rel, name)), errno);
    }
    c.src_rel = JoinRel(src_rel, name);
    c.ex_rel = JoinRel(ex_rel, name);
    bool is_dir = S_ISDIR(c.st.st_mode);
    if (source.ignore && source.ignore->Excluded(c.src_rel)) {
      if (!is_dir || !source.ignore->HasExceptions()) continue;
      c.lazy = true;
    }
    if (exclude && exclude->Excluded(c.ex_rel)) {
      if (!is_dir || !exclude->HasExceptions()) continue;
      c.lazy = true;
    }
    c.name = std::move(name);
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::optional<dockerfile::IgnoreMatcher>> CompileExcludes(const std::vector<std::string>& excludes) {
  if (excludes.empty()) return std::optional<dockerfile::IgnoreMatcher>();
  std::string joined;
  for (const auto& e : excludes) joined += e + "\n";
  auto m = dockerfile::IgnoreMatcher::Create(dockerfile::ReadIgnorePatterns(joined));
  if (!m.ok()) return m.status().WithContext("--exclude");
  return std::optional<dockerfile::IgnoreMatcher>(std::move(*m));
}

namespace {

Status Glob(int dirfd, const std::string& dir_rel, const std::vector<std::string>& pattern, size_t idx,
            std::vector<std::string>* out) {
  KILN_ASSIGN_OR_RETURN(auto names, ListDir(dirfd, Display(dir_rel)));
  for (const auto& name : names) {
    if (!GlobMatch(pattern[idx], name)) continue;
    std::string rel = JoinRel(dir_rel, name);
    if (idx + 1 == pattern.size()) {
      out->push_back(rel);
      continue;
    }
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;  // not a directory (or a symlink: the walk does not follow them)
    UniqueFd sub(fd);
    KILN_RETURN_IF_ERROR(Glob(sub.get(), rel, pattern, idx + 1, out));
  }
  return OkStatus();
}

// Adds the local source `rel` (found by name, or matched by a glob when `from_glob`).
Status AddLocal(const CopySource& source, layers::RootDir& src, const dockerfile::IgnoreMatcher* exclude,
                const std::string& rel, bool from_glob, std::vector<CopyItem>* items) {
  auto not_found = [&]() {
    if (source.from_stage) return NotFound("file not found: stat " + Display(rel) + ": file does not exist");
    return NotFound("file not found in build context or excluded by .dockerignore: stat " +
                    (rel.empty() ? std::string(".") : rel) + ": file does not exist");
  };
  CopyItem item;
  item.written = rel;
  auto resolved = src.Resolve(rel);
  if (!resolved.ok()) {
    if (resolved.status().code() == ErrorCode::kFailedPrecondition) return not_found();
    return resolved.status();
  }
  item.resolved = *resolved;
  if (::fstatat(src.fd(), item.resolved.empty() ? "." : item.resolved.c_str(), &item.st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      if (from_glob) return OkStatus();  // a dangling symlink matched by a glob
      return not_found();
    }
    return ErrnoStatus("inspecting source " + Display(rel), errno);
  }
  bool is_dir = S_ISDIR(item.st.st_mode);
  if (IgnoredByContext(source, rel, is_dir) || IgnoredByContext(source, item.resolved, is_dir)) {
    if (from_glob) return OkStatus();
    return not_found();
  }
  if (exclude && !rel.empty() && exclude->Excluded(rel)) return OkStatus();
  items->push_back(std::move(item));
  return OkStatus();
}

}  // namespace

Result<std::vector<CopyItem>> SelectSources(const CopySource& source, const CopyRequest& req, layers::RootDir& src,
                                            const dockerfile::IgnoreMatcher* exclude) {
  std::vector<CopyItem> out;
  const char* op = req.add ? "ADD" : "COPY";
  std::string first_unmatched;  // the first wildcard source that matched nothing
  for (const auto& s : req.sources) {
    if (IsGitUrl(s)) {
      if (!req.add) return InvalidArgument("source can't be a git repository for COPY: " + RedactGitUrl(s) + " (use ADD)");
      // The pipeline fetches a git source itself (add_git.cc) when it is the ADD's only source.
      return InvalidArgument("ADD of a git repository (" + RedactGitUrl(s) + ") takes no other source");
    }
    if (IsUrl(s)) {
      if (!req.add) return InvalidArgument("source can't be a URL for COPY: " + RedactUrl(s) + " (use ADD)");
      CopyItem item;
      item.kind = CopyItem::Kind::kUrl;
      item.written = s;
      out.push_back(std::move(item));
      continue;
    }
    std::string rel = CleanRel(s);
    std::string pivot;
    if (size_t at = ("/" + s).rfind("/./"); req.parents && at != std::string::npos) {
      pivot = CleanRel(s.substr(0, at == 0 ? 0 : at - 1));
    }
    size_t first_new = out.size();
    auto set_pivot = [&] {
      for (size_t i = first_new; i < out.size(); ++i) out[i].pivot = pivot;
    };
    if (!HasGlob(rel)) {
      KILN_RETURN_IF_ERROR(AddLocal(source, src, exclude, rel, false, &out));
      set_pivot();
      continue;
    }
    // The part before the first component with a wildcard is resolved (symlinks followed); the rest
    // is matched component by component, matched directories not being descended (Go's Walk+Match).
    std::vector<std::string> comps = SplitComponents(rel);
    size_t first = 0;
    while (first < comps.size() && !HasGlob(comps[first])) ++first;
    std::string prefix;
    for (size_t i = 0; i < first; ++i) prefix = JoinRel(prefix, comps[i]);
    std::vector<std::string> pattern(comps.begin() + static_cast<long>(first), comps.end());
    std::vector<std::string> matches;
    auto base = src.Resolve(prefix);
    if (base.ok()) {
      auto dir = src.OpenDir(*base, false);
      if (dir.ok()) {
        int fd = ::openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
          UniqueFd d(fd);
          KILN_RETURN_IF_ERROR(Glob(d.get(), *base, pattern, 0, &matches));
        }
      }
    }
    for (const auto& m : matches) KILN_RETURN_IF_ERROR(AddLocal(source, src, exclude, m, true, &out));
    set_pivot();
    if (out.size() == first_new && first_unmatched.empty()) first_unmatched = s;
  }
  // BuildKit, Buildah and Kaniko: a wildcard matching nothing is fine as long as some source of the
  // instruction matched something; when none did, the instruction fails.
  if (out.empty() && !first_unmatched.empty()) {
    return NotFound(std::string(op) + " source " + first_unmatched + ": no files match" +
                    (source.ignore ? " (or all matches are excluded by .dockerignore)" : ""));
  }
  for (const auto& in : req.inline_sources) {
    CopyItem item;
    item.kind = CopyItem::Kind::kInline;
    item.written = in.path;
    item.inline_source = &in;
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace kiln::executor::copy_internal
