// The SBOM's package database parsers and the SPDX and SLSA documents, from bytes (no image).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "executor/image/package_db.h"
#include "executor/image/provenance.h"
#include "executor/image/sbom.h"

namespace kiln::executor {
namespace {

using nlohmann::json;

TEST(PackageDbTest, DpkgStatusKeepsInstalledPackagesWithEncodedPurls) {
  auto pkgs = ParseDpkgStatus(
      "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n"
      "Description: shell\n more text\n\n"
      "Package: old\nStatus: deinstall ok config-files\nVersion: 1\n\n"
      "Package: gone\nStatus: purge ok not-installed\nVersion: 1\n\n\n"
      "Package: distroless-style\nArchitecture: arm64\nVersion: 2:1.0~rc1\n",
      "/var/lib/dpkg/status", "debian");
  ASSERT_EQ(pkgs.size(), 2u);
  EXPECT_EQ(pkgs[0].name, "bash");
  EXPECT_EQ(pkgs[0].version, "5.2.15-2+b2");
  EXPECT_EQ(pkgs[0].purl, "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64");
  EXPECT_EQ(pkgs[1].purl, "pkg:deb/debian/distroless-style@2%3A1.0~rc1?arch=arm64");
  EXPECT_EQ(pkgs[1].source, "/var/lib/dpkg/status");
}

TEST(PackageDbTest, ApkInstalled) {
  auto pkgs = ParseApkInstalled("C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n",
                                "/lib/apk/db/installed", "alpine");
  ASSERT_EQ(pkgs.size(), 2u);
  EXPECT_EQ(pkgs[0].purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
  EXPECT_EQ(pkgs[0].license, "MIT");
  EXPECT_EQ(pkgs[1].name, "busybox");
}

TEST(PackageDbTest, NpmLockV3) {
  auto pkgs = ParseNpmLock(R"({"lockfileVersion":3,"packages":{"":{"name":"app"},
      "node_modules/a":{"version":"1.0.0"},"node_modules/@s/b":{"version":"2.0.0-beta.1"},
      "node_modules/linked":{"resolved":"packages/x","link":true},"packages/x":{"version":"0.1.0"}}})",
                           "/app/package-lock.json");
  ASSERT_TRUE(pkgs.ok()) << pkgs.status().message();
  ASSERT_EQ(pkgs->size(), 2u);
  EXPECT_EQ((*pkgs)[0].purl, "pkg:npm/%40s/b@2.0.0-beta.1");
  EXPECT_EQ((*pkgs)[1].purl, "pkg:npm/a@1.0.0");
  EXPECT_FALSE(ParseNpmLock(R"({"lockfileVersion":1,"dependencies":{}})", "/l").ok());
  EXPECT_FALSE(ParseNpmLock("{", "/l").ok());
}

TEST(PackageDbTest, OsReleaseId) {
  EXPECT_EQ(OsReleaseId("NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n"), "ubuntu");
  EXPECT_EQ(OsReleaseId("ID=\"debian\"\n"), "debian");
  EXPECT_EQ(OsReleaseId("NAME=x\n"), "");
}

TEST(SpdxTest, ImageIsTheRootAndContainsEachPackage) {
  Digest d = Sha256Of("manifest");
  Package p{"deb", "bash", "5.2", "amd64", "", "/var/lib/dpkg/status", "pkg:deb/debian/bash@5.2?arch=amd64"};
  std::string doc = SpdxDocument({"reg.example/team/app", d, "2023-11-14T22:13:20Z", "kiln-1.2.3"}, {p});
  EXPECT_EQ(doc, SpdxDocument({"reg.example/team/app", d, "2023-11-14T22:13:20Z", "kiln-1.2.3"}, {p}));
  json j = json::parse(doc);
  EXPECT_EQ(j["creationInfo"]["creators"][0], "Tool: kiln-1.2.3");
  EXPECT_EQ(j["packages"][0]["externalRefs"][0]["referenceLocator"],
            "pkg:oci/app@sha256%3A" + d.hex() + "?repository_url=reg.example%2Fteam%2Fapp");
  EXPECT_EQ(j["packages"][1]["name"], "bash");
  EXPECT_EQ(j["relationships"][1],
            json({{"spdxElementId", "SPDXRef-Image"}, {"relationshipType", "CONTAINS"},
                  {"relatedSpdxElement", "SPDXRef-Package-deb-1"}}));
}

TEST(ProvenanceTest, SecretLookingBuildArgsAreRedacted) {
  EXPECT_EQ(RecordedBuildArg("API_TOKEN", "x"), "[REDACTED]");
  EXPECT_EQ(RecordedBuildArg("DB_PASSWORD", "x"), "[REDACTED]");
  EXPECT_EQ(RecordedBuildArg("AWS_SECRET_ACCESS_KEY", "x"), "[REDACTED]");
  EXPECT_EQ(RecordedBuildArg("PUBLIC_KEY", "x"), "x");  // the check's own exception
  EXPECT_EQ(RecordedBuildArg("VERSION", "1.0"), "1.0");
  ProvenanceInputs in;
  in.builder_version = "1.2.3";
  in.subject_name = "reg/app";
  in.subject = Sha256Of("m");
  in.dockerfile_path = "Dockerfile";
  in.dockerfile_digest = Sha256Of("FROM x\n");
  in.platforms = {"linux/amd64"};
  in.build_args = {{"GITHUB_TOKEN", "ghp_secret"}, {"V", "1"}};
  in.bases = {{"busybox", "reg/busybox@" + Sha256Of("b").ToString(), Sha256Of("b")}};
  std::string doc = ProvenanceDocument(in);
  EXPECT_EQ(doc.find("ghp_secret"), std::string::npos);
  json j = json::parse(doc);
  EXPECT_EQ(j["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"]["V"], "1");
  EXPECT_EQ(j["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"], Sha256Of("b").hex());
  EXPECT_EQ(j["predicate"]["runDetails"]["builder"]["id"], "urn:kiln:builder:kiln-1.2.3");
}

}  // namespace
}  // namespace kiln::executor

namespace kiln::executor {
namespace {

TEST(SpdxPackagesTest, PackagesWithPurlsExceptWhatTheDocumentDescribes) {
  auto pkgs = ParseSpdxPackages(R"({"spdxVersion": "SPDX-2.2", "documentDescribes": ["SPDXRef-Img"], "packages": [
      {"name": "img", "SPDXID": "SPDXRef-Img", "externalRefs": [{"referenceType": "purl", "referenceLocator": "pkg:generic/img@1"}]},
      {"name": "other-image", "SPDXID": "SPDXRef-O", "externalRefs": [{"referenceType": "purl", "referenceLocator": "pkg:oci/x@sha256%3Aab"}]},
      {"name": "no-purl", "SPDXID": "SPDXRef-N"},
      {"name": "zlib", "SPDXID": "SPDXRef-Z", "versionInfo": "1.3",
       "externalRefs": [{"referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:zlib:zlib:1.3"},
                        {"referenceType": "purl", "referenceLocator": "pkg:apk/alpine/zlib@1.3?arch=x86_64"}]}]})",
                                "base SBOM");
  ASSERT_TRUE(pkgs.ok()) << pkgs.status().ToString();
  ASSERT_EQ(pkgs->size(), 1u);
  EXPECT_EQ((*pkgs)[0].type, "apk");
  EXPECT_EQ((*pkgs)[0].name, "zlib");
  EXPECT_EQ((*pkgs)[0].version, "1.3");
  EXPECT_EQ((*pkgs)[0].purl, "pkg:apk/alpine/zlib@1.3?arch=x86_64");
  EXPECT_EQ((*pkgs)[0].source, "base SBOM");

  // Fields of another type than SPDX says are ignored, never thrown on (found by the package_db fuzzer:
  // an array SPDXID aborted kiln).
  auto odd = ParseSpdxPackages(R"({"spdxVersion": "SPDX-2.3", "relationships": [{"relationshipType": 1}],
      "packages": [{"name": ["x"], "SPDXID": [{"a": 1}], "versionInfo": 3,
                    "externalRefs": [{"referenceType": "purl", "referenceLocator": {"x": 1}}]},
                   {"name": "ok", "SPDXID": "SPDXRef-A", "versionInfo": ["1"],
                    "externalRefs": [{"referenceType": ["purl"]}, {"referenceType": "purl", "referenceLocator": "pkg:npm/ok@1"}]}]})",
                               "x");
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  ASSERT_EQ(odd->size(), 1u);
  EXPECT_EQ((*odd)[0].name, "ok");
  EXPECT_EQ((*odd)[0].version, "");
  auto npm = ParseNpmLock(R"({"packages": {"node_modules/a": {"version": "1", "link": "yes"}}})", "lock");
  ASSERT_TRUE(npm.ok());
  EXPECT_EQ(npm->size(), 1u);

  EXPECT_FALSE(ParseSpdxPackages("{\"bomFormat\": \"CycloneDX\"}", "x").ok());
  EXPECT_FALSE(ParseSpdxPackages("not json", "x").ok());
  EXPECT_TRUE(ParseSpdxPackages("{\"spdxVersion\": \"SPDX-2.3\"}", "x")->empty());
}

}  // namespace
}  // namespace kiln::executor

#include "executor/image/rpm_db.h"
#include "tests/testing/rpm_fixture.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

// A header blob as rpm stores it: index count, data length, index entries, data.
std::string RpmHeader(const std::vector<std::tuple<uint32_t, uint32_t, std::string>>& entries) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  std::string index, data;
  for (const auto& [tag, type, value] : entries) {
    index += be32(tag) + be32(type) + be32(static_cast<uint32_t>(data.size())) + be32(1);
    data += value;
  }
  return be32(static_cast<uint32_t>(entries.size())) + be32(static_cast<uint32_t>(data.size())) + index + data;
}

TEST(RpmDbTest, HeaderFieldsMakeTheEpochVersionReleaseAndPurl) {
  std::string epoch{"\0\0\0\3", 4};
  std::string h = RpmHeader({{1000, 6, std::string("openssl-libs\0", 13)},
                             {1003, 4, epoch},
                             {1001, 6, std::string("3.0.7\0", 6)},
                             {1002, 6, std::string("27.el9\0", 7)},
                             {1022, 6, std::string("x86_64\0", 7)},
                             {1014, 6, std::string("ASL 2.0\0", 8)}});
  std::optional<Package> p = ParseRpmHeader(h, "/var/lib/rpm/rpmdb.sqlite", "redhat");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "openssl-libs");
  EXPECT_EQ(p->version, "3:3.0.7-27.el9");
  EXPECT_EQ(p->arch, "x86_64");
  EXPECT_EQ(p->license, "ASL 2.0");
  EXPECT_EQ(p->purl, "pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&epoch=3");

  // Keys rpm trusts are not packages; truncated or lying headers are skipped, never read past.
  EXPECT_FALSE(ParseRpmHeader(RpmHeader({{1000, 6, std::string("gpg-pubkey\0", 11)}, {1001, 6, std::string("1\0", 2)}}),
                              "x", "fedora"));
  EXPECT_FALSE(ParseRpmHeader(h.substr(0, h.size() - 3), "x", "fedora"));
  std::string lying = h;
  lying[3] = '\x7f';  // 127 index entries claimed
  EXPECT_FALSE(ParseRpmHeader(lying, "x", "fedora"));
  EXPECT_FALSE(ParseRpmHeader("", "x", "fedora"));
  std::string unterminated = RpmHeader({{1000, 6, "no-nul"}, {1001, 6, std::string("1\0", 2)}});
  unterminated.resize(unterminated.size() - 2);  // the name's string now runs off the data
  EXPECT_FALSE(ParseRpmHeader(unterminated, "x", "fedora"));
}

// A database written by rpm itself (Debian's rpm 4.18, SQLite backend), holding one package built
// by rpmbuild: read back from its bytes.
TEST(RpmDbTest, ReadsADatabaseRpmWrote) {
  if (!kiln::testing::HaveRpm()) {
    GTEST_SKIP() << "rpm and rpmbuild are not installed (scripts/setup.sh installs Debian's rpm)";
  }
  kiln::testing::TempDir dir;
  std::string out;
  std::string path = kiln::testing::MakeRpmDatabase(dir.path(), &out);
  ASSERT_FALSE(path.empty()) << out;
  std::string db = kiln::testing::ReadFile(path);
  auto pkgs = ParseRpmSqlite(db, "/var/lib/rpm/rpmdb.sqlite", "fedora");
  ASSERT_TRUE(pkgs.ok()) << pkgs.status().ToString();
  ASSERT_EQ(pkgs->size(), 1u);
  EXPECT_EQ((*pkgs)[0].name, "kiln-hello");
  EXPECT_EQ((*pkgs)[0].version, "2:1.2.3-4");
  EXPECT_EQ((*pkgs)[0].license, "MIT");
  EXPECT_EQ((*pkgs)[0].purl, "pkg:rpm/fedora/kiln-hello@1.2.3-4?arch=noarch&epoch=2");

  EXPECT_EQ(ParseRpmSqlite("not a database at all, just some bytes", "/x", "fedora").status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::executor
