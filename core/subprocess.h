// Running a helper program to completion and capturing what it prints: the one way kiln runs the
// programs it relies on outside the RUN sandbox (git, docker credential helpers, newuidmap).
//
//   SubprocessSpec spec;
//   spec.argv = {"git", "ls-remote", url};
//   KILN_ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(spec));
//   if (!r.Succeeded()) return FailedPrecondition("git ls-remote failed (" + r.Why() + "): " + r.err);
//
// The child gets `input` on its standard input (then end of file; /dev/null when empty) and pipes
// for its standard output and error, both read at once so neither can fill and block it. Only the
// first `max_output` bytes of each are kept; the child is still read to the end. Every descriptor
// kiln opens is close-on-exec, so the child inherits nothing else.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln {

struct SubprocessSpec {
  /// argv[0] is the program: looked up in PATH unless it contains a '/'. Must not be empty.
  std::vector<std::string> argv;
  /// The child's whole environment ("NAME=value"); unset: kiln's own.
  std::optional<std::vector<std::string>> env;
  /// Written to the child's standard input, which is then closed. A child that does not read it
  /// is not waited for (the rest is dropped).
  std::string input;
  /// Standard error goes into `out` too, in the order written (one pipe for both).
  bool merge_stderr = false;
  /// Bytes kept of each stream.
  size_t max_output = size_t{1} << 20;
  /// When the child is still running after this long, it is killed (SIGKILL) and RunSubprocess
  /// fails with kUnavailable. Zero: no limit.
  std::chrono::milliseconds timeout{0};
};

struct SubprocessResult {
  std::string out;      ///< standard output (and error, with merge_stderr)
  std::string err;      ///< standard error
  int wait_status = 0;  ///< as waitpid(2) gave it

  /// Exited with status 0.
  bool Succeeded() const;
  /// "exit status N" or "killed by signal N", for messages.
  std::string Why() const;
};

/// Runs the program to completion. Fails only when it cannot be started (kNotFound when the program
/// does not exist or is not on PATH, naming it) or ran past spec.timeout (kUnavailable); a program
/// that ran and failed is a result, for the caller to judge.
Result<SubprocessResult> RunSubprocess(const SubprocessSpec& spec);

}  // namespace kiln
