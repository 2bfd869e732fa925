#include "executor/sandbox/fake_command_runner.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <system_error>

namespace kiln::sandbox {
namespace fs = std::filesystem;

FakeFileChange FakeFileChange::Write(std::string path, std::string content, int mode) {
  return {Kind::kWriteFile, std::move(path), std::move(content), mode};
}
FakeFileChange FakeFileChange::Mkdir(std::string path, int mode) { return {Kind::kMkdir, std::move(path), "", mode}; }
FakeFileChange FakeFileChange::Symlink(std::string path, std::string target) {
  return {Kind::kSymlink, std::move(path), std::move(target), 0777};
}
FakeFileChange FakeFileChange::Remove(std::string path) { return {Kind::kRemove, std::move(path), "", 0}; }

namespace {

Status Apply(const std::string& rootfs, const FakeFileChange& c) {
  fs::path rel = fs::path(c.path).relative_path();
  for (const auto& part : rel) {
    if (part == "..") return InvalidArgument("fake change \"" + c.path + "\" leaves the rootfs");
  }
  if (rel.empty()) return InvalidArgument("fake change with an empty path");
  fs::path p = fs::path(rootfs) / rel;
  std::error_code ec;
  if (c.kind != FakeFileChange::Kind::kRemove) fs::create_directories(p.parent_path(), ec);
  if (ec) return IoError("fake change " + c.path + ": " + ec.message());
  switch (c.kind) {
    case FakeFileChange::Kind::kWriteFile: {
      std::ofstream f(p, std::ios::binary | std::ios::trunc);
      f << c.content;
      f.close();
      if (!f) return IoError("fake change: writing " + c.path + " failed");
      fs::permissions(p, static_cast<fs::perms>(c.mode), ec);
      break;
    }
    case FakeFileChange::Kind::kMkdir:
      fs::create_directory(p, ec);
      if (!ec) fs::permissions(p, static_cast<fs::perms>(c.mode), ec);
      break;
    case FakeFileChange::Kind::kSymlink:
      fs::remove(p, ec);
      ec.clear();
      fs::create_symlink(c.content, p, ec);
      break;
    case FakeFileChange::Kind::kRemove:
      fs::remove_all(p, ec);
      break;
  }
  if (ec) return IoError("fake change " + c.path + ": " + ec.message());
  return OkStatus();
}

}  // namespace

Result<RunResult> FakeCommandRunner::Run(const RunSpec& spec) {
  KILN_RETURN_IF_ERROR(ValidateRunSpec(spec));
  RunSpec recorded = spec;
  recorded.output = nullptr;
  specs_.push_back(std::move(recorded));

  FakeRun run;
  if (auto it = by_command_.find(spec.argv.back()); it != by_command_.end()) {
    run = it->second;
  } else if (!script_.empty()) {
    run = std::move(script_.front());
    script_.pop_front();
  }
  if (!run.error.ok()) return run.error;
  if (spec.output != nullptr && !run.output.empty()) {
    KILN_RETURN_IF_ERROR(spec.output->Write(run.output).WithContext("writing RUN output"));
  }
  for (const FakeFileChange& c : run.changes) KILN_RETURN_IF_ERROR(Apply(spec.rootfs, c));
  RunResult result;
  result.signal = run.signal;
  result.exit_code = run.signal != 0 ? 128 + run.signal : run.exit_code;
  return result;
}

}  // namespace kiln::sandbox
