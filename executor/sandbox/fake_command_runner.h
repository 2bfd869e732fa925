// FakeCommandRunner: a scripted CommandRunner for executor tests ("given this Dockerfile, exactly
// these commands ran, and the rootfs changed like this").
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "executor/sandbox/command_runner.h"

namespace kiln::sandbox {

/// A change the fake applies to spec.rootfs, as if the command had made it. Paths are relative to
/// the rootfs ("etc/motd" or "/etc/motd"); ".." components are refused.
struct FakeFileChange {
  enum class Kind { kWriteFile, kMkdir, kSymlink, kRemove };
  Kind kind = Kind::kWriteFile;
  std::string path;
  std::string content;  // file content (kWriteFile) or link target (kSymlink)
  int mode = 0644;      // kWriteFile and kMkdir

  static FakeFileChange Write(std::string path, std::string content, int mode = 0644);
  static FakeFileChange Mkdir(std::string path, int mode = 0755);
  static FakeFileChange Symlink(std::string path, std::string target);
  /// Removes a file, link or whole directory tree; removing a missing path is not an error.
  static FakeFileChange Remove(std::string path);
};

/// What one Run() call does.
struct FakeRun {
  Status error;            // when not OK, Run returns it (after recording the spec), nothing else
  int exit_code = 0;
  int signal = 0;          // non-zero: the "command" was killed by this signal
  std::string output;      // written to spec.output
  std::vector<FakeFileChange> changes;  // applied to spec.rootfs before returning
};

/// Records every spec it is given and plays scripted results in order; once the script is used up,
/// every run succeeds with no output and no changes. Not thread-safe.
class FakeCommandRunner : public CommandRunner {
 public:
  /// Appends a result to the script.
  void Push(FakeRun run) { script_.push_back(std::move(run)); }
  /// Every run whose argv ends in `command` plays `run` (not the script): for stages built at once,
  /// whose runs come in no fixed order.
  void On(std::string command, FakeRun run) { by_command_[std::move(command)] = std::move(run); }

  /// Validates the spec (ValidateRunSpec), records it, then plays the next scripted result. A change
  /// that cannot be applied fails the run with kIoError.
  Result<RunResult> Run(const RunSpec& spec) override;

  /// Every spec Run was called with, in order (their `output` pointers are cleared).
  const std::vector<RunSpec>& specs() const { return specs_; }
  /// Scripted results not consumed yet.
  size_t pending() const { return script_.size(); }

 private:
  std::deque<FakeRun> script_;
  std::map<std::string, FakeRun> by_command_;
  std::vector<RunSpec> specs_;
};

}  // namespace kiln::sandbox
