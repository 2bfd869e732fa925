// The instructions that only change the image config (and the stage's variables): ENV, ARG, LABEL,
// MAINTAINER, EXPOSE, CMD, ENTRYPOINT, VOLUME, USER, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, and
// WORKDIR's config half. Pure functions over the config, with Docker's (BuildKit's) meaning:
//  - words are expanded in exactly the instructions Docker expands (see shell_lex.h);
//  - ENTRYPOINT clears a CMD inherited from the base image, not one set in this stage;
//  - shell-form CMD/ENTRYPOINT/HEALTHCHECK run through the current SHELL;
//  - EXPOSE without a protocol means tcp; VOLUME and LABEL values are expanded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/dockerfile/args.h"
#include "executor/dockerfile/instructions.h"

namespace kiln::executor {

/// The default PATH BuildKit puts in the environment of images and steps that have none.
inline constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The part of a stage a metadata instruction may change.
struct StageMetadata {
  ImageConfig* image = nullptr;  ///< config.* fields and author
  dockerfile::StageScope* scope = nullptr;
  std::vector<std::string> shell{"/bin/sh", "-c"};
  bool cmd_set = false;  ///< a CMD was given in this stage
  /// Set by ApplyMetadata when Docker's history text differs from the instruction as written: ENV and
  /// LABEL record their processed pairs ("ENV A=two words B=x-1"). Empty: use the original text.
  std::string created_by;
};

/// Applies `inst` if it is a metadata instruction and returns true; returns false (and changes
/// nothing) for RUN, COPY, ADD, WORKDIR and FROM. Errors are plain messages (the caller adds the
/// location).
Result<bool> ApplyMetadata(const dockerfile::Instruction& inst, char escape, StageMetadata& stage);

/// The absolute, cleaned working directory after `WORKDIR path` (already expanded) when the current
/// one is `current` ("" = "/").
std::string ResolveWorkdir(const std::string& current, const std::string& path);
/// What the image config records for `WORKDIR path`: an absolute path as written (BuildKit, Buildah
/// and Kaniko keep "/app/" so), a relative one as ResolveWorkdir gives it. Steps run in
/// ResolveWorkdir("/", that).
std::string WorkdirAsConfigured(const std::string& current, const std::string& path);

/// Sets K=V in a Docker-style env list: replaces the entry for K in place, or appends it.
void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value);
/// The value of K in an env list, or nullopt.
std::optional<std::string> FindEnv(const std::vector<std::string>& env, const std::string& key);

}  // namespace kiln::executor
