#include "layers/rootless.h"

#include <gtest/gtest.h>

namespace kiln::layers {
namespace {

TEST(RootlessTest, RoundTrip) {
  for (RootlessOwner o : {RootlessOwner{0, 0}, RootlessOwner{1000, 1000}, RootlessOwner{65534, 0},
                          RootlessOwner{0, 4294967294u}}) {
    auto d = DecodeRootlessOwner(EncodeRootlessOwner(o));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, o);
  }
}

TEST(RootlessTest, MatchesProtobufWireFormat) {
  // uid=1000 gid=33: 08 e8 07 10 21, as protoc encodes it.
  EXPECT_EQ(EncodeRootlessOwner({1000, 33}), std::string("\x08\xe8\x07\x10\x21", 5));
  EXPECT_EQ(EncodeRootlessOwner({0, 0}), "");
}

TEST(RootlessTest, RejectsGarbage) {
  EXPECT_FALSE(DecodeRootlessOwner(std::string("\x0a\x01\x00", 3)).has_value());  // length-delimited field
  EXPECT_FALSE(DecodeRootlessOwner(std::string("\x08\xff", 2)).has_value());      // truncated varint
}

}  // namespace
}  // namespace kiln::layers
