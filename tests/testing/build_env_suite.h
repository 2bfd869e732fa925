// The fixture most end-to-end tests of `kiln build` share: one BuildEnv (a local registry holding
// the busybox base, a state directory) for the whole suite, and every test skipped, with the reason,
// where those tests cannot run (not root, no Debian busybox-static). Header-only because it uses the
// including test target's KILN_BINARY.
//
// A suite that needs more (a second registry, say) overrides SetUpTestSuite / TearDownTestSuite and
// calls these first / last; `env_` is null when the suite is skipped.
#pragma once

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"

#ifndef KILN_BINARY
#error "build_env_suite.h needs the test target's KILN_BINARY"
#endif

namespace kiln::testing {

class BuildEnvSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveRoot() || !HaveBusyboxStatic()) return;
    env_ = new BuildEnv(KILN_BINARY);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (env_ == nullptr) GTEST_SKIP() << "needs root and Debian's busybox-static";
  }

  inline static BuildEnv* env_ = nullptr;
};

}  // namespace kiln::testing
