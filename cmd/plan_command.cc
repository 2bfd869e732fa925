// `kiln plan`: parse a Dockerfile, resolve build args, stages and --target, and print the plan as
// JSON, so a person can see what kiln understood before anything is built. No image is pulled: base
// image ONBUILD triggers show as "onbuild_pending".
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "core/io.h"
#include "executor/dockerfile/plan.h"

extern char** environ;

namespace kiln::cmd {
namespace {

struct PlanCommandOptions {
  std::string dockerfile;  // "" = CONTEXT/Dockerfile
  std::string context = ".";
  std::vector<std::string> build_args;
  std::string target;
  std::string custom_platform;
};

constexpr size_t kMaxDockerfileBytes = 16 << 20;

std::map<std::string, std::string> Environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

// Kaniko resolves a relative --dockerfile against the context when it is not found as given.
std::string DockerfilePath(const PlanCommandOptions& o) {
  if (o.dockerfile.empty()) return o.context + "/Dockerfile";
  if (o.dockerfile[0] == '/' || ::access(o.dockerfile.c_str(), F_OK) == 0) return o.dockerfile;
  std::string in_context = o.context + "/" + o.dockerfile;
  return ::access(in_context.c_str(), F_OK) == 0 ? in_context : o.dockerfile;
}

Result<std::string> ReadDockerfile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, OpenFileReader(path));
  return ReadAll(*r, kMaxDockerfileBytes);
}

int RunPlan(const PlanCommandOptions& o) {
  Result<dockerfile::BuildArgs> build_args = dockerfile::BuildArgs::FromFlags(o.build_args, Environment());
  if (!build_args.ok()) {
    std::cerr << "kiln plan: " << build_args.status().message() << "\n";
    return kExitUsage;
  }
  dockerfile::PlanOptions po;
  po.target = o.target;
  po.build_args = std::move(*build_args);
  po.build_platform = Platform::Host();
  po.target_platform = po.build_platform;
  if (!o.custom_platform.empty()) {
    Result<Platform> p = dockerfile::ParsePlatform(o.custom_platform);
    if (!p.ok()) {
      std::cerr << "kiln plan: --custom-platform: " << p.status().message() << "\n";
      return kExitUsage;
    }
    po.target_platform = *p;
  }

  std::string path = DockerfilePath(o);
  Result<std::string> text = ReadDockerfile(path);
  if (!text.ok()) {
    std::cerr << "kiln plan: reading the Dockerfile " << path << ": " << text.status().message() << "\n";
    return kExitFailure;
  }
  // Messages name the file as the user wrote it, "Dockerfile" by default, as docker build does.
  Result<dockerfile::Dockerfile> df = dockerfile::Parse(*text, o.dockerfile.empty() ? "Dockerfile" : o.dockerfile);
  if (!df.ok()) {
    std::cerr << df.status().message() << "\n";
    return kExitUsage;
  }
  Result<dockerfile::Plan> plan = dockerfile::BuildPlan(*df, po);
  if (!plan.ok()) {
    std::cerr << plan.status().message() << "\n";
    return kExitUsage;
  }
  for (const std::string& w : plan->warnings) std::cerr << "warning: " << w << "\n";
  if (!plan->unused_build_args.empty()) {
    std::string names;
    for (const std::string& n : plan->unused_build_args) names += (names.empty() ? "" : " ") + n;
    std::cerr << "[Warning] One or more build-args [" << names << "] were not consumed\n";
  }
  std::cout << dockerfile::PlanToJson(*plan) << "\n";
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
  sub->callback([opts, exit_code] { *exit_code = RunPlan(*opts); });
}

}  // namespace

KILN_REGISTER_COMMAND("plan", RegisterPlan);

}  // namespace kiln::cmd
