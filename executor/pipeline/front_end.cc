#include "executor/pipeline/front_end.h"

#include <sys/stat.h>

#include "core/io.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxDockerfileBytes = 16 << 20;

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

std::string ResolveDockerfilePath(const std::string& dockerfile, const std::string& context_root) {
  std::string df = dockerfile.empty() ? "Dockerfile" : dockerfile;
  if (df[0] == '/') return df;
  if (!context_root.empty() && FileExists(context_root + "/" + df)) return context_root + "/" + df;
  if (FileExists(df)) return df;
  return context_root.empty() ? df : context_root + "/" + df;
}

Result<FrontEnd> LoadPlan(const FrontEndOptions& options, const std::string& context_root) {
  FrontEnd fe;
  fe.dockerfile_path = ResolveDockerfilePath(options.dockerfile, context_root);
  Result<std::unique_ptr<Reader>> file = OpenFileReader(fe.dockerfile_path);
  if (!file.ok()) return file.status().WithContext("reading the Dockerfile " + fe.dockerfile_path);
  Result<std::string> text = ReadAll(**file, kMaxDockerfileBytes);
  if (!text.ok()) return text.status().WithContext("reading the Dockerfile " + fe.dockerfile_path);
  // Messages name the file as the user wrote it, "Dockerfile" by default, as docker build does.
  KILN_ASSIGN_OR_RETURN(fe.dockerfile, dockerfile::Parse(*text, options.dockerfile.empty() ? "Dockerfile" : options.dockerfile));
  KILN_ASSIGN_OR_RETURN(fe.build_args, dockerfile::BuildArgs::FromFlags(options.build_args, options.environ));
  fe.host = Platform::Host();
  fe.target = options.platform.value_or(fe.host);
  fe.plan_options.target = options.target;
  fe.plan_options.build_args = fe.build_args;
  fe.plan_options.target_platform = fe.target;
  fe.plan_options.build_platform = fe.host;
  fe.plan_options.named_contexts = options.named_contexts;
  KILN_ASSIGN_OR_RETURN(fe.plan, dockerfile::BuildPlan(fe.dockerfile, fe.plan_options));
  Result<dockerfile::CheckConfig> config = dockerfile::ParseCheckDirective(fe.dockerfile.directives.check);
  if (!config.ok()) return config.status().WithContext(options.dockerfile.empty() ? "Dockerfile" : options.dockerfile);
  fe.check_config = *config;
  fe.checks = dockerfile::RunChecks(fe.dockerfile, fe.check_config);
  return fe;
}

Status ChecksVerdict(const FrontEnd& fe) {
  if (!fe.check_config.error || fe.checks.empty()) return OkStatus();
  return FailedPrecondition(std::to_string(fe.checks.size()) + " build check" + (fe.checks.size() == 1 ? "" : "s") +
                            " failed (the Dockerfile's # check=error=true makes them errors)");
}

Status ReplanWithTriggers(FrontEnd& fe, dockerfile::PlanOptions::OnbuildTriggers triggers) {
  fe.plan_options.onbuild_triggers = std::move(triggers);
  KILN_ASSIGN_OR_RETURN(fe.plan, dockerfile::BuildPlan(fe.dockerfile, fe.plan_options));
  return OkStatus();
}

std::string UnusedBuildArgs(const dockerfile::Plan& plan) {
  std::string names;
  for (const std::string& u : plan.unused_build_args) names += (names.empty() ? "" : " ") + u;
  return "[" + names + "]";
}

}  // namespace kiln::executor
