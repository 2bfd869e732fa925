#include "executor/pipeline/policy_gate.h"


namespace kiln::executor {
namespace {

std::string Origins(const std::vector<policy::Policy>& policies) {
  std::string out;
  for (const policy::Policy& p : policies) out += (out.empty() ? "" : ", ") + p.origin;
  return out;
}

}  // namespace

Result<std::vector<policy::PendingImage>> CheckPlanPolicy(const std::vector<policy::Policy>& policies,
                                                          const FrontEnd& front,
                                                          const std::vector<std::string>& extra_labels, BuildLog* log) {
  if (policies.empty()) return std::vector<policy::PendingImage>{};
  policy::PlanVerdict v = policy::EvaluatePlan(policies, front.plan, extra_labels);
  KILN_RETURN_IF_ERROR(policy::Verdict(v.violations, policies));
  log->Info("policy " + Origins(policies) + ": the plan complies" +
            (v.pending.empty() ? std::string()
                               : "; " + std::to_string(v.pending.size()) + " image(s) checked again once resolved"));
  return v.pending;
}

Status CheckOnbuildPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front,
                          const std::vector<std::string>& extra_labels, BuildLog* log) {
  bool injected = false;
  for (const dockerfile::PlannedStage& s : front.plan.stages) {
    for (const dockerfile::Instruction& i : s.instructions) injected = injected || i.from_onbuild;
  }
  if (policies.empty() || !injected) return OkStatus();
  policy::PlanVerdict v = policy::EvaluatePlan(policies, front.plan, extra_labels);
  return policy::Verdict(v.violations, policies);
}

Status CheckResolvedPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front, ImageFetcher& fetcher,
                           const std::vector<policy::PendingImage>& pending, BuildLog* log) {
  std::vector<policy::Violation> violations;
  for (const policy::PendingImage& p : pending) {
    Result<std::shared_ptr<const SourceImage>> img = fetcher.Resolve(p.image, p.platform);
    if (!img.ok()) {
      return img.status().WithMessage(
          front.plan.source.Format(p.loc, "resolving " + p.image + " for the policy: " + img.status().message()));
    }
    std::string digest = (*img)->manifest_raw.digest.ToString();
    for (policy::Violation& v : policy::EvaluateResolved(policies, p, digest, front.plan.source)) {
      violations.push_back(std::move(v));
    }
  }
  return policy::Verdict(violations, policies);
}

Status CheckInheritedPolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front, ImageFetcher& fetcher,
                            const std::vector<std::string>& extra_labels, BuildLog* log) {
  if (policies.empty()) return OkStatus();
  policy::PlanVerdict v = policy::EvaluatePlan(policies, front.plan, extra_labels);
  if (!v.inherited) return OkStatus();
  const policy::InheritedCheck& check = *v.inherited;
  Result<std::shared_ptr<const SourceImage>> img = fetcher.Resolve(check.image, check.platform);
  if (!img.ok()) {
    return img.status().WithMessage(
        front.plan.source.Format(check.loc, "resolving " + check.image + " for the policy: " + img.status().message()));
  }
  KILN_RETURN_IF_ERROR(policy::Verdict(
      policy::EvaluateInherited(policies, check, (*img)->config.config, front.plan.source), policies));
  log->Info("policy " + Origins(policies) + ": what the image inherits from " + check.image +
            " (its USER, labels) complies");
  return OkStatus();
}

Status CheckImageSizePolicy(const std::vector<policy::Policy>& policies, const FrontEnd& front,
                            const AssembledImage& image, BuildLog* log) {
  if (policies.empty()) return OkStatus();
  uint64_t bytes = 0;
  for (const ImageLayer& l : image.layers) bytes += static_cast<uint64_t>(l.desc.size);
  KILN_RETURN_IF_ERROR(policy::Verdict(policy::EvaluateImageSize(policies, bytes, front.plan), policies));
  return OkStatus();
}

}  // namespace kiln::executor
