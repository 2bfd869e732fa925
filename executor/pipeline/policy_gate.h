// Where a build meets its policies (executor/policy/policy.h): on the plan before anything is pulled,
// on base images whose allow verdict needs their resolved digest, and on the final image's size
// before it is published. Each gate fails with kPolicyViolation listing every violation with its
// Dockerfile position; with no policy they do nothing.
#pragma once

#include <vector>

#include "core/status.h"
#include "executor/image/built_image.h"
#include "executor/image/image_fetcher.h"
#include "executor/log/build_log.h"
#include "executor/pipeline/front_end.h"
#include "executor/policy/policy.h"

namespace kiln::executor {

/// Checks the plan. On success returns the images still to check once resolved (CheckResolvedPolicy).
/// `extra_labels`: label keys set outside the Dockerfile (--label).
Result<std::vector<policy::PendingImage>> CheckPlanPolicy(const std::vector<policy::Policy>& policies,
                                                          const FrontEnd& front,
                                                          const std::vector<std::string>& extra_labels, BuildLog* log);

/// After a base image's ONBUILD triggers entered the plan (ReplanWithTriggers): the plan checks again,
/// so a trigger cannot bring in what the policy forbids. OK at once when no trigger was injected.
Status CheckOnbuildPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front,
                          const std::vector<std::string>& extra_labels, BuildLog* log);

/// Resolves each pending image (manifest and config only; results are cached by the fetcher) and
/// checks it against the digest it resolved to.
Status CheckResolvedPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front, ImageFetcher& fetcher,
                           const std::vector<policy::PendingImage>& pending, BuildLog* log);

/// The user and label rules the final image inherits from its base image (the Dockerfile sets no USER,
/// or not every required label): decided on that image's config, resolved through `fetcher` (after
/// the ONBUILD triggers entered the plan, since a trigger may set them).
Status CheckInheritedPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front, ImageFetcher& fetcher,
                            const std::vector<std::string>& extra_labels, BuildLog* log);

/// image.max_size against the assembled image's compressed layer bytes.
Status CheckImageSizePolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front,
                            const AssembledImage& image, BuildLog* log);

}  // namespace kiln::executor
