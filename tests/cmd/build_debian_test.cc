// `kiln build` end to end with real-world RUN steps: FROM a Debian bookworm minbase image (made by
// scripts/debian-rootfs.sh, packed by kiln, pushed by skopeo), apt-get update and install a small
// package from deb.debian.org, run it. Minutes, not seconds: the only slow test of tests/cmd.
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using testing::Stat;

TEST(BuildDebianTest, AptGetInstallsAndRunsAPackage) {
  if (!testing::HaveRoot()) GTEST_SKIP() << "debootstrap needs root";
  if (testing::RunShell("command -v debootstrap") != 0) GTEST_SKIP() << "needs debootstrap";
  if (testing::RunShell("curl -sf -o /dev/null -m 10 http://deb.debian.org/debian/dists/bookworm/Release") != 0) {
    GTEST_SKIP() << "deb.debian.org is not reachable";
  }
  auto server = testing::RegistryServer::Start();
  testing::RegistryServer* reg = server.get();
  testing::TempDir dir;
  testing::PushToRegistry("oci:" + testing::DebianLayout(KILN_BINARY) + ":latest", *reg, "debian:bookworm");

  testing::WriteFile(dir.Sub("ctx/Dockerfile"),
                     "FROM " + reg->host() +
                         "/debian:bookworm\n"
                         "ENV DEBIAN_FRONTEND=noninteractive\n"
                         "RUN apt-get update && apt-get install -y --no-install-recommends hello && hello > /greeting "
                         "&& rm -rf /var/lib/apt/lists/*\n");
  auto r = testing::RunKiln(KILN_BINARY, "build --context " + dir.Sub("ctx") + " --state-dir " + dir.Sub("state") +
                                             " --insecure --insecure-pull --destination " + reg->host() + "/hello:1 --sbom=" +
                                             dir.Sub("sbom.json"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("Setting up hello"), std::string::npos) << r.err;

  auto img = testing::ReadImage("docker://" + reg->host() + "/hello:1", dir.Sub("read"), testing::SkopeoSourceFlags(*reg));
  testing::FileInfo hello = Stat(img.rootfs, "usr/bin/hello");
  EXPECT_EQ(hello.type, 'f');
  EXPECT_EQ(hello.mode, 0755u);
  EXPECT_EQ(hello.uid, 0u);
  EXPECT_EQ(Stat(img.rootfs, "greeting").content, "Hello, world!\n");
  EXPECT_EQ(Stat(img.rootfs, "usr/share/doc/hello").type, 'd');
  EXPECT_EQ(Stat(img.rootfs, "var/lib/dpkg/info/hello.list").type, 'f');
  // Deleted by the step after apt-get update filled it: not in the image.
  EXPECT_EQ(testing::ListTree(img.rootfs, "var/lib/apt/lists"), std::vector<std::string>{});
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 2u);
  EXPECT_EQ(img.NonEmptyHistory(), 2u);

  // The SBOM lists exactly the packages dpkg-query says are installed, with the same versions.
  std::string listed;
  ASSERT_EQ(testing::RunShell("dpkg-query --admindir=" + img.rootfs +
                                  "/var/lib/dpkg -W -f '${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\\n'",
                              &listed),
            0)
      << listed;
  std::set<std::string> installed, in_sbom;
  std::istringstream lines(listed);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("ii ", 0) == 0) installed.insert(line.substr(line.find('|') + 1));
  }
  nlohmann::json sbom = nlohmann::json::parse(testing::ReadFile(dir.Sub("sbom.json")));
  for (const nlohmann::json& p : sbom["packages"]) {
    std::string purl = p["externalRefs"][0]["referenceLocator"];
    if (purl.rfind("pkg:deb/debian/", 0) != 0) continue;
    std::string arch = purl.substr(purl.find("?arch=") + 6);
    in_sbom.insert(p["name"].get<std::string>() + "|" + p["versionInfo"].get<std::string>() + "|" + arch);
  }
  EXPECT_GT(installed.size(), 50u);
  EXPECT_EQ(in_sbom, installed);
  auto hello_pkg = in_sbom.lower_bound("hello|");
  EXPECT_TRUE(hello_pkg != in_sbom.end() && hello_pkg->rfind("hello|", 0) == 0);  // the package RUN installed
}

}  // namespace
}  // namespace kiln
