// Evaluating policies on a stage plan, on resolved base digests and on the final image's size.
#include <algorithm>
#include <cctype>

#include "core/reference.h"
#include "executor/policy/policy.h"

namespace kiln::policy {
namespace {

using dockerfile::Instruction;
using dockerfile::Location;
using dockerfile::Plan;
using dockerfile::PlannedStage;
using dockerfile::SourceRef;

class Collector {
 public:
  Collector(const std::vector<Policy>& policies, const dockerfile::Source& source)
      : policies_(policies), source_(source) {}

  void Add(size_t policy, std::string rule, std::string message, const Location& loc) {
    Violation v;
    v.rule = std::move(rule);
    v.message = std::move(message);
    v.loc = loc;
    std::string text = "policy " + v.rule + ": " + v.message;
    // With several policies in force, say which one a rule comes from.
    if (policies_.size() > 1) text += " [" + policies_[policy].origin + "]";
    v.formatted = source_.Format(loc, text);
    out_.push_back(std::move(v));
  }
  std::vector<Violation>& violations() { return out_; }

 private:
  const std::vector<Policy>& policies_;
  const dockerfile::Source& source_;
  std::vector<Violation> out_;
};

// The spellings of a reference a bases.allow pattern is matched against: the name alone, with its
// tag, with its digest, with both. "busybox" is docker.io/library/busybox.
std::vector<std::string> Spellings(const Reference& r, const std::string& digest) {
  std::vector<std::string> out = {r.Name()};
  if (!r.tag().empty()) out.push_back(r.Name() + ":" + r.tag());
  if (!digest.empty()) {
    out.push_back(r.Name() + "@" + digest);
    if (!r.tag().empty()) out.push_back(r.Name() + ":" + r.tag() + "@" + digest);
  }
  return out;
}

bool AnyMatch(const std::vector<Pattern>& patterns, const std::vector<std::string>& spellings) {
  for (const Pattern& p : patterns) {
    for (const std::string& s : spellings) {
      if (p.Match(s)) return true;
    }
  }
  return false;
}

std::string PatternList(const std::vector<Pattern>& patterns) {
  std::string out;
  for (const Pattern& p : patterns) out += (out.empty() ? "" : ", ") + p.text;
  return out;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) s = s.substr(1, s.size() - 2);
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One image the build pulls, with where it is named.
struct PulledImage {
  std::string image;
  Platform platform;
  Location loc;
  std::string what;
};

std::vector<PulledImage> PulledImages(const Plan& plan) {
  std::vector<PulledImage> out;
  for (const PlannedStage& s : plan.stages) {
    if (s.base.kind == SourceRef::Kind::kImage) out.push_back({s.base.image, s.platform, s.loc, "FROM " + s.base.image});
    for (const dockerfile::FromRef& f : s.from_refs) {
      if (f.ref.kind != SourceRef::Kind::kImage || f.instruction >= s.instructions.size()) continue;
      const Instruction& inst = s.instructions[f.instruction];
      std::string what = inst.keyword == "RUN" ? "RUN --mount from=" + f.name : inst.keyword + " --from=" + f.name;
      out.push_back({f.ref.image, s.platform, inst.loc, what});
    }
  }
  return out;
}

bool PatternsNameDigest(const std::vector<Pattern>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(), [](const Pattern& p) { return p.text.find('@') != std::string::npos; });
}

void CheckImage(const Policy& p, size_t pi, const PulledImage& img, Collector& c, std::vector<PendingImage>& pending) {
  Result<Reference> ref = Reference::Parse(img.image);
  if (!ref.ok()) return;  // the plan already rejects an invalid reference
  std::string digest = ref->digest() ? ref->digest()->ToString() : "";
  if (!p.bases.allow.empty() && !AnyMatch(p.bases.allow, Spellings(*ref, digest))) {
    if (digest.empty() && PatternsNameDigest(p.bases.allow)) {
      pending.push_back({img.image, img.platform, img.loc, img.what, pi});
    } else {
      c.Add(pi, "bases.allow", img.what + ": " + ref->ToString() + " is not an allowed image (allowed: " +
                                   PatternList(p.bases.allow) + ")", img.loc);
    }
  }
  // No tag and no digest pulls "latest": that is the tag the rules see.
  std::string tag = ref->tag().empty() && digest.empty() ? "latest" : ref->tag();
  bool implicit = ref->tag().empty() && digest.empty();
  if (!tag.empty()) {
    for (const Pattern& f : p.bases.forbid_tags) {
      if (!f.Match(tag)) continue;
      c.Add(pi, "bases.forbid_tags",
            img.what + (implicit ? " has no tag, so it pulls latest, a forbidden tag" : " uses the forbidden tag " + tag) +
                " (forbidden: " + PatternList(p.bases.forbid_tags) + ")",
            img.loc);
      break;
    }
    if (!p.bases.allow_tags.empty() && !std::any_of(p.bases.allow_tags.begin(), p.bases.allow_tags.end(),
                                                    [&](const Pattern& a) { return a.Match(tag); })) {
      c.Add(pi, "bases.allow_tags",
            img.what + (implicit ? " has no tag (so latest)" : " uses the tag " + tag) +
                ", which is not allowed (allowed: " + PatternList(p.bases.allow_tags) + ")",
            img.loc);
    }
  }
  if (p.bases.require_digest && digest.empty()) {
    c.Add(pi, "bases.require_digest", img.what + " is not pinned by digest (write " + ref->Name() +
                                          (ref->tag().empty() ? "" : ":" + ref->tag()) + "@sha256:…)",
          img.loc);
  }
}

const PlannedStage* StageByIndex(const Plan& plan, int index) {
  for (const PlannedStage& s : plan.stages) {
    if (s.index == index) return &s;
  }
  return nullptr;
}

// The stages whose instructions the final image inherits: the target, then what it is built FROM.
std::vector<const PlannedStage*> FinalChain(const Plan& plan) {
  std::vector<const PlannedStage*> chain;
  const PlannedStage* s = plan.stages.empty() ? nullptr : &plan.stages.back();
  while (s != nullptr && chain.size() <= plan.stages.size()) {
    chain.push_back(s);
    s = s->base.kind == SourceRef::Kind::kStage ? StageByIndex(plan, s->base.stage) : nullptr;
  }
  return chain;
}

// The chain's base image when the final image inherits from one (not scratch, not a named context
// that is a directory), with its FROM.
const PlannedStage* InheritingRoot(const Plan& plan) {
  std::vector<const PlannedStage*> chain = FinalChain(plan);
  if (chain.empty()) return nullptr;
  const PlannedStage* root = chain.back();
  return root->base.kind == SourceRef::Kind::kImage ? root : nullptr;
}

InheritedCheck::Rules& RulesFor(InheritedCheck& check, size_t pi) {
  for (InheritedCheck::Rules& r : check.rules) {
    if (r.policy == pi) return r;
  }
  check.rules.push_back({pi, false, {}});
  return check.rules.back();
}

void StartInherited(const PlannedStage& root, std::optional<InheritedCheck>& inherited) {
  if (inherited) return;
  inherited.emplace();
  inherited->image = root.base.image;
  inherited->platform = root.platform;
  inherited->loc = root.loc;
}

// `value` is a USER value ("app", "1000:1000"); `what` says whose it is, for the message.
void CheckUserValue(const Policy& p, size_t pi, const std::string& value, const std::string& what,
                    const Location& loc, Collector& c) {
  std::string name = value.substr(0, value.find(':'));
  if (p.user.require_non_root) {
    bool root = name.empty() || name == "root" || std::all_of(name.begin(), name.end(), [](char ch) {
                  return ch == '0';
                });
    if (root) {
      c.Add(pi, "user.require_non_root",
            value.empty() ? what + " no USER, so the image runs as root; add USER with a non-root user"
                          : what + " " + value + " runs the image as root",
            loc);
    }
  }
  if (!p.user.allow.empty() && std::find(p.user.allow.begin(), p.user.allow.end(), name) == p.user.allow.end() &&
      std::find(p.user.allow.begin(), p.user.allow.end(), value) == p.user.allow.end()) {
    std::string l;
    for (const std::string& u : p.user.allow) l += (l.empty() ? "" : ", ") + u;
    c.Add(pi, "user.allow",
          (value.empty() ? what + " no USER" : what + " " + value + " is not an allowed user") + " (allowed: " + l + ")",
          loc);
  }
}

void CheckUser(const Policy& p, size_t pi, const Plan& plan, Collector& c, std::optional<InheritedCheck>& inherited) {
  if (!p.user.require_non_root && p.user.allow.empty()) return;
  const Instruction* user = nullptr;
  for (const PlannedStage* s : FinalChain(plan)) {
    for (const Instruction& inst : s->instructions) {
      if (std::holds_alternative<dockerfile::UserInst>(inst.cmd)) user = &inst;
    }
    if (user != nullptr) break;
  }
  if (user == nullptr) {
    // No USER in the Dockerfile: the image runs as its base image's user, decided once it is resolved.
    if (const PlannedStage* root = InheritingRoot(plan)) {
      StartInherited(*root, inherited);
      RulesFor(*inherited, pi).user = true;
      return;
    }
    CheckUserValue(p, pi, "", "the final stage is built FROM scratch and sets", plan.stages.back().loc, c);
    return;
  }
  std::string value = std::get<dockerfile::UserInst>(user->cmd).user;
  if (value.find('$') != std::string::npos) {
    c.Add(pi, p.user.require_non_root ? "user.require_non_root" : "user.allow",
          "USER " + value + " uses a variable, so the user cannot be checked before the build; write it literally",
          user->loc);
    return;
  }
  CheckUserValue(p, pi, value, "USER", user->loc, c);
}

void CheckLabels(const Policy& p, size_t pi, const Plan& plan, const std::vector<std::string>& extra, Collector& c,
                 std::optional<InheritedCheck>& inherited) {
  if (p.required_labels.empty()) return;
  std::vector<std::string> have = extra;
  for (const PlannedStage* s : FinalChain(plan)) {
    for (const Instruction& inst : s->instructions) {
      if (const auto* l = std::get_if<dockerfile::LabelInst>(&inst.cmd)) {
        for (const dockerfile::KeyValue& kv : l->labels) have.push_back(Unquote(kv.key));
      }
    }
  }
  const PlannedStage* root = InheritingRoot(plan);
  for (const std::string& want : p.required_labels) {
    if (std::find(have.begin(), have.end(), want) != have.end()) continue;
    if (root != nullptr) {  // the base image may carry it
      StartInherited(*root, inherited);
      RulesFor(*inherited, pi).labels.push_back(want);
      continue;
    }
    c.Add(pi, "labels.required", "the image has no label " + want + " (set it with LABEL in the final stage or --label)",
          plan.stages.back().loc);
  }
}

void CheckInstructions(const Policy& p, size_t pi, const Plan& plan, Collector& c) {
  for (const PlannedStage& s : plan.stages) {
    for (const Instruction& inst : s.instructions) {
      if (const auto* add = std::get_if<dockerfile::AddInst>(&inst.cmd); add && p.add_require_checksum) {
        for (const std::string& src : add->sources) {
          std::string l = Lower(src);
          if ((l.rfind("http://", 0) == 0 || l.rfind("https://", 0) == 0) && add->checksum.empty()) {
            c.Add(pi, "add.require_checksum", "ADD of the URL " + src + " has no --checksum=sha256:…", inst.loc);
          }
        }
      }
      const auto* run = std::get_if<dockerfile::RunInst>(&inst.cmd);
      if (run == nullptr || !p.mounts_allow) continue;
      for (const dockerfile::MountSpec& m : run->mounts) {
        std::string type = "bind";  // Docker's default
        for (const dockerfile::MountField& f : m.fields) {
          if (f.key == "type" && f.has_value) type = Lower(f.value);
        }
        if (std::find(p.mounts_allow->begin(), p.mounts_allow->end(), type) != p.mounts_allow->end()) continue;
        std::string l;
        for (const std::string& t : *p.mounts_allow) l += (l.empty() ? "" : ", ") + t;
        c.Add(pi, "mounts.allow", "RUN --mount=" + m.raw + ": mount type " + type + " is not allowed (allowed: " +
                                      (l.empty() ? "none" : l) + ")",
              inst.loc);
      }
    }
  }
}

}  // namespace

PlanVerdict EvaluatePlan(const std::vector<Policy>& policies, const Plan& plan,
                         const std::vector<std::string>& extra_labels) {
  PlanVerdict out;
  if (plan.stages.empty()) return out;
  Collector c(policies, plan.source);
  std::vector<PulledImage> images = PulledImages(plan);
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    const Policy& p = policies[pi];
    for (const PulledImage& img : images) CheckImage(p, pi, img, c, out.pending);
    CheckUser(p, pi, plan, c, out.inherited);
    CheckLabels(p, pi, plan, extra_labels, c, out.inherited);
    CheckInstructions(p, pi, plan, c);
  }
  out.violations = std::move(c.violations());
  // In Dockerfile order, so the list reads top to bottom.
  std::stable_sort(out.violations.begin(), out.violations.end(), [](const Violation& a, const Violation& b) {
    return a.loc.line != b.loc.line ? a.loc.line < b.loc.line : a.loc.column < b.loc.column;
  });
  return out;
}

std::vector<Violation> EvaluateResolved(const std::vector<Policy>& policies, const PendingImage& image,
                                        const std::string& digest, const dockerfile::Source& source) {
  Collector c(policies, source);
  Result<Reference> ref = Reference::Parse(image.image);
  if (!ref.ok() || image.policy >= policies.size()) return {};
  const Policy& p = policies[image.policy];
  if (!AnyMatch(p.bases.allow, Spellings(*ref, digest))) {
    c.Add(image.policy, "bases.allow", image.what + ": " + ref->ToString() + " resolved to " + digest +
                                           ", which is not an allowed image (allowed: " + PatternList(p.bases.allow) + ")",
          image.loc);
  }
  return std::move(c.violations());
}

std::vector<Violation> EvaluateInherited(const std::vector<Policy>& policies, const InheritedCheck& check,
                                         const ContainerConfig& base, const dockerfile::Source& source) {
  Collector c(policies, source);
  std::string what = "FROM " + check.image + ": the final stage sets no USER and the base image's";
  for (const InheritedCheck::Rules& r : check.rules) {
    if (r.policy >= policies.size()) continue;
    const Policy& p = policies[r.policy];
    if (r.user) {
      CheckUserValue(p, r.policy, base.user,
                     base.user.empty() ? "FROM " + check.image + ": the final stage and its base image set"
                                       : what + " USER",
                     check.loc, c);
    }
    for (const std::string& want : r.labels) {
      if (base.labels.count(want)) continue;
      c.Add(r.policy, "labels.required", "the image has no label " + want + ": neither the Dockerfile, --label nor the base image " +
                                             check.image + " sets it (set it with LABEL in the final stage or --label)",
            check.loc);
    }
  }
  return std::move(c.violations());
}

std::vector<Violation> EvaluateImageSize(const std::vector<Policy>& policies, uint64_t layer_bytes, const Plan& plan) {
  Collector c(policies, plan.source);
  Location loc = plan.stages.empty() ? Location{} : plan.stages.back().loc;
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    const std::optional<uint64_t>& max = policies[pi].max_image_bytes;
    if (!max || layer_bytes <= *max) continue;
    c.Add(pi, "image.max_size", "the image's layers are " + std::to_string(layer_bytes) + " bytes compressed, over the " +
                                    std::to_string(*max) + " allowed",
          loc);
  }
  return std::move(c.violations());
}

Status Verdict(const std::vector<Violation>& violations, const std::vector<Policy>& policies) {
  if (violations.empty()) return OkStatus();
  std::string origins;
  for (const Policy& p : policies) origins += (origins.empty() ? "" : ", ") + p.origin;
  std::string m = "the build breaks its policy (" + origins + "): " + std::to_string(violations.size()) + " violation" +
                  (violations.size() == 1 ? "" : "s");
  for (const Violation& v : violations) m += "\n" + v.formatted;
  return PolicyViolation(m);
}

}  // namespace kiln::policy
