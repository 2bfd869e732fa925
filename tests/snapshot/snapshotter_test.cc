#include "snapshot/snapshotter.h"

#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

TEST(SnapshotterTest, EachStepReportsOnlyItsOwnChanges) {
  TempDir tmp;
  std::string root = tmp.Sub("root");
  WriteFile(root + "/etc/os-release", "ID=test\n");
  WriteFile(root + "/proc/ignored", "x");
  auto snap = Snapshotter::Create(root, WalkOptions{DefaultIgnorePaths()});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_THAT(snap->baseline().Paths(), ElementsAre("etc", "etc/os-release"));

  WriteFile(root + "/usr/bin/hello", "#!/bin/sh\necho hi\n", 0755);  // step 1: RUN
  auto c1 = snap->Changes();
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  EXPECT_THAT(c1->added_or_modified, ElementsAre("usr", "usr/bin", "usr/bin/hello"));

  WriteFile(root + "/app/copied", "x");  // step 2: COPY, layer known to the executor
  ASSERT_TRUE(snap->Rebaseline().ok());

  ASSERT_EQ(::unlink((root + "/etc/os-release").c_str()), 0);  // step 3: RUN
  WriteFile(root + "/proc/more", "x");
  auto c3 = snap->Changes();
  ASSERT_TRUE(c3.ok());
  EXPECT_THAT(c3->added_or_modified, ElementsAre("etc"));
  EXPECT_THAT(c3->deleted, ElementsAre("etc/os-release"));

  auto c4 = snap->Changes();  // step 4: RUN true
  ASSERT_TRUE(c4.ok());
  EXPECT_TRUE(c4->empty());
}

TEST(SnapshotterTest, MissingRootfsIsAnError) {
  TempDir tmp;
  auto snap = Snapshotter::Create(tmp.Sub("nope"), {});
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(snap.status().message(), ::testing::HasSubstr(tmp.Sub("nope")));
}

}  // namespace
}  // namespace kiln::snapshot
