// Path components, joins, parents and ancestors (core/path.h).
#include "core/path.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln {
namespace {

std::vector<std::string> Components(std::string_view p) {
  std::vector<std::string> out;
  for (std::string_view c : PathComponents(p)) out.emplace_back(c);
  return out;
}

using V = std::vector<std::string>;

TEST(PathComponentsTest, NonEmptyComponentsInOrder) {
  EXPECT_EQ(Components("a/b/c"), (V{"a", "b", "c"}));
  EXPECT_EQ(Components("/a//b/"), (V{"a", "b"}));
  EXPECT_EQ(Components("///x"), (V{"x"}));
  EXPECT_EQ(Components("x"), (V{"x"}));
  EXPECT_EQ(Components(""), V{});
  EXPECT_EQ(Components("/"), V{});
  EXPECT_EQ(Components("////"), V{});
  // "." and ".." are components like any other: callers decide what they mean.
  EXPECT_EQ(Components("./a/../b/."), (V{".", "a", "..", "b", "."}));
  // Bytes, not characters: a component may hold anything but '/'.
  EXPECT_EQ(Components(std::string_view("a\0b/c", 5)), (V{std::string("a\0b", 3), "c"}));
}

TEST(PathComponentsTest, ViewsPointIntoThePathAndIteratorsCompare) {
  std::string path = "usr//lib";
  PathComponents parts(path);
  auto it = parts.begin();
  ASSERT_NE(it, parts.end());
  EXPECT_EQ((*it).data(), path.data());
  auto old = it++;
  EXPECT_EQ(*old, "usr");
  EXPECT_EQ(*it, "lib");
  EXPECT_EQ((*it).data(), path.data() + 5);
  ++it;
  EXPECT_EQ(it, parts.end());
  EXPECT_EQ(std::distance(parts.begin(), parts.end()), 2);
}

TEST(PathTest, JoinPath) {
  EXPECT_EQ(JoinPath("", "a"), "a");
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/b", "c.txt"), "a/b/c.txt");
  EXPECT_EQ(JoinPath("a", ""), "a/");
}

TEST(PathTest, SplitParent) {
  EXPECT_EQ(SplitParent("a/b/c"), (std::pair<std::string_view, std::string_view>{"a/b", "c"}));
  EXPECT_EQ(SplitParent("c"), (std::pair<std::string_view, std::string_view>{"", "c"}));
  EXPECT_EQ(SplitParent(""), (std::pair<std::string_view, std::string_view>{"", ""}));
  EXPECT_EQ(SplitParent("/c"), (std::pair<std::string_view, std::string_view>{"", "c"}));
}

TEST(PathTest, PathAncestorsShortestFirst) {
  using SV = std::vector<std::string_view>;
  EXPECT_EQ(PathAncestors("a/b/c"), (SV{"a", "a/b"}));
  EXPECT_EQ(PathAncestors("a"), SV{});
  EXPECT_EQ(PathAncestors(""), SV{});
  EXPECT_EQ(PathAncestors("/a/b"), (SV{"", "/a"}));  // a rooted path's first ancestor is the root, ""
}

}  // namespace
}  // namespace kiln
