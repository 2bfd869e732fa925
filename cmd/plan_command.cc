// `kiln plan`: parse a Dockerfile, resolve build args, stages and --target, and print the plan as
// JSON, so a person can see what kiln understood before anything is built. No image is pulled: base
// image ONBUILD triggers show as "onbuild_pending". The same front end as `kiln build`
// (executor/pipeline/front_end.h), so the two cannot disagree.
#include <cctype>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "executor/dockerfile/args.h"
#include <nlohmann/json.hpp>

#include "executor/pipeline/contexts.h"
#include "executor/pipeline/front_end.h"
#include "executor/policy/policy.h"

extern char** environ;

namespace kiln::cmd {
namespace {

struct PlanCommandOptions {
  std::string dockerfile;  // "" = CONTEXT/Dockerfile
  std::string context = ".";
  std::vector<std::string> build_args;
  std::string target;
  std::string custom_platform;
  std::vector<std::string> policy_files;
  std::vector<std::string> build_contexts;  // NAME=VALUE, as `kiln build` takes them
};

std::map<std::string, std::string> Environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

int RunPlan(const PlanCommandOptions& o) {
  executor::FrontEndOptions fo;
  fo.dockerfile = o.dockerfile;
  fo.build_args = o.build_args;
  fo.environ = Environment();
  fo.target = o.target;
  if (!o.custom_platform.empty()) {
    Result<Platform> p = dockerfile::ParsePlatform(o.custom_platform);
    if (!p.ok()) {
      std::cerr << "kiln plan: --custom-platform: " << p.status().message() << "\n";
      return kExitUsage;
    }
    fo.platform = *p;
  }
  // Build args are checked first: a malformed one is a usage error whatever the Dockerfile says.
  if (Result<dockerfile::BuildArgs> args = dockerfile::BuildArgs::FromFlags(fo.build_args, fo.environ); !args.ok()) {
    std::cerr << "kiln plan: " << args.status().message() << "\n";
    return kExitUsage;
  }
  // Named contexts are classified, not fetched: the plan says which stage or --from each one stands for.
  std::vector<std::pair<std::string, std::string>> contexts;
  for (const std::string& bc : o.build_contexts) {
    size_t eq = bc.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == bc.size()) {
      std::cerr << "kiln plan: --build-context must be NAME=VALUE (a directory, docker-image://REF or a git URL), not \""
                << bc << "\"\n";
      return kExitUsage;
    }
    contexts.emplace_back(bc.substr(0, eq), bc.substr(eq + 1));
  }
  Result<std::map<std::string, std::string>> named = executor::PlanNamedContexts(contexts);
  if (!named.ok()) {
    std::cerr << "kiln plan: " << named.status().message() << "\n";
    return kExitUsage;
  }
  fo.named_contexts = *named;
  Result<std::vector<policy::Policy>> policies = policy::LoadPolicies(o.policy_files, fo.environ);
  if (!policies.ok()) {
    std::cerr << "kiln plan: " << policies.status().message() << "\n";
    return kExitUsage;
  }
  Result<executor::FrontEnd> fe = executor::LoadPlan(fo, o.context);
  if (!fe.ok()) {
    // Dockerfile errors carry file:line:column and are the user's to fix (usage); a file that cannot
    // be read is a failure.
    bool dockerfile_error = fe.status().code() == ErrorCode::kInvalidArgument ||
                            fe.status().code() == ErrorCode::kUnsupported;
    std::cerr << (dockerfile_error ? "" : "kiln plan: ") << fe.status().message() << "\n";
    return dockerfile_error ? kExitUsage : kExitFailure;
  }
  for (const std::string& w : fe->plan.warnings) std::cerr << "warning: " << w << "\n";
  for (const dockerfile::CheckFinding& c : fe->checks) std::cerr << "warning: " << c.formatted << "\n";
  if (!fe->plan.unused_build_args.empty()) {
    std::cerr << "[Warning] One or more build-args " << executor::UnusedBuildArgs(fe->plan) << " were not consumed\n";
  }
  if (contexts.empty()) {
    std::cout << dockerfile::PlanToJson(fe->plan) << "\n";
  } else {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(dockerfile::PlanToJson(fe->plan));
    nlohmann::ordered_json nc = nlohmann::ordered_json::object();
    for (const auto& [name, value] : contexts) {
      executor::NamedContextSource src = executor::ClassifyNamedContext(value);
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      nc[lower] = {{"kind", src.kind}, {"source", src.source}};
    }
    j["named_contexts"] = nc;
    std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  }
  if (!policies->empty()) {
    // Nothing is pulled here: digest-pinned allow patterns and image.max_size are checked by the build.
    policy::PlanVerdict verdict = policy::EvaluatePlan(*policies, fe->plan, {});
    if (Status s = policy::Verdict(verdict.violations, *policies); !s.ok()) {
      std::cerr << "kiln plan: " << s.message() << "\n";
      return kExitPolicy;
    }
    std::cerr << "kiln plan: the plan complies with its policy";
    if (!verdict.pending.empty()) {
      std::cerr << " (" << verdict.pending.size() << " image(s) match an allowed pattern only by digest, which "
                << "kiln build checks once it resolves them)";
    }
    if (verdict.inherited) {
      std::cerr << " (the USER or labels the image inherits from " << verdict.inherited->image
                << " are checked by kiln build on its config)";
    }
    std::cerr << "\n";
  }
  if (Status verdict = executor::ChecksVerdict(*fe); !verdict.ok()) {
    std::cerr << "kiln plan: " << verdict.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

void RegisterPlan(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<PlanCommandOptions>();
  CLI::App* sub = app.add_subcommand("plan", "Print what kiln understood of a Dockerfile: stages, args, instructions (JSON)");
  sub->add_option("-f,--dockerfile", opts->dockerfile, "Path to the Dockerfile (default: CONTEXT/Dockerfile)");
  sub->add_option("-c,--context", opts->context, "Build context directory (default: .)");
  sub->add_option("--build-arg", opts->build_args, "NAME=value, or NAME to take the value from the environment")
      ->take_all();
  sub->add_option("--target", opts->target, "Stage to build (default: the last one)");
  sub->add_option("--custom-platform", opts->custom_platform, "Target platform os/arch[/variant] (default: this machine)");
  sub->add_option("--policy", opts->policy_files,
                  "Check the plan against this policy file (YAML or JSON; adds to $KILN_POLICY; exit 3 on a violation)")
      ->allow_extra_args(false)->expected(1)->take_all();
  sub->add_option("--build-context", opts->build_contexts,
                  "Named context NAME=DIR, NAME=docker-image://REF or NAME=GIT-URL (repeatable; not fetched: the "
                  "plan shows what FROM NAME and --from=NAME read, and a stage of that name is replaced)")
      ->allow_extra_args(false)->expected(1)->take_all();
  sub->callback([opts, exit_code] { *exit_code = RunPlan(*opts); });
}

}  // namespace

KILN_REGISTER_COMMAND("plan", RegisterPlan);

}  // namespace kiln::cmd
