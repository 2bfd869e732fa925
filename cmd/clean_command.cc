// `kiln clean`: removes the work directories that killed builds left in the state directory (a build
// removes its own at the end; SIGKILL leaves it), and those kept by --keep-work. Directories of running builds are left alone (see
// executor/work_dirs.h). An unprivileged kiln removes them from inside a user namespace, where the
// files a rootless RUN step made belong to ids it controls.
#include <cstdlib>
#include <iostream>
#include <memory>

#include "cmd/commands.h"
#include "executor/pipeline/build.h"
#include "executor/sandbox/build_namespace.h"
#include "executor/sandbox/tier_detection.h"
#include "executor/pipeline/work_dirs.h"

namespace kiln::cmd {
namespace {

int Clean(const std::string& state) {
  Result<executor::CleanReport> r = executor::RemoveStaleWorkDirs(state, /*include_kept=*/true);
  if (!r.ok()) {
    std::cerr << "kiln clean: " << r.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << "removed " << r->removed << " stale work director" << (r->removed == 1 ? "y" : "ies") << " in "
            << state << "/work";
  if (r->in_use > 0) std::cout << "; " << r->in_use << " in use by running builds kept";
  std::cout << "\n";
  return kExitOk;
}

int RunClean(const std::string& state_flag) {
  executor::BuildOptions o;
  o.state_dir = state_flag;
  for (const char* k : {"KILN_DIR", "XDG_CACHE_HOME", "HOME"}) {
    if (const char* v = std::getenv(k)) o.environ[k] = v;
  }
  std::string state = executor::ResolveStateDir(o);
  if (::geteuid() == 0) return Clean(state);
  sandbox::UserNamespaceProbe probe = sandbox::ProbeUserNamespace();
  if (!probe.problem.empty()) return Clean(state);  // ptrace-tier builds leave only the user's own files
  Result<int> rc = sandbox::RunInUserNamespace(probe.id_mapping, [&] { return Clean(state); });
  if (!rc.ok()) {
    std::cerr << "kiln clean: " << rc.status().message() << "\n";
    return kExitFailure;
  }
  return *rc;
}

void RegisterClean(CLI::App& app, int* exit_code) {
  CLI::App* sub = app.add_subcommand("clean", "Remove work directories left in the state directory by killed builds (and by --keep-work)");
  auto state = std::make_shared<std::string>();
  sub->add_option("--state-dir", *state, "kiln's state directory (default as for kiln build)");
  sub->add_option("--kaniko-dir", *state, "Same as --state-dir");
  sub->callback([state, exit_code] { *exit_code = RunClean(*state); });
}

}  // namespace

KILN_REGISTER_COMMAND("clean", RegisterClean);

}  // namespace kiln::cmd
