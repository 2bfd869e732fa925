// A bare git repository made by a test with Debian's git (no network), filled from a work tree:
// end-to-end tests ADD it, or name it as a build context, by its file:// URL.
#pragma once

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {

// A bare repository NAME.git under `dir`, filled from a work tree by Commit().
class GitRepo {
 public:
  GitRepo(const std::string& dir, const std::string& name) : work_(dir + "/" + name + "-work"), bare_(dir + "/" + name + ".git") {
    EXPECT_EQ(Git("init -q -b main " + ShellQuote(work_)), 0);
    EXPECT_EQ(Git("-C " + ShellQuote(work_) + " config user.email t@example.test"), 0);
    EXPECT_EQ(Git("-C " + ShellQuote(work_) + " config user.name tester"), 0);
    EXPECT_EQ(Git("init -q --bare -b main " + ShellQuote(bare_)), 0);
    EXPECT_EQ(Git("-C " + ShellQuote(work_) + " remote add origin " + ShellQuote(bare_)), 0);
  }
  // Writes `files` (path → content; "-path" removes it), commits on `branch` and pushes; the commit.
  std::string Commit(const std::map<std::string, std::string>& files, const std::string& branch = "main") {
    std::string script = "set -e; cd " + ShellQuote(work_) + "; git checkout -q -B " + branch + ";";
    for (const auto& [path, content] : files) {
      if (path[0] == '-') {
        script += "git rm -q " + ShellQuote(path.substr(1)) + ";";
        continue;
      }
      script += "mkdir -p \"$(dirname " + ShellQuote(path) + ")\"; printf %s " + ShellQuote(content) + " > " +
                ShellQuote(path) + ";";
    }
    script += "git add -A; git commit -qm c" + std::to_string(++commits_) + "; git push -q -f origin " + branch + ";";
    EXPECT_EQ(RunShell(script), 0) << script;
    return Head();
  }
  void Shell(const std::string& commands) { EXPECT_EQ(RunShell("set -e; cd " + ShellQuote(work_) + "; " + commands), 0); }
  void Tag(const std::string& name, bool annotated) {
    Shell("git tag " + std::string(annotated ? "-a -m tag " : "") + name + "; git push -q origin " + name);
  }
  std::string Head() {
    std::string out;
    RunShell("git -C " + ShellQuote(work_) + " rev-parse HEAD", &out);
    return out.substr(0, 40);
  }
  std::string url() const { return "file://" + bare_; }
  const std::string& bare() const { return bare_; }

 private:
  static int Git(const std::string& args) { return RunShell("git " + args + " >/dev/null 2>&1"); }
  std::string work_, bare_;
  int commits_ = 0;
};

}  // namespace kiln::testing
