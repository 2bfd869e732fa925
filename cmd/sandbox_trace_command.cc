// `kiln sandbox-trace [--emulate=MACHINE=QEMU]... REPORT-FD ROOTFS WORKDIR ARGV...`: internal. The
// ptrace RUN sandbox (tier 3) execs kiln with this command for every step, so the tracer starts as a
// fresh single-threaded process with exactly the step's environment; it is not listed in --help.
// --emulate: a static qemu-user binary for programs of another machine (TraceSpec::emulators).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cmd/commands.h"
#include "executor/sandbox/ptrace_tracer.h"

namespace kiln::cmd {
namespace {

// Ends this process the way the step ended, so the sandbox's supervisor sees the same wait status.
[[noreturn]] void ExitLike(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit none = {0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // the step's core dump, if any, was its own
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::kill(::getpid(), sig);
  }
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
}

void RegisterSandboxTrace(CLI::App& app, int* exit_code) {
  CLI::App* sub = app.add_subcommand("sandbox-trace", "internal: run one RUN step in the ptrace sandbox");
  sub->group("");  // hidden
  sub->prefix_command();
  sub->callback([sub, exit_code] {
    std::vector<std::string> args = sub->remaining();
    sandbox::TraceSpec spec;
    // --emulate=aarch64=/usr/bin/qemu-aarch64-static: TraceSpec::emulators.
    const std::string flag = "--emulate=";
    while (!args.empty() && args[0].rfind(flag, 0) == 0) {
      std::string value = args[0].substr(flag.size());
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size() || value[eq + 1] != '/') {
        std::cerr << "kiln sandbox-trace: " << args[0] << ": want --emulate=MACHINE=/ABSOLUTE/QEMU\n";
        *exit_code = kExitUsage;
        return;
      }
      spec.emulators[value.substr(0, eq)] = value.substr(eq + 1);
      args.erase(args.begin());
    }
    if (args.size() < 4) {
      std::cerr << "kiln sandbox-trace: usage: kiln sandbox-trace [--emulate=MACHINE=QEMU]... REPORT-FD ROOTFS "
                   "WORKDIR ARGV...\n";
      *exit_code = kExitUsage;
      return;
    }
    spec.report_fd = args[0] == "-" ? -1 : std::atoi(args[0].c_str());
    spec.rootfs = args[1];
    spec.workdir = args[2];
    spec.argv.assign(args.begin() + 3, args.end());
    Result<int> status = sandbox::RunTraced(spec);
    if (!status.ok()) {
      std::cerr << "kiln: " << status.status().message() << "\n";
      ::_exit(125);
    }
    ExitLike(*status);
  });
}

}  // namespace

KILN_REGISTER_COMMAND("sandbox-trace", RegisterSandboxTrace);

}  // namespace kiln::cmd
