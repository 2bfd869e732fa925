#include "executor/sandbox/id_mapping.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

TEST(IdMappingTest, ParsesProcIdMaps) {
  auto m = ParseProcIdMap("         0          0 4294967295\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (std::vector<IdRange>{{0, 0, 4294967295u}}));
  auto two = ParseProcIdMap("0 1000 1\n1 100000 65536\n");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, (std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 65536}}));
  EXPECT_FALSE(ParseProcIdMap("0 zero 1\n").ok());
}

TEST(IdMappingTest, FindsSubordinateRangesByNameOrUid) {
  std::string subuid = "alice:100000:65536\nbob:165536:65536\n1234:231072:1000\nbroken:x:1\n";
  auto bob = FindSubordinateRange(subuid, "bob", 1001);
  ASSERT_TRUE(bob.has_value());
  EXPECT_EQ(bob->outside, 165536u);
  EXPECT_EQ(bob->count, 65536u);
  auto by_uid = FindSubordinateRange(subuid, "carol", 1234);
  ASSERT_TRUE(by_uid.has_value());
  EXPECT_EQ(by_uid->outside, 231072u);
  EXPECT_FALSE(FindSubordinateRange(subuid, "dave", 4321).has_value());
  EXPECT_FALSE(FindSubordinateRange(subuid, "broken", 9).has_value());
  EXPECT_FALSE(FindSubordinateRange("", "alice", 1000).has_value());
}

TEST(IdMappingTest, PlanMapsAndDescribes) {
  IdMapPlan p;
  p.kind = IdMapPlan::Kind::kSubordinate;
  p.uids = {{0, 1000, 1}, {1, 100000, 65536}};
  p.gids = {{0, 1000, 1}, {1, 100000, 65536}};
  EXPECT_TRUE(p.MapsUid(0));
  EXPECT_TRUE(p.MapsUid(65536));
  EXPECT_FALSE(p.MapsUid(65537));
  EXPECT_TRUE(p.setgroups_allowed());
  EXPECT_EQ(p.Describe(), "subordinate ids: uid 0→1000, 1-65536→100000-165535; gid 0→1000, 1-65536→100000-165535");

  IdMapPlan single = SingleIdMapping();
  EXPECT_EQ(single.kind, IdMapPlan::Kind::kSingle);
  EXPECT_TRUE(single.MapsUid(0));
  EXPECT_FALSE(single.MapsUid(1));
  EXPECT_FALSE(single.setgroups_allowed());
}

TEST(IdMappingTest, RootGetsTheIdentityOfItsOwnNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  IdMapPlan p = PlanIdMapping();
  EXPECT_EQ(p.kind, IdMapPlan::Kind::kIdentity);
  ASSERT_FALSE(p.uids.empty());
  for (const IdRange& r : p.uids) EXPECT_EQ(r.inside, r.outside);
  EXPECT_TRUE(p.MapsUid(1234));
}

}  // namespace
}  // namespace kiln::sandbox
