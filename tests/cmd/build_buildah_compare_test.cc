// `kiln build` against Buildah 1.28 (Debian's buildah, `buildah bud --isolation chroot` on vfs
// storage in a private root): each case builds one Dockerfile and context with both, reads both final
// images back (skopeo, umoci raw unpack) and compares
//   - every path of the root filesystem: type, mode bits, uid, gid, size, link count of regular
//     files, sha256 of regular files, symlink target (never mtimes);
//   - the config's Env, Cmd, Entrypoint, User, WorkingDir, ExposedPorts and Labels;
//   - the number of layers in the manifest.
// Only instructions and flags Buildah 1.28 implements as Docker/BuildKit do are used. Where Buildah
// is known to differ, the case names the difference, narrowly, with the reason.
// Skipped, with the reason, where buildah is not installed or cannot build (it needs root here).
#include <ftw.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"

namespace kiln {
namespace {

using testing::RunShell;
using testing::ShellQuote;

// Path (relative, "/" for the root) → "type mode uid:gid size nlink sha256|target".
using Tree = std::map<std::string, std::string>;

Tree* walk_into = nullptr;
size_t walk_prefix = 0;

int WalkOne(const char* path, const struct stat* st, int, struct FTW*) {
  std::string rel = std::string(path).substr(walk_prefix);
  if (rel.empty()) rel = "/";
  std::ostringstream line;
  char oct[8];
  std::snprintf(oct, sizeof oct, "%04o", st->st_mode & 07777);
  line << oct << " " << st->st_uid << ":" << st->st_gid;
  if (S_ISREG(st->st_mode)) {
    line << " f size=" << st->st_size << " nlink=" << st->st_nlink << " "
         << Sha256Of(testing::ReadFile(path)).Short();
  } else if (S_ISLNK(st->st_mode)) {
    char target[4096];
    ssize_t n = ::readlink(path, target, sizeof target);
    line << " l -> " << std::string(target, n > 0 ? n : 0);
  } else if (S_ISDIR(st->st_mode)) {
    line << " d";
  } else {
    line << " other mode=" << std::oct << st->st_mode;
  }
  (*walk_into)[rel] = line.str();
  return 0;
}

Tree Walk(const std::string& rootfs) {
  Tree tree;
  walk_into = &tree;
  walk_prefix = rootfs.size();
  EXPECT_EQ(::nftw(rootfs.c_str(), WalkOne, 32, FTW_PHYS), 0) << rootfs;
  walk_into = nullptr;
  return tree;
}

// One line per path that differs: "path: kiln=... buildah=...".
std::string DiffTrees(const Tree& kiln, const Tree& buildah) {
  std::string out;
  std::set<std::string> paths;
  for (const auto& [p, _] : kiln) paths.insert(p);
  for (const auto& [p, _] : buildah) paths.insert(p);
  for (const auto& p : paths) {
    auto k = kiln.find(p), b = buildah.find(p);
    std::string ks = k == kiln.end() ? "(missing)" : k->second;
    std::string bs = b == buildah.end() ? "(missing)" : b->second;
    if (ks != bs) out += "  " + p + ": kiln=" + ks + " buildah=" + bs + "\n";
  }
  return out;
}

struct Case {
  std::string name;
  std::string dockerfile;                   // "@REG@" is the harness registry
  std::map<std::string, std::string> files;  // the context besides the Dockerfile
  std::string setup;                        // shell run in the context directory after writing files
  std::vector<std::string> absent;          // paths that must be in neither image
  std::map<std::string, std::string> expect;  // path → text its listing line must contain (in both)
  // Expected differences, narrow and documented at the case: paths Buildah 1.28 leaves in the image
  // and kiln (as BuildKit) must not; layers Buildah makes fewer than kiln.
  std::set<std::string> buildah_only = {};
  size_t buildah_fewer_layers = 0;
};

// What Buildah 1.28's RUN (chroot isolation) leaves behind: the mountpoints it creates for /dev,
// /proc, /sys, /run and the bind-mounted /etc/hostname, /etc/hosts, /etc/resolv.conf, committed as
// empty directories and files (containers/buildah#4242, open for 1.28). BuildKit removes the mount
// stubs it created before committing a RUN, and so does kiln.
const std::set<std::string> kRunStubs = {"/dev", "/proc", "/sys", "/run", "/etc/hostname", "/etc/hosts",
                                         "/etc/resolv.conf"};

std::set<std::string> With(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"ChownChmod",
       "FROM @REG@/busybox:latest\n"
       "COPY --chown=1234:5678 a.txt /o/numeric.txt\n"
       "COPY --chown=app:staff a.txt /o/named.txt\n"
       "COPY --chown=app dir /o/dir\n"
       "COPY --chmod=0640 a.txt /m/a.txt\n"
       "COPY --chmod=755 --chown=nobody a.txt /m/exec\n",
       {{"a.txt", "A\n"}, {"dir/x.txt", "X\n"}, {"dir/sub/y.txt", "Y\n"}},
       "",
       {},
       {{"/o/numeric.txt", "0644 1234:5678"}, {"/o/named.txt", "1000:50"}, {"/o/dir/sub/y.txt", "1000:1000"},
        {"/m/a.txt", "0640 0:0"}, {"/m/exec", "0755 65534:"}}},
      {"TreeWithLinks",
       "FROM @REG@/busybox:latest\n"
       "COPY tree /tree/\n"
       "COPY [\"tree/with space.txt\", \"/spaced dest/\"]\n",
       {{"tree/a.txt", "A\n"}, {"tree/with space.txt", "spaced\n"}, {"tree/sub/deep/b.txt", "B\n"}},
       "ln -s a.txt tree/rel-link && ln -s /etc/passwd tree/abs-link && ln -s sub tree/dir-link && "
       "ln -s missing tree/dangling && ln tree/a.txt tree/hard.txt && chmod 0600 tree/sub/deep/b.txt && "
       "chmod 0750 tree/sub",
       {},
       {{"/tree/hard.txt", "nlink=2"}, {"/tree/dangling", "-> missing"}, {"/tree/sub", "0750"},
        {"/tree/sub/deep/b.txt", "0600"}, {"/spaced dest/with space.txt", "size=7"}}},
      {"AddLocalTarGz",
       "FROM @REG@/busybox:latest\n"
       "ADD archive.tar.gz /x/\n"
       "ADD archive.tar.gz /x2\n",
       {},
       "mkdir -p t/top/in && echo inner > t/top/in/f.txt && chmod 0600 t/top/in/f.txt && ln -s in/f.txt t/top/l && "
       "tar --owner=123 --group=456 --numeric-owner -C t -czf archive.tar.gz top && rm -r t",
       {},
       {{"/x/top/in/f.txt", "0600 123:456"}, {"/x/top/l", "-> in/f.txt"}, {"/x2/top/in/f.txt", "123:456"}}},
      {"CopyFromStage",
       "FROM @REG@/busybox:latest AS builder\n"
       "RUN mkdir -p /out/sub && echo built > /out/sub/r.txt && chown 77:88 /out/sub/r.txt && ln -s sub/r.txt /out/l\n"
       "FROM @REG@/busybox:latest\n"
       "COPY --from=builder /out /got/\n"
       "COPY --from=builder --chown=app:devs /out/sub/r.txt /owned.txt\n",
       {},
       "",
       {},
       {{"/got/sub/r.txt", "77:88"}, {"/got/l", "-> sub/r.txt"}, {"/owned.txt", "1000:2000"}}},
      {"RunWhiteouts",
       "FROM @REG@/busybox:latest\n"
       "RUN rm -r /home/app && rm /etc/group && mkdir -p /new/d && echo new > /new/d/f && echo g > /etc/group2\n"
       "RUN rm /new/d/f && echo again > /new/g\n",
       {},
       "",
       {"/home/app", "/etc/group", "/new/d/f"},
       {{"/new/g", "size=6"}, {"/etc/group2", "size=2"}},
       kRunStubs},
      {"WorkdirUserEnvArg",
       "FROM @REG@/busybox:latest\n"
       "ARG SUB=from-arg\n"
       "ENV BASE=/dest GREETING=\"hello world\"\n"
       "WORKDIR /made/by/workdir\n"
       "COPY a.txt $BASE/${SUB}/\n"
       "COPY a.txt rel.txt\n"
       "USER app:staff\n"
       "EXPOSE 8080/tcp 53/udp\n"
       "LABEL org.example.one=\"1\" org.example.two=two\n"
       "ENTRYPOINT [\"/bin/sh\", \"-c\"]\n"
       "CMD [\"echo $GREETING\"]\n",
       {{"a.txt", "A\n"}},
       "",
       {},
       {{"/dest/from-arg/a.txt", "size=2"}, {"/made/by/workdir/rel.txt", "size=2"}, {"/made/by/workdir", "0:0 d"}},
       {},
       // BuildKit commits the directory WORKDIR creates as a layer of its own (dispatchWorkdir's
       // mkdir file op, history not empty_layer), as kiln does; Buildah 1.28 creates it without a
       // layer, so it lands in the next COPY's layer. Same files either way.
       1},
      {"RunMounts",
       "FROM @REG@/busybox:latest\n"
       "RUN --mount=type=bind,source=data,target=/srv/data cat /srv/data/secret.txt > /copied.txt\n"
       "RUN --mount=type=cache,target=/var/cache/c echo cached > /var/cache/c/f && ls /var/cache/c > /cache-list\n",
       {{"data/secret.txt", "bound\n"}},
       "",
       {"/srv/data/secret.txt", "/var/cache/c/f"},
       {{"/copied.txt", "size=6"}, {"/cache-list", "size=2"}},
       // Buildah also leaves the mount targets' parents it created (/srv, /var/cache) as empty
       // directories; BuildKit and kiln remove those stubs.
       With(kRunStubs, {"/srv", "/var/cache"})},
  };
  return cases;
}

// The config fields both builders set from the Dockerfile. Buildah adds its own version label
// (io.buildah.version), which is no Dockerfile content: dropped.
nlohmann::json ConfigFields(const nlohmann::json& image_config) {
  nlohmann::json c = image_config.value("config", nlohmann::json::object());
  nlohmann::json out;
  for (const char* k : {"Env", "Cmd", "Entrypoint", "User", "WorkingDir", "ExposedPorts", "Labels"}) {
    nlohmann::json v = c.value(k, nlohmann::json());
    if (v.is_object() && v.empty()) v = nullptr;
    if (v.is_string() && v.get<std::string>().empty()) v = nullptr;
    if (v.is_array() && v.empty()) v = nullptr;
    out[k] = v;
  }
  if (out["Labels"].is_object()) {
    out["Labels"].erase("io.buildah.version");
    if (out["Labels"].empty()) out["Labels"] = nullptr;
  }
  return out;
}

class BuildBuildahCompareTest : public testing::BuildEnvSuite, public ::testing::WithParamInterface<Case> {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    std::string out;
    if (RunShell("buildah --version", &out) != 0) {
      skip_reason_ = "buildah is not installed (scripts/setup.sh installs Debian's buildah)";
      return;
    }
    storage_ = new testing::TempDir();
    if (RunShell(Buildah() + " images", &out) != 0) {
      skip_reason_ = "buildah cannot run here: " + out;
    }
  }
  static void TearDownTestSuite() {
    if (storage_ != nullptr) {
      // vfs layers may hold read-only directories; buildah removes what it made.
      RunShell(Buildah() + " rmi --all --force >/dev/null 2>&1");
      delete storage_;
      storage_ = nullptr;
    }
    BuildEnvSuite::TearDownTestSuite();
  }
  void SetUp() override {
    BuildEnvSuite::SetUp();
    if (IsSkipped()) return;
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  // buildah with private storage and temporary files; nothing global is written.
  static std::string Buildah() {
    const std::string& d = storage_->path();
    return "TMPDIR=" + ShellQuote(d) + " buildah --storage-driver vfs --root " + ShellQuote(d + "/root") +
           " --runroot " + ShellQuote(d + "/runroot");
  }

  inline static testing::TempDir* storage_ = nullptr;
  inline static std::string skip_reason_;
};

TEST_P(BuildBuildahCompareTest, SameImageAsBuildah) {
  const Case& c = GetParam();
  auto files = c.files;
  files["Dockerfile"] = c.dockerfile;
  std::string ctx = env_->Context(files);
  if (!c.setup.empty()) {
    ASSERT_EQ(RunShell("cd " + ShellQuote(ctx) + " && " + c.setup), 0) << c.setup;
  }

  std::string repo = "cmp-" + c.name;
  for (auto& ch : repo) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string tag = repo + ":kiln";
  auto r = env_->Build(ctx, "--destination " + env_->Ref(tag));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto kiln_img = env_->Read(tag);

  std::string out;
  std::string name = "localhost/" + repo;
  ASSERT_EQ(RunShell(Buildah() + " bud --isolation chroot --tls-verify=false --layers -t " + name + " -f " +
                         ShellQuote(ctx + "/Dockerfile") + " " + ShellQuote(ctx),
                     &out),
            0)
      << out;
  std::string layout = env_->NewDir("buildah-oci");
  ASSERT_EQ(RunShell(Buildah() + " push " + name + " " + ShellQuote("oci:" + layout + ":img"), &out), 0) << out;
  auto buildah_img = testing::ReadImage("oci:" + layout + ":img", env_->NewDir("buildah-read"));

  Tree kt = Walk(kiln_img.rootfs), bt = Walk(buildah_img.rootfs);
  EXPECT_GT(kt.size(), 250u) << "the busybox base has hundreds of paths";
  for (const auto& p : c.buildah_only) {
    EXPECT_EQ(kt.count(p), 0u) << "kiln left " << p << ": " << kt[p];
    bt.erase(p);
  }
  EXPECT_EQ(DiffTrees(kt, bt), "") << "root filesystems differ";
  for (const auto& [p, want] : c.expect) {
    EXPECT_NE(kt[p].find(want), std::string::npos) << p << ": " << kt[p] << " lacks " << want;
  }
  for (const auto& p : c.absent) {
    EXPECT_EQ(kt.count(p), 0u) << "kiln: " << p;
    EXPECT_EQ(bt.count(p), 0u) << "buildah: " << p;
  }
  EXPECT_EQ(ConfigFields(kiln_img.config).dump(1), ConfigFields(buildah_img.config).dump(1));
  EXPECT_EQ(kiln_img.manifest["layers"].size(), buildah_img.manifest["layers"].size() + c.buildah_fewer_layers);
}

INSTANTIATE_TEST_SUITE_P(Cases, BuildBuildahCompareTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace kiln
