#include "executor/dockerfile/plan.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "executor/dockerfile/reference.h"

namespace kiln::dockerfile {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool AllDigits(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

class Planner {
 public:
  Planner(const Dockerfile& df, const PlanOptions& opts) : df_(df), opts_(opts), tracking_(opts.build_args) {}

  Result<Plan> Run() {
    plan_.escape = df_.directives.escape;
    plan_.syntax = df_.directives.syntax;
    plan_.check = df_.directives.check;
    plan_.source = df_.source;
    plan_.warnings = df_.warnings;
    KILN_RETURN_IF_ERROR(ResolveGlobals());
    const size_t n = df_.stages.size();
    for (size_t i = 0; i < n; ++i) {
      const auto& f = std::get<FromInst>(df_.stages[i].from.cmd);
      if (!f.stage_name.empty()) names_.emplace(f.stage_name, static_cast<int>(i));
    }
    stages_.resize(n);
    state_.assign(n, 0);
    env_.resize(n);
    int target = static_cast<int>(n) - 1;
    if (!opts_.target.empty()) {
      auto it = names_.find(Lower(opts_.target));
      if (it == names_.end()) {
        std::vector<std::string> all;
        for (const auto& [name, _] : names_) all.push_back(name);
        return df_.source.ErrorAt(Location{}, "failed to reach build target " + opts_.target + " in Dockerfile" +
                                                  DidYouMean(opts_.target, all, true));
      }
      target = it->second;
    }
    plan_.target = target;
    KILN_RETURN_IF_ERROR(Process(target));
    for (int i : order_) plan_.stages.push_back(std::move(stages_[i]));
    plan_.global_args = std::move(global_);
    for (const std::string& name : tracking_.Unused()) plan_.unused_build_args.push_back(name);
    return std::move(plan_);
  }

 private:
  Status ResolveGlobals() {
    for (size_t i = 0; i < df_.meta_args.size(); ++i) {
      std::vector<Instruction> prefix(df_.meta_args.begin(), df_.meta_args.begin() + i + 1);
      Result<GlobalArgs> g = ResolveGlobalArgs(prefix, tracking_, opts_.target_platform, opts_.build_platform, df_.directives.escape);
      if (!g.ok()) return df_.source.ErrorAt(df_.meta_args[i].loc, g.status().message());
      if (i + 1 == df_.meta_args.size()) global_ = std::move(*g);
    }
    if (df_.meta_args.empty()) global_.values = PlatformArgs(opts_.target_platform, opts_.build_platform);
    return OkStatus();
  }

  // Whether `name` is a named build context; if so, fills `ref` with what it stands for.
  bool NamedContext(const std::string& name, SourceRef* ref) const {
    auto it = opts_.named_contexts.find(Lower(name));
    if (it == opts_.named_contexts.end()) return false;
    ref->kind = it->second.empty() ? SourceRef::Kind::kContext : SourceRef::Kind::kImage;
    ref->image = it->second.empty() ? it->first : it->second;
    return true;
  }

  // What `name` in `--from=name` (on stage `self`) refers to.
  Result<SourceRef> ResolveFrom(const std::string& name, int self, const Instruction& inst, const std::string& what) {
    SourceRef ref;
    const int n = static_cast<int>(df_.stages.size());
    auto it = names_.find(Lower(name));
    if (it != names_.end() || AllDigits(name)) {
      int idx = it != names_.end() ? it->second : std::stoi(name);
      if (idx >= n) {
        return df_.source.ErrorAt(inst.loc, what + "=" + name + ": there is no stage with index " + name +
                                                " (the Dockerfile has " + std::to_string(n) + " stage" + (n == 1 ? "" : "s") + ")");
      }
      if (idx == self) return df_.source.ErrorAt(inst.loc, what + "=" + name + " refers to the stage it is used in");
      ref.kind = SourceRef::Kind::kStage;
      ref.stage = idx;
      return ref;
    }
    if (name.empty()) return df_.source.ErrorAt(inst.loc, what + " names nothing: the value is empty after expansion");
    if (NamedContext(name, &ref)) return ref;
    std::string why = CheckImageReference(name);
    if (!why.empty()) {
      std::vector<std::string> all;
      for (const auto& [nm, _] : names_) all.push_back(nm);
      return df_.source.ErrorAt(inst.loc, what + "=" + name + ": no stage has this name and it is not a valid image reference (" +
                                              why + ")" + DidYouMean(name, all, true));
    }
    // A valid image name that is one typo away from a stage name is legal (BuildKit pulls it), but
    // almost never meant: say so.
    std::vector<std::string> all;
    for (const auto& [nm, _] : names_) all.push_back(nm);
    std::string near = SuggestClosest(name, all, true);
    if (!near.empty() && name.find_first_of("/:@") == std::string::npos) {
      plan_.warnings.push_back(df_.source.Format(inst.loc, what + "=" + name + " names no stage, so it is read from the image " + name +
                                                               " (did you mean the stage " + near + "?)"));
    }
    ref.kind = SourceRef::Kind::kImage;
    ref.image = name;
    return ref;
  }

  Status Triggers(int i, PlannedStage* ps) {
    std::vector<std::string> exprs;
    std::string origin;
    if (ps->base.kind == SourceRef::Kind::kStage) {
      for (const Instruction& inst : df_.stages[ps->base.stage].commands) {
        if (const auto* ob = std::get_if<OnbuildInst>(&inst.cmd)) exprs.push_back(ob->expression);
      }
      origin = "ONBUILD trigger of stage " + std::to_string(ps->base.stage);
    } else if (ps->base.kind == SourceRef::Kind::kImage) {
      if (!opts_.onbuild_triggers) {
        ps->onbuild_pending = true;
        return OkStatus();
      }
      Result<std::vector<std::string>> got = opts_.onbuild_triggers(ps->base.image, ps->platform);
      if (!got.ok()) return got.status().WithContext("reading ONBUILD triggers of " + ps->base.image);
      exprs = std::move(*got);
      origin = "ONBUILD trigger of " + ps->base.image;
    }
    for (const std::string& e : exprs) {
      KILN_ASSIGN_OR_RETURN(Instruction inst, ParseTrigger(e, df_.directives.escape, origin));
      inst.loc = ps->loc;
      ps->instructions.push_back(std::move(inst));
    }
    return OkStatus();
  }

  Status Process(int i) {
    if (state_[i] == 2) return OkStatus();
    const ParsedStage& st = df_.stages[i];
    const auto& f = std::get<FromInst>(st.from.cmd);
    if (state_[i] == 1) {
      return df_.source.ErrorAt(st.from.loc, "circular dependency detected on stage: " +
                                                 (f.stage_name.empty() ? std::to_string(i) : f.stage_name));
    }
    state_[i] = 1;
    PlannedStage& ps = stages_[i];
    ps.index = i;
    ps.name = f.stage_name;
    ps.loc = st.from.loc;
    ps.original = st.from.original;
    const char esc = df_.directives.escape;

    std::set<std::string> used_globals;
    Result<std::string> image = ExpandWord(f.image, global_.values, esc, &used_globals);
    if (!image.ok()) return df_.source.ErrorAt(st.from.loc, image.status().message());
    if (image->empty()) return df_.source.ErrorAt(st.from.loc, "base name (" + f.image + ") should not be blank");
    ps.platform = opts_.target_platform;
    if (!f.platform.empty()) {
      Result<std::string> p = ExpandWord(f.platform, global_.values, esc);
      if (!p.ok()) return df_.source.ErrorAt(st.from.loc, p.status().message());
      Result<Platform> parsed = ParsePlatform(*p);
      if (!parsed.ok()) return df_.source.ErrorAt(st.from.loc, parsed.status().message());
      ps.platform = *parsed;
      ps.platform_set = true;
    }
    if (!f.stage_name.empty() && NamedContext(f.stage_name, &ps.base)) {
      // BuildKit: a named context of a stage's name replaces the whole stage (its FROM, its
      // instructions, its ONBUILD triggers); FROM and --from naming the stage read the context.
      ps.replaced_by_context = true;
      state_[i] = 2;
      order_.push_back(i);
      return OkStatus();
    }
    auto base_it = names_.find(Lower(*image));
    if (base_it != names_.end() && base_it->second < i) {
      ps.base.kind = SourceRef::Kind::kStage;
      ps.base.stage = base_it->second;
    } else if (NamedContext(*image, &ps.base)) {
      // --build-context NAME=...: an image in its place, or a directory as the stage's root.
    } else if (*image == "scratch") {
      ps.base.kind = SourceRef::Kind::kScratch;
    } else {
      std::string why = CheckImageReference(*image);
      if (!why.empty()) return df_.source.ErrorAt(st.from.loc, "base image \"" + *image + "\": " + why);
      ps.base.kind = SourceRef::Kind::kImage;
      ps.base.image = *image;
    }

    StageScope scope(&global_, &tracking_);
    std::set<int> deps;
    if (ps.base.kind == SourceRef::Kind::kStage) {
      KILN_RETURN_IF_ERROR(Process(ps.base.stage));
      scope.SeedEnv(env_[ps.base.stage]);
      deps.insert(ps.base.stage);
    }
    KILN_RETURN_IF_ERROR(Triggers(i, &ps));
    for (const Instruction& inst : st.commands) ps.instructions.push_back(inst);

    for (size_t k = 0; k < ps.instructions.size(); ++k) {
      const Instruction& inst = ps.instructions[k];
      auto fail = [&](const Status& s) { return df_.source.ErrorAt(inst.loc, s.message()); };
      if (const auto* a = std::get_if<ArgInst>(&inst.cmd)) {
        Status s = scope.ApplyArg(*a, esc);
        if (!s.ok()) return fail(s);
      } else if (const auto* e = std::get_if<EnvInst>(&inst.cmd)) {
        Status s = scope.ApplyEnv(*e, esc);
        if (!s.ok()) return fail(s);
      } else if (const auto* c = std::get_if<CopyInst>(&inst.cmd)) {
        if (c->from.empty()) continue;
        Result<std::string> name = ExpandWord(c->from, scope.ExpansionVars(), esc);
        if (!name.ok()) return fail(name.status());
        KILN_ASSIGN_OR_RETURN(SourceRef ref, ResolveFrom(*name, i, inst, "COPY --from"));
        ps.from_refs.push_back({k, *name, ref});
        if (ref.kind == SourceRef::Kind::kStage) deps.insert(ref.stage);
      } else if (const auto* r = std::get_if<RunInst>(&inst.cmd)) {
        for (const MountSpec& m : r->mounts) {
          if (m.from.empty()) continue;
          KILN_ASSIGN_OR_RETURN(SourceRef ref, ResolveFrom(m.from, i, inst, "RUN --mount from"));
          ps.from_refs.push_back({k, m.from, ref});
          if (ref.kind == SourceRef::Kind::kStage) deps.insert(ref.stage);
        }
      }
    }
    for (int d : deps) {
      if (d != ps.base.stage) KILN_RETURN_IF_ERROR(Process(d));
    }
    ps.depends_on.assign(deps.begin(), deps.end());
    env_[i] = scope.env();
    state_[i] = 2;
    order_.push_back(i);
    return OkStatus();
  }

  const Dockerfile& df_;
  const PlanOptions& opts_;
  BuildArgs tracking_;
  GlobalArgs global_;
  Plan plan_;
  std::map<std::string, int> names_;
  std::vector<PlannedStage> stages_;
  std::vector<int> state_;
  std::vector<Vars> env_;
  std::vector<int> order_;
};

}  // namespace

Result<Plan> BuildPlan(const Dockerfile& df, const PlanOptions& options) {
  Planner p(df, options);
  return p.Run();
}

}  // namespace kiln::dockerfile
