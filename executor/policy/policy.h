// Build policy: rules a platform team sets for every image (`kiln build --policy FILE`, $KILN_POLICY),
// checked inside the builder instead of by a separate policy engine. The schema (docs/policy.md):
//
//   bases:  allow: [GLOB...]  forbid_tags: [GLOB...]  allow_tags: [GLOB...]  require_digest: BOOL
//   user:   require_non_root: BOOL  allow: [USER...]
//   labels: required: [KEY...]
//   add:    require_checksum: BOOL
//   mounts: allow: [TYPE...]
//   image:  max_size: SIZE ("500m", "2g", bytes)
//
// A file is YAML or JSON (JSON is YAML). Unknown keys and wrong types are errors naming the key and
// its position, so a typo never switches a rule off. Three moments of evaluation:
//   EvaluatePlan      on the stage plan, before anything is pulled (every rule but image.max_size;
//                     bases.allow patterns pinning a digest may need the resolved digest: pending)
//   EvaluateResolved  a pending base, once its manifest is resolved
//   EvaluateImageSize the final image's compressed layer bytes, before any push
// Every violation carries its rule's name and a Dockerfile position. Pure except LoadPolicyFile.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/dockerfile/glob.h"
#include "executor/dockerfile/plan.h"

namespace kiln::policy {

/// A glob as written and compiled ('*' stays within one '/'-separated part, '**' crosses them).
struct Pattern {
  std::string text;
  dockerfile::Glob glob;
  bool Match(std::string_view s) const { return glob.Match(s); }
};

struct Policy {
  std::string origin;  ///< where it came from, for messages: "policy.yaml" or "$KILN_POLICY (/etc/p.yaml)"
  struct {
    std::vector<Pattern> allow;        ///< empty: any image
    std::vector<Pattern> forbid_tags;  ///< a reference with neither tag nor digest counts as "latest"
    std::vector<Pattern> allow_tags;   ///< empty: any tag
    bool require_digest = false;
  } bases;
  struct {
    bool require_non_root = false;
    std::vector<std::string> allow;  ///< empty: any (non-root when required) user
  } user;
  std::vector<std::string> required_labels;
  bool add_require_checksum = false;
  std::optional<std::vector<std::string>> mounts_allow;  ///< unset: any RUN --mount type
  std::optional<uint64_t> max_image_bytes;
};

/// Parses a policy file's text. `origin` names it in errors: "ORIGIN:LINE:COL: unknown key
/// bases.alow (did you mean allow?)". Errors are kInvalidArgument.
Result<Policy> ParsePolicy(std::string_view text, std::string origin);

/// Reads and parses `path` (at most 1 MiB); `origin` as in ParsePolicy ("" = the path).
Result<Policy> LoadPolicyFile(const std::string& path, std::string origin = "");

/// The policies a build obeys: $KILN_POLICY (from `environ`, a file path) first, then each --policy
/// file. They all apply: a job's --policy adds rules to the central one and never replaces it.
Result<std::vector<Policy>> LoadPolicies(const std::vector<std::string>& policy_files,
                                         const std::map<std::string, std::string>& environ);

struct Violation {
  std::string rule;     ///< "bases.forbid_tags"
  std::string message;  ///< without position: "FROM busybox:latest uses the forbidden tag latest"
  dockerfile::Location loc;
  std::string formatted;  ///< "Dockerfile:1:1: policy bases.forbid_tags: …" with the line and caret
};

/// An image whose bases.allow verdict needs its resolved digest (a pattern names one).
struct PendingImage {
  std::string image;  ///< as the plan holds it
  Platform platform;
  dockerfile::Location loc;
  std::string what;  ///< "FROM alpine:3.19", "COPY --from=alpine:3.19"
  size_t policy = 0;  ///< index of the policy that asks
};

/// Rules the plan cannot decide because the final image inherits what they look at from the base
/// image its stage chain starts FROM: the chain sets no USER, or lacks a required label. They are
/// decided on that image's config once it is resolved (EvaluateInherited). A chain FROM scratch
/// inherits nothing and is decided on the plan.
struct InheritedCheck {
  std::string image;  ///< the chain's base image, as the plan holds it
  Platform platform;
  dockerfile::Location loc;  ///< its FROM
  struct Rules {
    size_t policy = 0;
    bool user = false;                ///< the user rules apply to the base's USER
    std::vector<std::string> labels;  ///< required labels the Dockerfile does not set
  };
  std::vector<Rules> rules;
};

struct PlanVerdict {
  std::vector<Violation> violations;
  std::vector<PendingImage> pending;
  std::optional<InheritedCheck> inherited;
};

/// Checks the plan against every policy. `extra_labels`: keys added outside the Dockerfile (--label).
/// Images are those the build pulls: stage bases and COPY --from / RUN --mount from= images.
PlanVerdict EvaluatePlan(const std::vector<Policy>& policies, const dockerfile::Plan& plan,
                         const std::vector<std::string>& extra_labels);

/// bases.allow for a pending image, given the digest it resolved to ("sha256:…").
std::vector<Violation> EvaluateResolved(const std::vector<Policy>& policies, const PendingImage& image,
                                        const std::string& digest, const dockerfile::Source& source);

/// The inherited rules against the chain's base image's runtime config.
std::vector<Violation> EvaluateInherited(const std::vector<Policy>& policies, const InheritedCheck& check,
                                         const ContainerConfig& base, const dockerfile::Source& source);

/// image.max_size against the final image's compressed layer bytes; reported at the target's FROM.
std::vector<Violation> EvaluateImageSize(const std::vector<Policy>& policies, uint64_t layer_bytes,
                                         const dockerfile::Plan& plan);

/// OK when `violations` is empty; else kPolicyViolation listing each formatted violation.
Status Verdict(const std::vector<Violation>& violations, const std::vector<Policy>& policies);

/// "500m" → 524288000: bytes, or a number with k, m, g, t (powers of 1024, any case, optional "b").
Result<uint64_t> ParseSize(std::string_view s);

}  // namespace kiln::policy
