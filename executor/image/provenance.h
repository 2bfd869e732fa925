// SLSA v1 provenance of a build, as an in-toto v1 statement (predicateType
// https://slsa.dev/provenance/v1). No I/O: the pipeline gathers the inputs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/digest.h"

namespace kiln::executor {

/// One base image the build resolved: as written in FROM, and where it came from.
struct ResolvedBase {
  std::string reference;  ///< as the Dockerfile names it ("busybox:latest")
  std::string canonical;  ///< "registry/repo@sha256:…" of the platform manifest
  Digest digest;
};

struct ProvenanceInputs {
  std::string builder_version;  ///< "0.1.0"
  std::string subject_name;     ///< "registry/repo" (the first destination; "image" when none)
  Digest subject;               ///< the image manifest's digest
  std::string dockerfile_path;  ///< as found, relative to the context when inside it
  Digest dockerfile_digest;
  std::string target;                  ///< --target ("" = the last stage)
  std::vector<std::string> platforms;  ///< "linux/amd64"
  /// --build-arg NAME=VALUE in order; values of secret-looking names are redacted by ProvenanceDocument.
  std::vector<std::pair<std::string, std::string>> build_args;
  std::vector<ResolvedBase> bases;  ///< every base image the build used, in stage order, no duplicates
};

/// The value provenance records for a build arg: "[REDACTED]" when the name looks like a secret
/// (dockerfile::LooksLikeSecretName: …PASSWORD, …_TOKEN, API_KEY, SECRET…), else the value.
std::string RecordedBuildArg(const std::string& name, const std::string& value);

/// The statement's JSON (fixed field order; the same inputs give the same bytes, so reproducible
/// builds give the same provenance): builder id "urn:kiln:builder:kiln-VERSION", buildType
/// kBuildType, externalParameters (dockerfile path and digest, target, platforms, build args),
/// resolvedDependencies (each base image by digest), subject = the image manifest digest.
std::string ProvenanceDocument(const ProvenanceInputs& in);

/// The buildType URI (documented in docs/supply-chain.md).
extern const char kKilnBuildType[];

}  // namespace kiln::executor
