// Which files a COPY or ADD reads: the selection rules shared by the copy itself (copy_step.cc) and
// the layer cache's hash of its sources (cache_sources.cc), so that the cache key always covers
// exactly what the copy reads. Internal to executor/.
//
// Rules (BuildKit's dockerfile frontend over fsutil): sources are cleaned and relative to the source
// root (`..` stops there); Go filepath.Match globs, the part before the first wildcard component
// resolved with symlinks followed inside the root, matched directories not descended; paths hidden
// by the context's .dockerignore are invisible (its `!` exceptions kept); --exclude drops matches;
// a source that does not exist is an error, a wildcard matching nothing only when no source of the
// instruction matched anything; `--parents` keeps the part after a `/./` pivot.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/steps/copy_step.h"
#include "executor/dockerfile/dockerignore.h"
#include "layers/safe_path.h"

namespace kiln::executor::copy_internal {

/// "a/b" from "a" and "b"; either may be empty.
std::string JoinRel(std::string_view a, std::string_view b);
/// "/rel", for messages.
std::string Display(std::string_view rel);
/// Go's path.Clean("/" + p) without the leading slash: `..` stops at the root, "" is the root.
std::string CleanRel(std::string_view p);
/// Whether `s` has an unescaped `*`, `?` or `[`.
bool HasGlob(std::string_view s);
bool IsUrl(std::string_view s);
/// BuildKit treats these as git sources (ADD of a repository).
bool IsGitUrl(std::string_view s);
/// The non-empty components of a slash-separated path.
std::vector<std::string> SplitComponents(std::string_view p);
/// A directory's entry names, sorted (so errors, hardlink targets and hashes come in a fixed order).
Result<std::vector<std::string>> ListDir(int dirfd, std::string_view what);

/// One thing to copy: a path in the source root, a URL or an inline (heredoc) file.
struct CopyItem {
  enum class Kind { kLocal, kUrl, kInline } kind = Kind::kLocal;
  std::string written;   ///< cleaned path as written (or the URL)
  std::string resolved;  ///< local: path in the source root with symlinks followed
  struct stat st {};
  const dockerfile::InlineSource* inline_source = nullptr;
  std::string pivot;  ///< --parents: the cleaned part before a `/./` in the source as written
};

/// Whether the context's .dockerignore hides `src_rel`. An excluded directory that may hold
/// exceptions (`!dir/keep`) is not hidden: it exists as their parent.
bool IgnoredByContext(const CopySource& source, const std::string& src_rel, bool is_dir);

/// One entry of a source directory, as a COPY reads it.
struct SourceChild {
  std::string name;
  struct stat st {};      ///< lstat of the entry
  std::string src_rel;    ///< its path in the source root (what .dockerignore matches)
  std::string ex_rel;     ///< its path as --exclude matches it
  bool lazy = false;      ///< hidden, but a directory that may hold exceptions: only what they keep counts
};

/// The entries of directory `src_dir` (at `src_rel` in the source root, `ex_rel` for --exclude) that
/// a COPY reads, in name order: entries hidden by .dockerignore or `exclude` (may be null) are left
/// out, except directories that may hold `!` exceptions, which come with `lazy` set. Entries that
/// vanish while listed are skipped.
Result<std::vector<SourceChild>> IncludedChildren(const CopySource& source, const dockerfile::IgnoreMatcher* exclude,
                                                  int src_dir, const std::string& src_rel, const std::string& ex_rel);

/// The request's --exclude patterns compiled, or nullopt when there are none.
Result<std::optional<dockerfile::IgnoreMatcher>> CompileExcludes(const std::vector<std::string>& excludes);

/// Everything `req` reads from the source root `src`, in order: its sources (URLs as kUrl items),
/// then its inline files. `exclude` may be null. Errors as the copy reports them: kNotFound for a
/// source that does not exist, or when no source matched anything (a wildcard matching nothing is
/// fine otherwise); kUnsupported for a git URL, kInvalidArgument for a URL in COPY.
Result<std::vector<CopyItem>> SelectSources(const CopySource& source, const CopyRequest& req, layers::RootDir& src,
                                            const dockerfile::IgnoreMatcher* exclude);

}  // namespace kiln::executor::copy_internal
