// `kiln completion` and `kiln man`, generated from the CLI's own definitions: the bash script is
// valid and completes commands and flags as bash calls it (COMP_WORDS/COMP_CWORD), also for the
// binary named `executor`; the man page renders with groff without warnings and lists the flags;
// --help shows Kaniko's flags in groups.
#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// What bash's completion function offers for `words` with the cursor on the last word.
std::string Complete(const std::string& script, const std::string& words) {
  std::string out;
  testing::RunShell("bash -c " + testing::ShellQuote("source " + script + "; COMP_WORDS=(" + words +
                                                     "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _kiln; "
                                                     "printf '%s\\n' \"${COMPREPLY[@]}\""),
                    &out);
  return out;
}

TEST(CompletionTest, BashCompletesCommandsAndFlags) {
  testing::TempDir t;
  std::string script = t.Sub("kiln.bash");
  ASSERT_EQ(testing::RunShell(std::string(KILN_BINARY) + " completion bash > " + script), 0);
  ASSERT_EQ(testing::RunShell("bash -n " + script), 0);
  EXPECT_TRUE(Has(Complete(script, "kiln bu"), "build\n"));
  EXPECT_TRUE(Has(Complete(script, "kiln lo"), "login\n"));
  std::string flags = Complete(script, "kiln build --registry-m");
  EXPECT_TRUE(Has(flags, "--registry-map\n")) << flags;
  EXPECT_TRUE(Has(flags, "--registry-mirror\n")) << flags;
  EXPECT_FALSE(Has(flags, "--context\n")) << flags;
  // As Kaniko's /kaniko/executor the first word is already a build flag.
  EXPECT_TRUE(Has(Complete(script, "/kaniko/executor --dest"), "--destination\n"));
  // The hidden internal command is not offered.
  EXPECT_FALSE(Has(Complete(script, "kiln sa"), "sandbox-trace"));
  for (const char* shell : {"zsh", "fish"}) {
    std::string out;
    EXPECT_EQ(testing::RunShell(std::string(KILN_BINARY) + " completion " + shell, &out), 0);
    EXPECT_TRUE(Has(out, "registry-map")) << shell;
  }
  EXPECT_NE(testing::RunShell(std::string(KILN_BINARY) + " completion tcsh 2>/dev/null"), 0);
}

TEST(CompletionTest, ManPageRendersWithoutWarningsAndListsTheFlags) {
  testing::TempDir t;
  ASSERT_EQ(testing::RunShell(std::string(KILN_BINARY) + " man > " + t.Sub("kiln.1")), 0);
  std::string warnings;
  ASSERT_EQ(testing::RunShell("groff -man -Tutf8 -ww -z " + t.Sub("kiln.1") + " 2>&1", &warnings), 0);
  EXPECT_EQ(warnings, "");
  std::string page;
  ASSERT_EQ(testing::RunShell("MANWIDTH=100 man -l " + t.Sub("kiln.1") + " 2>/dev/null | col -bx", &page), 0);
  EXPECT_TRUE(Has(page, "--registry-map")) << page.substr(0, 2000);
  EXPECT_TRUE(Has(page, "kiln login")) << page.substr(0, 2000);
  EXPECT_TRUE(Has(page, "Kaniko flags: Registry")) << page.substr(0, 2000);
  EXPECT_TRUE(Has(page, "EXIT STATUS"));
}

TEST(CompletionTest, HelpGroupsKanikoFlags) {
  std::string help;
  ASSERT_EQ(testing::RunShell(std::string(KILN_BINARY) + " build --help", &help), 0);
  for (const char* g : {"Kaniko flags: Build:", "Kaniko flags: Output:", "Kaniko flags: Registry:",
                        "Kaniko flags: Cache:", "Kaniko flags: Logging:", "kiln's own flags:",
                        "Kaniko flags kiln accepts but does not need:"}) {
    EXPECT_TRUE(Has(help, g)) << g << "\n" << help;
  }
  // Each group holds its flags: --cache-repo under Cache, --registry-map under Registry.
  EXPECT_LT(help.find("Kaniko flags: Registry:"), help.find("--registry-map"));
  EXPECT_LT(help.find("Kaniko flags: Cache:"), help.find("--cache-repo"));
}

}  // namespace
}  // namespace kiln
