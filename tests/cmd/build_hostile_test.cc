// Hostile base images through a whole `kiln build FROM evil` (issue 21): each case pushes an image
// whose layers, manifest or config try to reach outside kiln's rootfs (or to exhaust the machine) to
// the real test registry, and builds `FROM` it with a COPY and a RUN step, in every tier: as root
// (kiln's default sandbox), as an unprivileged user (nobody, the rootless tier with one id mapping)
// and in the ptrace tier. Before each build a sentinel tree is made outside the state directory (a
// file, a directory, a symlink: what the evil layers aim at, owned by the user kiln runs as so that
// only kiln's own care stops a write); afterwards it must be byte for byte the same, nothing new may
// appear next to it, and kiln must either have built safely (what was aimed outside landed inside
// the image) or failed with a clear message. The suite prints "hostile layers tried / contained".
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/io.h"
#include "layers/decompress.h"
#include "layers/oci_layout.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"
#include "tests/layers/hostile_tar.h"
#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/base_images.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using layers::testing::Gzip;
using layers::testing::TarBuilder;
using layers::testing::UstarHeader;
using layers::testing::Zstd;
using testing::Stat;

enum class Tier { kRoot, kNonRoot, kPtrace };
const char* TierName(Tier t) { return t == Tier::kRoot ? "root" : t == Tier::kNonRoot ? "nonroot" : "ptrace"; }

// What a case pushes on top of the busybox base.
struct EvilImage {
  std::vector<std::string> layers;  // blobs as pushed (gzip, zstd or plain tar)
  std::string garbage_config;       // non-empty: the config blob, instead of a valid one
  bool wrong_diff_id = false;       // the config names a diff_id the last layer does not have
  enum class Tamper { kNone, kCorruptLastLayer, kDeleteLastLayer } tamper = Tamper::kNone;
};

// Where the case runs: the sentinel tree and a name no escape may create anywhere.
struct Where {
  std::string sentinel;  // absolute path of the sentinel directory (outside the state dir)
  std::string marker;    // a unique file name
  Tier tier;
};

struct HostileCase {
  const char* name;
  std::function<EvilImage(const Where&)> image;
  /// Extra Dockerfile lines after the FROM, COPY and RUN every case has.
  std::function<std::string(const Where&)> steps;  // may be empty
  std::string flags;  // extra kiln flags
  /// Empty: the build must succeed (and `check` runs on the image's files). Otherwise every one of
  /// these must appear in kiln's stderr.
  std::vector<std::string> fails_with;
  std::function<void(const std::string& rootfs, const Where&)> check;  // may be empty
};

std::string Rel(const std::string& abs) { return abs.substr(1); }  // "/tmp/x/s" → "tmp/x/s"

// "../" enough times to climb from any rootfs to /, then the absolute path without its slash.
std::string Climb(const std::string& abs) {
  std::string up;
  for (int i = 0; i < 24; ++i) up += "../";
  return up + Rel(abs);
}

// The first block device the kernel lists (the machine's disk), or 8:0.
dev_t FirstDisk() {
  std::ifstream f("/proc/partitions");
  std::string line;
  unsigned major = 0, minor = 0;
  while (std::getline(f, line)) {
    if (std::sscanf(line.c_str(), " %u %u", &major, &minor) == 2) return makedev(major, minor);
  }
  return makedev(8, 0);
}

const std::vector<HostileCase>& Cases() {
  static const std::vector<HostileCase> cases = {
      {"Traversal",
       [](const Where& w) {
         TarBuilder b;
         b.File("ok.txt", "fine").File(Climb(w.sentinel) + "/victim.txt", "pwned");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"climbs above the root"}},
      {"TraversalInsideAName",
       [](const Where& w) {
         TarBuilder b;
         b.Dir("a").File("a/../../../../../../../../../../../../../../" + Rel(w.sentinel) + "/" + w.marker, "pwned");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"climbs above the root"}},
      {"AbsolutePaths",
       [](const Where& w) {
         TarBuilder b;
         b.File(w.sentinel + "/victim.txt", "pwned").File(w.sentinel + "/" + w.marker, "new").File("/" + w.marker, "r");
         return EvilImage{{Gzip(b.Finish())}};
       },
       [](const Where& w) { return "RUN cat " + w.sentinel + "/victim.txt > /seen\n"; }, "", {},
       [](const std::string& fs, const Where& w) {
         EXPECT_EQ(Stat(fs, Rel(w.sentinel) + "/victim.txt").content, "pwned");
         EXPECT_EQ(Stat(fs, w.marker).content, "r");
         EXPECT_EQ(Stat(fs, "seen").content, "pwned");
       }},
      {"AbsoluteSymlinkAcrossLayers",
       [](const Where& w) {
         TarBuilder a, b;
         a.Symlink("escape", w.sentinel);
         b.File("escape/victim.txt", "pwned").File("escape/" + w.marker, "new");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       // The steps write through the planted symlink too.
       [](const Where& w) {
         return "COPY hello.txt /escape/copied-" + w.marker + "\nRUN echo run > /escape/run-" + w.marker +
                " && echo run >> /escape/victim.txt\n";
       },
       "", {},
       [](const std::string& fs, const Where& w) {
         EXPECT_EQ(Stat(fs, "escape").link, w.sentinel);
         const std::string s = Rel(w.sentinel);
         EXPECT_EQ(Stat(fs, s + "/victim.txt").content, "pwnedrun\n");
         EXPECT_EQ(Stat(fs, s + "/" + w.marker).content, "new");
         EXPECT_EQ(Stat(fs, s + "/copied-" + w.marker).content, "hello\n");
         EXPECT_EQ(Stat(fs, s + "/run-" + w.marker).content, "run\n");
       }},
      {"RelativeSymlinkAcrossLayers",
       [](const Where& w) {
         TarBuilder a, b;
         a.Dir("deep").Symlink("deep/up", Climb(w.sentinel));
         b.File("deep/up/victim.txt", "pwned").File("deep/up/" + w.marker, "new");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       [](const Where& w) { return "RUN echo run > /deep/up/run-" + w.marker + "\n"; }, "", {},
       [](const std::string& fs, const Where& w) {
         const std::string s = Rel(w.sentinel);
         EXPECT_EQ(Stat(fs, s + "/victim.txt").content, "pwned");
         EXPECT_EQ(Stat(fs, s + "/" + w.marker).content, "new");
         EXPECT_EQ(Stat(fs, s + "/run-" + w.marker).content, "run\n");
       }},
      {"SymlinkedParentWithinOneLayer",
       [](const Where& w) {
         TarBuilder b;
         b.Dir("d").File("d/x", "x").Symlink("d", w.sentinel + "/dir").File("d/inner.txt", "pwned");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {},
       [](const std::string& fs, const Where& w) {
         EXPECT_EQ(Stat(fs, Rel(w.sentinel) + "/dir/inner.txt").content, "pwned");
       }},
      {"HardlinkToAHostFileThroughASymlink",
       [](const Where& w) {
         TarBuilder a, b;
         a.Symlink("escape", w.sentinel);
         b.Hardlink("h", "escape/victim.txt");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       {}, "", {"hardlink", "No such file"}},
      {"HardlinkClimbingOut",
       [](const Where& w) {
         TarBuilder b;
         b.Hardlink("h", Climb(w.sentinel) + "/victim.txt");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"climbs above the root"}},
      {"HardlinkToAnAbsoluteHostPath",
       [](const Where& w) {
         TarBuilder b;
         b.Hardlink("h", w.sentinel + "/victim.txt");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"hardlink"}},
      {"HardlinkToASymlinkThenWrittenByRun",
       // A hardlink to the planted symlink itself (its last component is not followed): the RUN step
       // writing through it must land inside the rootfs.
       [](const Where& w) {
         TarBuilder a, b;
         a.Symlink("ln", w.sentinel + "/victim.txt");
         b.Hardlink("h", "ln");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       [](const Where& w) { return "RUN mkdir -p " + w.sentinel + " && echo run >> /h\n"; }, "", {},
       [](const std::string& fs, const Where& w) {
         EXPECT_EQ(Stat(fs, Rel(w.sentinel) + "/victim.txt").content, "run\n");
       }},
      {"WhiteoutClimbingOut",
       [](const Where& w) {
         TarBuilder b;
         b.File(Climb(w.sentinel) + "/.wh.victim.txt", "");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"climbs above the root"}},
      {"WhiteoutDotDot",
       [](const Where&) {
         TarBuilder b;
         b.Dir("d").File("d/.wh..", "");
         return EvilImage{{Gzip(b.Finish())}};
       },
       {}, "", {"invalid whiteout"}},
      {"WhiteoutThroughASymlink",
       [](const Where& w) {
         TarBuilder a, b;
         a.Symlink("escape", w.sentinel);
         b.File("escape/.wh.victim.txt", "").File("escape/.wh.dir", "").File("escape/.wh.link", "");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       {}, "", {}},
      {"OpaqueMarkerUnderASymlinkedDir",
       [](const Where& w) {
         TarBuilder a, b;
         a.Symlink("escape", w.sentinel).Symlink("rel", Climb(w.sentinel));
         b.File("escape/.wh..wh..opq", "").File("rel/.wh..wh..opq", "").File("rel/dir/.wh..wh..opq", "");
         return EvilImage{{Gzip(a.Finish()), Gzip(b.Finish())}};
       },
       {}, "", {}},
      {"DeviceNodes",
       // The host's disk and /dev/mem as device nodes: created only where kiln may (root), and never
       // usable by a RUN step to read the host's disk.
       [](const Where&) {
         TarBuilder b;
         b.Add({.name = "evil-disk", .type = S_IFBLK, .perm = 0666, .rdev = FirstDisk()});
         b.Add({.name = "evil-mem", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 1)});
         b.Add({.name = "evil-kmsg", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 11)});
         return EvilImage{{Gzip(b.Finish())}};
       },
       [](const Where&) {
         return std::string(
             "RUN (head -c 4096 /evil-disk | wc -c > /disk-read) 2>/dev/null; "
             "(head -c 4096 /evil-mem | wc -c > /mem-read) 2>/dev/null; "
             "(test -c /evil-kmsg && echo kiln-evil > /evil-kmsg && echo wrote > /kmsg-written) 2>/dev/null; "
             "ls -l /evil-disk /evil-mem /evil-kmsg > /devices 2>&1; true\n");
       },
       "", {},
       [](const std::string& fs, const Where&) {
         // No byte of the host's disk or memory was read, nothing written to the kernel log.
         for (const char* f : {"disk-read", "mem-read"}) {
           testing::FileInfo i = Stat(fs, f);
           if (i.type == 'f') { EXPECT_EQ(i.content, "0\n") << f; }
         }
         EXPECT_EQ(Stat(fs, "kmsg-written").type, '-');
         // The image itself is passed on unchanged, device nodes and all.
         EXPECT_EQ(Stat(fs, "evil-mem").type, 'c');
         EXPECT_EQ(Stat(fs, "evil-disk").type, 'b');
       }},
      {"SetuidFiles",
       // A setuid-root shell in the image stays a file of the image (its mode kept for the image's
       // users); it gives the RUN step's unprivileged user no root on the host.
       [](const Where&) {
         TarBuilder b;
         b.File("suid-sh", sandbox::testing::HaveBusybox() ? testing::ReadFile("/bin/busybox") : "x", 04755);
         b.File("sgid-file", "g", 02755);
         return EvilImage{{Gzip(b.Finish())}};
       },
       [](const Where& w) {
         // Only the root tier runs steps as other users (nobody's single mapping and the ptrace tier
         // have kiln's ids only); there the step is nobody until it runs the setuid shell.
         return std::string(w.tier == Tier::kRoot ? "USER 65534:65534\n" : "") + "RUN /suid-sh id -u > /tmp/euid-" + w.marker + "; /suid-sh sh -c 'echo pwned > " +
                w.sentinel + "/victim.txt'; true\n";
       },
       "", {},
       [](const std::string& fs, const Where&) {
         EXPECT_EQ(Stat(fs, "suid-sh").mode, 04755u);
         EXPECT_EQ(Stat(fs, "sgid-file").mode, 02755u);
       }},
      {"HugeDeclaredSizeTruncatedStream",
       [](const Where&) {
         // A 1 TiB file whose data stops after 1 MiB; the gzip stream itself is complete.
         std::string tar = UstarHeader("huge", uint64_t{1} << 40) + std::string(1 << 20, 'h');
         return EvilImage{{Gzip(tar)}};
       },
       {}, "", {"huge", "truncated"}},
      {"HugeDeclaredSizeTruncatedGzip",
       [](const Where&) {
         std::string gz = Gzip(UstarHeader("huge", uint64_t{1} << 40) + std::string(1 << 20, 'h'));
         return EvilImage{{gz.substr(0, gz.size() / 2)}};
       },
       {}, "", {"gzip", "truncated"}},
      {"DecompressionBombByteLimit",
       [](const Where&) {
         std::string bomb = Gzip(UstarHeader("bomb", uint64_t{4} << 30));
         std::string zeros = Gzip(std::string(1 << 20, '\0'), 9);
         for (int i = 0; i < 64; ++i) bomb += zeros;
         return EvilImage{{bomb}};
       },
       {}, "--max-layer-size 16m", {"decompresses to more than 16 MiB", "--max-layer-size"}},
      {"DecompressionBombRatioLimit",
       [](const Where&) {
         std::string bomb = Zstd(UstarHeader("bomb", uint64_t{4} << 30));
         std::string zeros = Zstd(std::string(1 << 20, '\0'), 19);
         for (int i = 0; i < 256; ++i) bomb += zeros;
         return EvilImage{{bomb}};
       },
       {}, "--max-decompression-ratio 100 --decompression-ratio-min-size 8m",
       {"expands more than 100 times", "--max-decompression-ratio"}},
      {"DigestMismatch",
       [](const Where& w) {
         TarBuilder b;
         b.File("id", w.marker + "-digest").File("payload", std::string(100000, 'p'));
         EvilImage img{{Gzip(b.Finish())}};
         img.tamper = EvilImage::Tamper::kCorruptLastLayer;
         return img;
       },
       {}, "", {"pulling blob sha256:", "content hashes to sha256:", ", expected sha256:"}},
      {"DiffIdMismatch",
       [](const Where& w) {
         TarBuilder b;
         b.File("id", w.marker + "-diffid");
         EvilImage img{{Gzip(b.Finish())}};
         img.wrong_diff_id = true;
         return img;
       },
       {}, "", {"diff_id"}},
      {"ManifestPointsAtAMissingBlob",
       [](const Where& w) {
         TarBuilder b;
         b.File("id", w.marker + "-missing");
         EvilImage img{{Gzip(b.Finish())}};
         img.tamper = EvilImage::Tamper::kDeleteLastLayer;
         return img;
       },
       {}, "", {"blob"}},
      {"GarbageConfig",
       [](const Where&) {
         EvilImage img;
         img.garbage_config = "{\"architecture\": \"amd64\", \"rootfs\": \x01\x02 not json {{{";
         return img;
       },
       {}, "", {"config"}},
      {"ConfigWithFewerDiffIdsThanLayers",
       [](const Where&) {
         EvilImage img;
         img.garbage_config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
         return img;
       },
       {}, "", {"diff_id"}},
  };
  return cases;
}

std::string ReadLine(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::atomic<int> g_tried{0}, g_contained{0};

class BuildHostileTest : public ::testing::TestWithParam<std::tuple<Tier, int>> {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    env_ = new testing::BuildEnv(KILN_BINARY);
    wire_ = new registry::CurlTransport();
    keychain_ = new registry::AnonymousKeychain();
    registry::ClientOptions o;
    o.insecure_registries.insert(env_->reg().host());
    client_ = new registry::Client(wire_, keychain_, o);
    nonroot_state_ = env_->NewDir("nonroot-state");
    EXPECT_EQ(::chown(nonroot_state_.c_str(), 65534, 65534), 0);
  }
  static void TearDownTestSuite() {
    if (g_tried > 0) {
      std::printf("hostile layers tried / contained: %d / %d\n", g_tried.load(), g_contained.load());
    }
    delete client_;
    client_ = nullptr;
    delete keychain_;
    delete wire_;
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (env_ == nullptr) GTEST_SKIP() << "needs root and Debian's busybox-static";
    if (std::get<0>(GetParam()) == Tier::kNonRoot && ReadLine("/proc/sys/user/max_user_namespaces") == "0") {
      GTEST_SKIP() << "no user namespaces here";
    }
  }

  // Pushes busybox + the evil layers as `repo:tag`; returns false (with a test failure) when it could not.
  static void Push(const EvilImage& evil, const std::string& repo, const std::string& tag) {
    auto layout = layers::OciLayout::Open(testing::BusyboxLayout(KILN_BINARY)).value();
    Descriptor base = layout.Resolve("latest").value();
    nlohmann::json manifest = nlohmann::json::parse(layout.ReadBlob(base.digest).value());
    nlohmann::json config =
        nlohmann::json::parse(layout.ReadBlob(Digest::Parse(manifest["config"]["digest"].get<std::string>()).value()).value());
    auto repo_r = client_->Open(client_->PushEndpoint(env_->reg().host()), repo, true, {"busybox"});
    ASSERT_TRUE(repo_r.ok()) << repo_r.status().ToString();
    registry::Repository& r = **repo_r;
    for (const auto& l : manifest["layers"]) {
      Digest d = Digest::Parse(l["digest"].get<std::string>()).value();
      auto mounted = r.MountBlob(d, "busybox");
      if (mounted.ok() && *mounted) continue;
      auto blob = layout.OpenBlob(d);
      ASSERT_TRUE(blob.ok());
      ASSERT_TRUE(r.UploadBlob(**blob, d).ok());
    }
    for (const std::string& blob : evil.layers) {
      StringReader sr(blob);
      auto up = r.UploadBlob(sr);
      ASSERT_TRUE(up.ok()) << up.status().ToString();
      manifest["layers"].push_back({{"mediaType", DetectMediaType(blob)},
                                    {"digest", up->digest.ToString()},
                                    {"size", up->size}});
      config["rootfs"]["diff_ids"].push_back(DiffId(blob));
      if (config.contains("history")) config["history"].push_back({{"created_by", "evil layer"}});
    }
    if (evil.wrong_diff_id) config["rootfs"]["diff_ids"].back() = Sha256Of("not the layer").ToString();
    std::string config_bytes = evil.garbage_config.empty() ? config.dump() : evil.garbage_config;
    StringReader cr(config_bytes);
    auto cd = r.UploadBlob(cr);
    ASSERT_TRUE(cd.ok()) << cd.status().ToString();
    manifest["config"]["digest"] = cd->digest.ToString();
    manifest["config"]["size"] = cd->size;
    auto put = r.PutManifest(tag, manifest.dump(), manifest.value("mediaType", std::string("application/vnd.oci.image.manifest.v1+json")));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    if (evil.tamper != EvilImage::Tamper::kNone) {
      std::string path = env_->reg().BlobPath(manifest["layers"].back()["digest"].get<std::string>());
      if (evil.tamper == EvilImage::Tamper::kDeleteLastLayer) {
        ASSERT_EQ(::unlink(path.c_str()), 0) << path;
      } else {
        std::string bytes = testing::ReadFile(path);
        bytes[bytes.size() / 2] ^= 0x20;  // same size, other bytes
        testing::WriteFile(path, bytes);
      }
    }
  }

  static std::string DetectMediaType(const std::string& blob) {
    switch (layers::DetectCompression(blob.substr(0, 4))) {
      case layers::Compression::kGzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
      case layers::Compression::kZstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
      default: return "application/vnd.oci.image.layer.v1.tar";
    }
  }
  // The diff_id: sha256 of the decompressed blob (what decompresses of a broken one).
  static std::string DiffId(const std::string& blob) {
    StringReader sr(blob);
    auto d = layers::NewDecompressingReader(&sr);
    if (!d.ok()) return Sha256Of(blob).ToString();
    HashingReader h(d->get());
    std::vector<char> buf(1 << 20);
    uint64_t total = 0;
    for (;;) {
      auto n = h.Read(buf.data(), buf.size());
      if (!n.ok() || *n == 0 || (total += *n) > (uint64_t{64} << 20)) break;  // bombs: any digest will do
    }
    return h.Finish().ToString();
  }

  // The sentinel tree: a file, a directory with a file, a symlink; owned by whoever kiln runs as.
  static void MakeSentinel(const std::string& dir, Tier tier) {
    testing::WriteFile(dir + "/victim.txt", "precious\n", 0644);
    ASSERT_EQ(::mkdir((dir + "/dir").c_str(), 0755), 0);
    testing::WriteFile(dir + "/dir/inner.txt", "inner\n", 0644);
    ASSERT_EQ(::symlink("victim.txt", (dir + "/link").c_str()), 0);
    if (tier == Tier::kNonRoot) {
      ASSERT_EQ(testing::RunShell("chown -hR 65534:65534 '" + dir + "'"), 0);
    }
  }

  static testing::BuildEnv* env_;
  static registry::Client* client_;
  static std::string nonroot_state_;
  inline static registry::CurlTransport* wire_ = nullptr;
  inline static registry::AnonymousKeychain* keychain_ = nullptr;
};
testing::BuildEnv* BuildHostileTest::env_ = nullptr;
registry::Client* BuildHostileTest::client_ = nullptr;
std::string BuildHostileTest::nonroot_state_;

TEST_P(BuildHostileTest, FromEvil) {
  const auto [tier, index] = GetParam();
  const HostileCase& c = Cases()[index];
  const std::string tiername = TierName(tier);
  ++g_tried;
  // Everything the case may touch lives in `watch`: the sentinel tree and nothing else.
  const std::string watch = env_->NewDir(std::string("watch-") + c.name + "-" + tiername);
  Where w{watch + "/sentinel", "kiln-evil-" + std::to_string(::getpid()) + "-" + std::to_string(index) + "-" + tiername,
          tier};
  ASSERT_EQ(::mkdir(w.sentinel.c_str(), 0755), 0);
  MakeSentinel(w.sentinel, tier);

  std::string repo = "evil/" + std::string(c.name);
  for (char& ch : repo) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  ASSERT_NO_FATAL_FAILURE(Push(c.image(w), repo, tiername));
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/" + repo + ":" + tiername +
                                                      "\nCOPY hello.txt /hello.txt\nRUN echo ran > /ran\n" +
                                                      (c.steps ? c.steps(w) : "")},
                                   {"hello.txt", "hello\n"}});
  const std::string dest = repo + ":built-" + tiername;
  const auto before = sandbox::testing::ListTree(watch);
  testing::KilnRun run;
  std::string args = c.flags + " --destination " + env_->Ref(dest);
  if (tier == Tier::kNonRoot) {
    run = testing::RunKiln(KILN_BINARY,
                           "build --context " + ctx + " --state-dir " + nonroot_state_ +
                               " --insecure --insecure-pull " + args,
                           "", "setpriv --reuid=65534 --regid=65534 --clear-groups");
  } else {
    run = env_->Build(ctx, (tier == Tier::kPtrace ? "--sandbox ptrace " : "") + args);
  }
  // Contained: the sentinel tree is untouched, nothing appeared next to it or at /MARKER, /tmp/MARKER.
  bool contained = true;
  auto after = sandbox::testing::ListTree(watch);
  EXPECT_EQ(after, before) << run.err;
  contained &= after == before;
  for (const std::string& p : {"/" + w.marker, "/tmp/" + w.marker, "/tmp/euid-" + w.marker}) {
    EXPECT_NE(::access(p.c_str(), F_OK), 0) << p << " was created";
    contained &= ::access(p.c_str(), F_OK) != 0;
  }
  if (c.fails_with.empty()) {
    EXPECT_EQ(run.rc, 0) << run.err;
    contained &= run.rc == 0;
    if (run.rc == 0) {
      auto img = env_->Read(dest);
      EXPECT_EQ(Stat(img.rootfs, "ran").content, "ran\n");
      EXPECT_EQ(Stat(img.rootfs, "hello.txt").content, "hello\n");
      if (c.check) c.check(img.rootfs, w);
    }
  } else {
    EXPECT_NE(run.rc, 0) << run.err;
    contained &= run.rc != 0;
    for (const std::string& m : c.fails_with) {
      EXPECT_NE(run.err.find(m), std::string::npos) << "expected \"" << m << "\" in:\n" << run.err;
      contained &= run.err.find(m) != std::string::npos;
    }
    EXPECT_FALSE(env_->TagExists(dest));
  }
  if (contained && !HasFailure()) ++g_contained;
}

std::string CaseName(const ::testing::TestParamInfo<std::tuple<Tier, int>>& info) {
  return std::string(TierName(std::get<0>(info.param))) + "_" + Cases()[std::get<1>(info.param)].name;
}

INSTANTIATE_TEST_SUITE_P(Tiers, BuildHostileTest,
                         ::testing::Combine(::testing::Values(Tier::kRoot, Tier::kNonRoot, Tier::kPtrace),
                                            ::testing::Range(0, static_cast<int>(Cases().size()))),
                         CaseName);

}  // namespace
}  // namespace kiln
