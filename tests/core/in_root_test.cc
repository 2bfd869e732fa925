// ResolveInRoot (core/in_root.h) on an in-memory tree: the chroot rules every caller relies on.
#include "core/in_root.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kiln {
namespace {

// A tree as a map: "a/b" → "/" for a directory, "@TARGET" for a symlink, anything else a file.
class MapWalker : public InRootWalker {
 public:
  explicit MapWalker(std::map<std::string, std::string> tree) : tree_(std::move(tree)) {}
  Result<Entry> Look(const std::string& name) override {
    ++looks;
    auto it = tree_.find(dir_.empty() ? name : dir_ + "/" + name);
    if (it == tree_.end()) return Entry{Kind::kMissing, {}};
    if (it->second == "/") return Entry{Kind::kDirectory, {}};
    if (!it->second.empty() && it->second[0] == '@') return Entry{Kind::kSymlink, it->second.substr(1)};
    return Entry{Kind::kOther, {}};
  }
  Status Enter(const std::string& name) override {
    dir_ = dir_.empty() ? name : dir_ + "/" + name;
    return OkStatus();
  }
  Status Leave() override {
    size_t slash = dir_.rfind('/');
    dir_.resize(slash == std::string::npos ? 0 : slash);
    return OkStatus();
  }
  Status Restart() override {
    dir_.clear();
    return OkStatus();
  }
  const std::string& dir() const { return dir_; }
  int looks = 0;

 private:
  std::map<std::string, std::string> tree_;
  std::string dir_;
};

const std::map<std::string, std::string> kTree = {
    {"etc", "/"},          {"etc/passwd", "file"}, {"usr", "/"},          {"usr/lib", "/"},
    {"lib", "@usr/lib"},   {"abs", "@/etc"},       {"up", "@../../../etc"}, {"loop", "@loop"},
    {"usr/lib/x", "file"}, {"rel", "@lib/x"},
};

std::string Resolve(std::string_view path, InRootOptions options = {}, InRootPath::Stop want = InRootPath::Stop::kResolved) {
  MapWalker w(kTree);
  Result<InRootPath> r = ResolveInRoot(path, {}, w, options);
  EXPECT_TRUE(r.ok()) << path;
  if (!r.ok()) return "error";
  EXPECT_EQ(r->stop, want) << path;
  std::string out = r->Joined();
  for (const std::string& u : r->unresolved) out += "|" + u;
  return out;
}

TEST(InRootTest, ChrootRules) {
  EXPECT_EQ(Resolve(""), "");
  EXPECT_EQ(Resolve("/"), "");
  EXPECT_EQ(Resolve("../../etc/passwd"), "etc/passwd");        // `..` of the root is the root
  EXPECT_EQ(Resolve("/lib/x"), "usr/lib/x");                   // a relative link, from its directory
  EXPECT_EQ(Resolve("usr/lib/../../abs/passwd"), "etc/passwd");  // an absolute link restarts at the root
  EXPECT_EQ(Resolve("up/passwd"), "etc/passwd");               // a link cannot climb out either
  EXPECT_EQ(Resolve("rel"), "usr/lib/x");                      // links to links, the last one followed
  EXPECT_EQ(Resolve("./etc/./passwd"), "etc/passwd");
}

TEST(InRootTest, LastComponentFollowedOnlyWhenAsked) {
  InRootOptions no_follow;
  no_follow.follow_last = false;
  EXPECT_EQ(Resolve("rel", no_follow), "rel");
  EXPECT_EQ(Resolve("lib/x", no_follow), "usr/lib/x");  // links before the last are still followed
}

TEST(InRootTest, MissingStopsOrStaysLexical) {
  EXPECT_EQ(Resolve("lib/new/deeper", {}, InRootPath::Stop::kMissing), "usr/lib/new|deeper");
  InRootOptions lexical;
  lexical.after_missing = InRootOptions::AfterMissing::kLexical;
  EXPECT_EQ(Resolve("lib/new/../newer/f", lexical), "usr/lib/newer/f");
}

TEST(InRootTest, FileInTheMiddleAndLoops) {
  EXPECT_EQ(Resolve("etc/passwd/x", {}, InRootPath::Stop::kNotDirectory), "etc/passwd|x");
  EXPECT_EQ(Resolve("etc/passwd"), "etc/passwd");  // a file at the end is fine
  Resolve("loop/x", {}, InRootPath::Stop::kLoop);
  InRootOptions few;
  few.max_links = 1;
  Resolve("rel", few, InRootPath::Stop::kLoop);  // rel → lib/x → usr/lib/x: two links
}

TEST(InRootTest, StepHookTakesAsWrittenRestartsAndFails) {
  InRootOptions o;
  // "proc" is someone else's below it; "proc/self/root" leads back to the root; "secret" is refused.
  o.step = [](const std::vector<std::string>& done, const std::deque<std::string>&) -> Result<InRootStep> {
    if (done[0] == "secret") return PermissionDenied("no");
    if (done[0] != "proc") return InRootStep::kLook;
    if (done.size() == 3 && done[2] == "root") return InRootStep::kRestartAtRoot;
    return InRootStep::kTakeAsWritten;
  };
  EXPECT_EQ(Resolve("/proc/1/status", o), "proc/1/status");  // not looked at (it is not in the tree)
  EXPECT_EQ(Resolve("/proc/self/root/lib/x", o), "usr/lib/x");
  EXPECT_EQ(Resolve("/proc/../etc/passwd", o), "etc/passwd");  // `..` still applies
  MapWalker w(kTree);
  EXPECT_EQ(ResolveInRoot("/secret/x", {}, w, o).status().code(), ErrorCode::kPermissionDenied);
}

TEST(InRootTest, RelativePathsStartAtTheGivenDirectoryAndTheWalkerFollows) {
  MapWalker w(kTree);
  auto r = ResolveInRoot("../etc", {"usr", "lib"}, w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Joined(), "usr/etc");
  EXPECT_EQ(r->stop, InRootPath::Stop::kMissing);
  auto abs = ResolveInRoot("/lib", {"usr"}, w);
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->Joined(), "usr/lib");
  EXPECT_EQ(w.dir(), "usr/lib");  // the walker is left on the last directory entered
}

}  // namespace
}  // namespace kiln
