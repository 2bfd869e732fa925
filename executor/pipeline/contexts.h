// Build contexts that are not a local directory or tarball: a git repository as the main context
// (Kaniko's `--context git://...` with its --git options, or any git URL), and BuildKit's named
// contexts (`--build-context NAME=DIR|docker-image://REF|GIT-URL`), which FROM NAME and
// COPY --from=NAME read. Git repositories are fetched once, before planning, into the build's work
// directory (git_source.h), and removed with it.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "executor/log/build_log.h"
#include "executor/pipeline/build_options.h"
#include "executor/steps/git_source.h"

namespace kiln::executor {

/// Whether --context `spec` names a git repository (git://, or a git URL by git_url.h's rules).
bool IsGitContext(const std::string& spec);

/// Fetches the git context `options.context` into `dest_dir` and returns the directory to build
/// from: the URL's subdirectory, then --context-sub-path below it (which must stay inside).
/// Kaniko's rules: git://HOST/PATH is fetched over HTTPS (HTTP with GIT_PULL_METHOD=http), "#REF" is a
/// branch, tag or ref name (else --git branch=, else the default branch), a second "#COMMIT" must be
/// what it resolves to; submodules only with --git recurse-submodules=true. The .git directory is
/// not part of the context (BuildKit's default).
Result<std::string> FetchGitContext(const BuildOptions& options, const GitRunnerFactory& git,
                                    const std::string& dest_dir, BuildLog* log);

/// What a --build-context VALUE names, without touching anything: kind is "image" (docker-image://;
/// `source` the reference), "oci-layout" (oci-layout://DIR[:TAG][@DIGEST], `source` as given), "git" (a git URL; `source` redacted), "directory" (`source` as given) or
/// "" for what kiln does not take (`source` the scheme).
struct NamedContextSource {
  std::string kind;
  std::string source;
};
NamedContextSource ClassifyNamedContext(const std::string& value);

/// The plan's view of --build-context NAME=VALUE pairs: lower-case name → the image reference for
/// docker-image:// (the whole value for oci-layout://), "" for a directory or a git repository (dockerfile::PlanOptions::named_contexts).
/// kInvalidArgument for a malformed, empty or repeated pair; kUnsupported for other schemes.
Result<std::map<std::string, std::string>> PlanNamedContexts(
    const std::vector<std::pair<std::string, std::string>>& build_contexts);

struct NamedContexts {
  std::map<std::string, std::string> dirs;    ///< lower-case name → directory (given, or fetched)
  std::map<std::string, std::string> images;  ///< lower-case name → image reference
};

/// Resolves options.build_contexts: directories must exist, git URLs (BuildKit's: git:// is git's own
/// protocol here) are fetched below `work_dir`, docker-image:// references are kept for the plan, and
/// so are oci-layout:// ones (with an absolute directory), which the image fetcher reads.
/// kInvalidArgument for a malformed or repeated NAME=VALUE; kUnsupported for other schemes
/// (target:, an HTTP tarball).
Result<NamedContexts> ResolveNamedContexts(const BuildOptions& options, const GitRunnerFactory& git,
                                           const std::string& work_dir, BuildLog* log);

}  // namespace kiln::executor
