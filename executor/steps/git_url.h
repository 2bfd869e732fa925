// Git URLs as Dockerfiles and build contexts write them. Pure parsing; no I/O.
//
// BuildKit's rules (util/gitutil): a source is a git repository when it is
//   - a URL with the scheme git://, ssh://, or http(s):// whose path ends in ".git"
//     ("https://host/org/repo.git#ref:subdir");
//   - an scp-style address "user@host:path" ("git@github.com:org/repo.git#v1.2");
// and kiln adds file:// URLs whose path ends in ".git" (a bare repository on this machine: local
// mirrors, and tests). The fragment is "#REF[:SUBDIR]" (REF a branch, tag, full commit sha or any
// ref name; empty = the remote's default branch), or BuildKit's "##ref=R,subdir=S,commit=C" form.
// BuildKit's query form (Dockerfile 1.18+) names the same things before the fragment:
// "?ref=R", "?branch=B" (refs/heads/B), "?tag=T" (refs/tags/T), "?subdir=S", "?checksum=C" (or
// "?commit=C": a hex prefix of the commit, or of the annotated tag), "?keep-git-dir[=BOOL]",
// "?submodules[=BOOL]". A query value that disagrees with the fragment's ref or subdir, branch with
// tag, a repeated, empty or unknown key is an error. The query is not part of the remote.
// Kaniko's context form "git://host/path.git#REF#COMMIT" is parsed by ParseKanikoGitContext.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::executor {

struct GitUrl {
  std::string remote;  ///< what git is given: the URL without its fragment
  std::string ref;     ///< branch, tag, commit sha or ref name; "" = the default branch
  std::string subdir;  ///< cleaned, no leading or trailing '/'; "" = the repository's root
  /// A commit the checkout must resolve to (BuildKit's "commit=", Kaniko's second fragment); "" = any.
  std::string commit;
  /// "?checksum=" / "?commit=": a hex prefix of the commit or annotated tag (VerifyGitChecksum); "" = any.
  std::string checksum;
  std::optional<bool> keep_git_dir;  ///< "?keep-git-dir": keep .git (ADD's --keep-git-dir); unset = not said
  std::optional<bool> submodules;    ///< "?submodules": update submodules; unset = not said
  bool scp_style = false;  ///< user@host:path (ssh)
};

/// Whether `s` names a git repository by BuildKit's rules (above), file://...git included.
bool IsGitUrl(std::string_view s);

/// Parses a git URL (IsGitUrl must hold). kInvalidArgument for a malformed fragment, a subdir that
/// climbs out of the repository, or a ref that git would take as an option.
Result<GitUrl> ParseGitUrl(std::string_view s);

/// Kaniko's `--context git://HOST/PATH[#REF][#COMMIT]`: fetched over HTTPS (over HTTP when
/// `pull_method` is "http", Kaniko's GIT_PULL_METHOD). REF may carry BuildKit's ":SUBDIR". Other
/// git URLs (https://...git, git@host:..., file://...git) are parsed as ParseGitUrl does.
Result<GitUrl> ParseGitContext(std::string_view spec, std::string_view pull_method);

/// Whether `s` is a full 40-hex commit name.
bool IsCommitSha(std::string_view s);

/// `url` with any password or token in its userinfo removed, for messages and for the .git/config
/// that --keep-git-dir leaves in the image.
std::string RedactGitUrl(std::string_view url);

}  // namespace kiln::executor
