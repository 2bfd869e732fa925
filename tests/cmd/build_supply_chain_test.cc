// `kiln build --sbom --provenance` end to end: the SPDX SBOM lists the packages of the image's
// package databases (a dpkg status file and npm lockfiles, one of them deleted by a later layer),
// the SLSA provenance records the build with secret-looking build args redacted, and both are found
// on the local registry as an `oras discover`-style client finds them: the referrers API first
// (Debian's docker-registry 2.8 has none: 404), then the tag-schema fallback index. Also: two
// builds on two state directories with SOURCE_DATE_EPOCH give the same image and the same SBOM.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"
#include "tests/testing/rpm_fixture.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;

constexpr char kDpkgStatus[] =
    "Package: libfoo1\n"
    "Status: install ok installed\n"
    "Priority: optional\n"
    "Architecture: amd64\n"
    "Version: 1:2.3+dfsg-1\n"
    "Description: a library\n"
    " with a long description\n"
    "\n"
    "Package: removed-tool\n"
    "Status: deinstall ok config-files\n"
    "Architecture: amd64\n"
    "Version: 0.9\n"
    "\n"
    "Package: tzdata\n"
    "Status: install ok installed\n"
    "Architecture: all\n"
    "Version: 2024a-0+deb12u1\n";

constexpr char kLock[] = R"({
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0", "@scope/util": "^2.0.0"}},
    "node_modules/left-pad": {"version": "1.3.0", "license": "WTFPL"},
    "node_modules/@scope/util": {"version": "2.0.1"},
    "node_modules/@scope/util/node_modules/left-pad": {"version": "1.1.0"}
  }
})";

constexpr char kStaleLock[] = R"({"lockfileVersion": 2, "packages": {"node_modules/stale-pkg": {"version": "6.6.6"}}})";

class BuildSupplyChainTest : public testing::BuildEnvSuite {
 protected:
  static std::string Context() {
    return env_->Context({{"Dockerfile",
                           "FROM @REG@/busybox:latest\n"
                           "ARG API_TOKEN\n"
                           "ARG GREETING\n"
                           "COPY status /var/lib/dpkg/status\n"
                           "COPY package-lock.json /app/package-lock.json\n"
                           "COPY stale-lock.json /old/package-lock.json\n"
                           "RUN rm /old/package-lock.json && echo built > /app/built\n"},
                          {"status", kDpkgStatus},
                          {"package-lock.json", kLock},
                          {"stale-lock.json", kStaleLock}});
  }

  // An HTTP GET on the registry: the status code, and the body in *body.
  static int Get(const std::string& path, const std::string& accept, std::string* body) {
    std::string out = env_->NewDir("http") + "/body";
    std::string code;
    int rc = RunShell("curl -s -o " + ShellQuote(out) + " -w '%{http_code}' -H " + ShellQuote("Accept: " + accept) +
                          " " + ShellQuote("http://" + env_->reg().host() + path),
                      &code);
    EXPECT_EQ(rc, 0) << code;
    *body = ReadFile(out);
    return std::atoi(code.c_str());
  }

  // Uploads `bytes` as a blob of `repo` (POST, then a monolithic PUT), as oras does.
  static void PushBlob(const std::string& repo, const std::string& bytes) {
    std::string file = env_->NewDir("blob") + "/b";
    testing::WriteFile(file, bytes);
    std::string host = "http://" + env_->reg().host(), out;
    std::string script =
        "loc=$(curl -s -D - -o /dev/null -X POST " + host + "/v2/" + repo + "/blobs/uploads/ | tr -d '\\r' | "
        "sed -n 's/^[Ll]ocation: //p'); case \"$loc\" in http*) ;; *) loc=\"" + host + "$loc\";; esac; "
        "case \"$loc\" in *\\?*) sep='&';; *) sep='?';; esac; "
        "curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @" + ShellQuote(file) +
        " \"$loc${sep}digest=sha256:" + Sha256Hex(bytes) + "\"";
    ASSERT_EQ(RunShell(script, &out), 0) << out;
  }
  static void PushManifest(const std::string& repo, const std::string& ref, const std::string& media_type,
                           const std::string& bytes) {
    std::string file = env_->NewDir("manifest") + "/m", out;
    testing::WriteFile(file, bytes);
    ASSERT_EQ(RunShell("curl -sf -X PUT -H " + ShellQuote("Content-Type: " + media_type) + " --data-binary @" +
                           ShellQuote(file) + " http://" + env_->reg().host() + "/v2/" + repo + "/manifests/" + ref,
                       &out),
              0)
        << out;
  }

  static std::string Sha256Hex(const std::string& bytes) {
    std::string f = env_->NewDir("hash") + "/f";
    FILE* fp = fopen(f.c_str(), "wb");
    fwrite(bytes.data(), 1, bytes.size(), fp);
    fclose(fp);
    std::string out;
    EXPECT_EQ(RunShell("sha256sum " + ShellQuote(f), &out), 0);
    return out.substr(0, 64);
  }

  // ':' and '/' percent-encoded, as in a purl qualifier value.
  static std::string Encoded(const std::string& s) {
    std::string out;
    for (char c : s) out += c == ':' ? "%3A" : c == '/' ? "%2F" : std::string(1, c);
    return out;
  }

  static std::vector<std::string> Purls(const json& sbom) {
    std::vector<std::string> out;
    for (const json& p : sbom["packages"]) out.push_back(p["externalRefs"][0]["referenceLocator"]);
    return out;
  }
};

TEST_F(BuildSupplyChainTest, SbomAndProvenanceAreDiscoverableReferrers) {
  std::string out = env_->NewDir("docs");
  std::string ctx = Context();
  auto r = env_->Build(ctx, "--destination " + env_->Ref("sc/app:1") + " --sbom=" + out + "/sbom.json" +
                                " --provenance=" + out + "/prov.json --build-arg API_TOKEN=hunter2-secret" +
                                " --build-arg GREETING=hello");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err.find("hunter2-secret"), std::string::npos) << r.err;
  auto img = env_->Read("sc/app:1", false);
  std::string hex = img.digest.substr(7);

  // The SBOM: the image as root package, the installed dpkg packages and the live lockfile's.
  std::string sbom_bytes = ReadFile(out + "/sbom.json");
  json sbom = json::parse(sbom_bytes);
  EXPECT_EQ(sbom["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(sbom["SPDXID"], "SPDXRef-DOCUMENT");
  const json& root = sbom["packages"][0];
  EXPECT_EQ(root["SPDXID"], "SPDXRef-Image");
  EXPECT_EQ(root["checksums"][0]["checksumValue"], hex);
  EXPECT_EQ(root["name"], env_->Ref("sc/app"));
  EXPECT_EQ(sbom["relationships"][0]["relatedSpdxElement"], "SPDXRef-Image");
  std::vector<std::string> purls = Purls(sbom);
  std::vector<std::string> want = {
      "pkg:oci/app@sha256%3A" + hex + "?repository_url=" + Encoded(env_->Ref("sc/app")),
      "pkg:deb/debian/libfoo1@1%3A2.3%2Bdfsg-1?arch=amd64",
      "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all",
      "pkg:npm/%40scope/util@2.0.1",
      "pkg:npm/left-pad@1.1.0",
      "pkg:npm/left-pad@1.3.0",
  };
  EXPECT_EQ(purls, want) << sbom_bytes;
  EXPECT_EQ(sbom_bytes.find("removed-tool"), std::string::npos);
  EXPECT_EQ(sbom_bytes.find("stale-pkg"), std::string::npos);  // its lockfile was deleted by RUN rm
  EXPECT_EQ(sbom["packages"][1]["versionInfo"], "1:2.3+dfsg-1");
  EXPECT_EQ(sbom["relationships"].size(), 6u);

  // The provenance.
  std::string prov_bytes = ReadFile(out + "/prov.json");
  EXPECT_EQ(prov_bytes.find("hunter2-secret"), std::string::npos);
  json prov = json::parse(prov_bytes);
  EXPECT_EQ(prov["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(prov["predicateType"], "https://slsa.dev/provenance/v1");
  EXPECT_EQ(prov["subject"][0]["digest"]["sha256"], hex);
  EXPECT_EQ(prov["subject"][0]["name"], env_->Ref("sc/app"));
  const json& def = prov["predicate"]["buildDefinition"];
  EXPECT_EQ(def["buildType"], "urn:kiln:buildtype:dockerfile:v1");
  EXPECT_EQ(def["externalParameters"]["dockerfile"]["path"], "Dockerfile");
  EXPECT_EQ(def["externalParameters"]["dockerfile"]["digest"]["sha256"], Sha256Hex(ReadFile(ctx + "/Dockerfile")));
  EXPECT_EQ(def["externalParameters"]["buildArgs"]["API_TOKEN"], "[REDACTED]");
  EXPECT_EQ(def["externalParameters"]["buildArgs"]["GREETING"], "hello");
  auto base = env_->Read("busybox:latest", false);
  ASSERT_EQ(def["resolvedDependencies"].size(), 1u) << prov_bytes;
  EXPECT_EQ(def["resolvedDependencies"][0]["digest"]["sha256"], base.digest.substr(7));
  EXPECT_EQ(def["resolvedDependencies"][0]["uri"], "docker://" + env_->Ref("busybox") + "@" + base.digest);
  std::string builder = prov["predicate"]["runDetails"]["builder"]["id"];
  EXPECT_EQ(builder.rfind("urn:kiln:builder:kiln-", 0), 0u) << builder;

  // Discovery as oras does it: the referrers API (none on this registry), then the fallback tag.
  std::string body;
  EXPECT_EQ(Get("/v2/sc/app/referrers/" + img.digest, "application/vnd.oci.image.index.v1+json", &body), 404) << body;
  ASSERT_EQ(Get("/v2/sc/app/manifests/sha256-" + hex, "application/vnd.oci.image.index.v1+json", &body), 200) << body;
  json index = json::parse(body);
  EXPECT_EQ(index["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(index["manifests"].size(), 2u) << body;
  std::map<std::string, std::string> expected_doc = {{"application/spdx+json", sbom_bytes},
                                                     {"application/vnd.in-toto+json", prov_bytes}};
  std::set<std::string> types;
  for (const json& entry : index["manifests"]) {
    std::string type = entry["artifactType"];
    types.insert(type);
    std::string digest = entry["digest"];
    ASSERT_EQ(Get("/v2/sc/app/manifests/" + digest, "application/vnd.oci.image.manifest.v1+json", &body), 200);
    EXPECT_EQ("sha256:" + Sha256Hex(body), digest);
    json m = json::parse(body);
    EXPECT_EQ(m["artifactType"], type);
    EXPECT_EQ(m["subject"]["digest"], img.digest);
    EXPECT_EQ(m["subject"]["mediaType"], img.manifest["mediaType"]);
    EXPECT_EQ(m["subject"]["size"], img.manifest_raw.size());
    EXPECT_EQ(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    ASSERT_EQ(Get("/v2/sc/app/blobs/" + m["config"]["digest"].get<std::string>(), "*/*", &body), 200);
    EXPECT_EQ(body, "{}");
    ASSERT_EQ(m["layers"].size(), 1u);
    EXPECT_EQ(m["layers"][0]["mediaType"], type);
    std::string layer = m["layers"][0]["digest"];
    ASSERT_EQ(Get("/v2/sc/app/blobs/" + layer, "*/*", &body), 200);
    EXPECT_EQ("sha256:" + Sha256Hex(body), layer);
    EXPECT_EQ(body, expected_doc[type]) << type;  // the pushed document is the one written to FILE
  }
  EXPECT_EQ(types, (std::set<std::string>{"application/spdx+json", "application/vnd.in-toto+json"}));

  // The same build again: the image and documents are the same, so the index gains nothing.
  auto again = env_->Build(ctx, "--reproducible --destination " + env_->Ref("sc/app:2") + " --sbom --provenance");
  ASSERT_EQ(again.rc, 0) << again.err;
  auto img2 = env_->Read("sc/app:2", false);
  ASSERT_EQ(Get("/v2/sc/app/manifests/sha256-" + img2.digest.substr(7), "application/vnd.oci.image.index.v1+json",
                &body),
            200);
  EXPECT_EQ(json::parse(body)["manifests"].size(), 2u) << body;
}

TEST_F(BuildSupplyChainTest, NoPushWritesTheFilesOnly) {
  std::string out = env_->NewDir("nopush");
  auto r = env_->Build(Context(), "--destination " + env_->Ref("sc/nopush:1") + " --no-push --digest-file " + out +
                                      "/digest --sbom=" + out + "/sbom.json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(env_->TagExists("sc/nopush:1"));
  json sbom = json::parse(ReadFile(out + "/sbom.json"));
  EXPECT_EQ(sbom["packages"][0]["versionInfo"], ReadFile(out + "/digest"));
  EXPECT_EQ(sbom["packages"].size(), 6u);
  EXPECT_FALSE(env_->TagExists("sc/nopush:sha256-" + ReadFile(out + "/digest").substr(7)));
}

// Two builds with a RUN step on two fresh state directories (nothing shared, not even the base's
// blobs) with SOURCE_DATE_EPOCH set give the same image, and so the same SBOM.
TEST_F(BuildSupplyChainTest, TwoStateDirsGiveTheSameDigestWithSourceDateEpoch) {
  std::string ctx = Context();
  std::string digests[2], sboms[2];
  for (int i = 0; i < 2; ++i) {
    std::string out = env_->NewDir("repro");
    auto r = testing::RunKiln(env_->kiln(),
                              "build --context " + ShellQuote(ctx) + " --state-dir " + ShellQuote(out + "/state") +
                                  " --insecure --insecure-pull --destination " +
                                  env_->Ref("sc/repro:" + std::to_string(i)) + " --digest-file " + out +
                                  "/digest --sbom=" + out + "/sbom.json",
                              "SOURCE_DATE_EPOCH=1700000000");
    ASSERT_EQ(r.rc, 0) << r.err;
    digests[i] = ReadFile(out + "/digest");
    sboms[i] = ReadFile(out + "/sbom.json");
    if (i == 0) ::sleep(1);  // the files RUN writes get other mtimes
  }
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(sboms[0], sboms[1]);
  EXPECT_NE(sboms[0].find("\"created\": \"2023-11-14T22:13:20Z\""), std::string::npos) << sboms[0];
}

// A build for two platforms: each platform's image gets its own SBOM (its own dpkg database) and
// provenance, attached to its own manifest under the index, and written to per-platform files.
TEST_F(BuildSupplyChainTest, MultiPlatformBuildAttachesEachPlatformsOwnDocuments) {
  auto status_for = [](const std::string& pkg, const std::string& arch) {
    return "Package: " + pkg + "\nStatus: install ok installed\nArchitecture: " + arch + "\nVersion: 1.0\n";
  };
  std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.status /var/lib/dpkg/status\n"},
                                   {"amd64.status", status_for("only-on-amd64", "amd64")},
                                   {"arm64.status", status_for("only-on-arm64", "arm64")}});
  std::string out = env_->NewDir("mp-docs");
  auto r = env_->Build(ctx, "--destination " + env_->Ref("sc/multi:1") + " --custom-platform linux/amd64,linux/arm64" +
                                " --sbom=" + out + "/sbom.json --provenance=" + out + "/prov.json");
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string body;
  ASSERT_EQ(Get("/v2/sc/multi/manifests/1", "application/vnd.oci.image.index.v1+json", &body), 200) << body;
  json index = json::parse(body);
  ASSERT_EQ(index["manifests"].size(), 2u) << body;
  for (const json& child : index["manifests"]) {
    std::string arch = child["platform"]["architecture"];
    std::string platform = "linux-" + arch + (child["platform"].contains("variant")
                                                  ? "-" + child["platform"]["variant"].get<std::string>() : "");
    std::string digest = child["digest"];
    std::string sbom_bytes = ReadFile(out + "/sbom." + platform + ".json");
    json sbom = json::parse(sbom_bytes);
    EXPECT_EQ(sbom["packages"][0]["checksums"][0]["checksumValue"], digest.substr(7)) << arch;
    EXPECT_NE(sbom_bytes.find("only-on-" + arch), std::string::npos) << sbom_bytes;
    EXPECT_EQ(sbom_bytes.find(arch == "amd64" ? "only-on-arm64" : "only-on-amd64"), std::string::npos) << sbom_bytes;
    json prov = json::parse(ReadFile(out + "/prov." + platform + ".json"));
    EXPECT_EQ(prov["subject"][0]["digest"]["sha256"], digest.substr(7));

    // Discovery for that platform's manifest finds both documents, the SBOM being the file's bytes.
    ASSERT_EQ(Get("/v2/sc/multi/manifests/sha256-" + digest.substr(7), "application/vnd.oci.image.index.v1+json", &body),
              200) << arch;
    json refs = json::parse(body);
    ASSERT_EQ(refs["manifests"].size(), 2u) << body;
    for (const json& entry : refs["manifests"]) {
      if (entry["artifactType"] != "application/spdx+json") continue;
      ASSERT_EQ(Get("/v2/sc/multi/manifests/" + entry["digest"].get<std::string>(),
                    "application/vnd.oci.image.manifest.v1+json", &body), 200);
      json m = json::parse(body);
      EXPECT_EQ(m["subject"]["digest"], digest);
      ASSERT_EQ(Get("/v2/sc/multi/blobs/" + m["layers"][0]["digest"].get<std::string>(), "*/*", &body), 200);
      EXPECT_EQ(body, sbom_bytes) << arch;
    }
  }
}

// A base image with an SBOM of its own attached (here by hand, as `oras attach` would): the SBOM of
// an image built on it adds the packages only that SBOM knows (a Go binary's module), while what the
// layers' databases show is listed once, from the layers.
TEST_F(BuildSupplyChainTest, TheBaseImagesOwnSbomAddsWhatTheLayersCannotShow) {
  std::string base_ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY tool /usr/local/bin/tool\n"},
                                        {"tool", "a static binary\n"}});
  auto base = env_->Build(base_ctx, "--destination " + env_->Ref("sc/sbombase:1"));
  ASSERT_EQ(base.rc, 0) << base.err;
  auto img = env_->Read("sc/sbombase:1", false);
  std::string doc = R"({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "base",
    "packages": [
      {"name": "base", "SPDXID": "SPDXRef-Root", "versionInfo": "1",
       "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:oci/base@x"}]},
      {"name": "example.org/tool", "SPDXID": "SPDXRef-Go", "versionInfo": "v1.2.3",
       "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:golang/example.org/tool@v1.2.3"}]},
      {"name": "libfoo1", "SPDXID": "SPDXRef-Deb", "versionInfo": "1:2.3+dfsg-1",
       "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:deb/debian/libfoo1@1%3A2.3%2Bdfsg-1?arch=amd64"}]}],
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Root"}]})";
  PushBlob("sc/sbombase", "{}");
  PushBlob("sc/sbombase", doc);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"artifactType", "application/spdx+json"},
                   {"config", {{"mediaType", "application/vnd.oci.empty.v1+json"},
                               {"digest", "sha256:" + Sha256Hex("{}")}, {"size", 2}}},
                   {"layers", json::array({{{"mediaType", "application/spdx+json"},
                                            {"digest", "sha256:" + Sha256Hex(doc)}, {"size", doc.size()}}})},
                   {"subject", {{"mediaType", img.manifest["mediaType"]}, {"digest", img.digest},
                                {"size", img.manifest_raw.size()}}}};
  std::string mbytes = manifest.dump();
  std::string mdigest = "sha256:" + Sha256Hex(mbytes);
  PushManifest("sc/sbombase", mdigest, "application/vnd.oci.image.manifest.v1+json", mbytes);
  json fallback = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.index.v1+json"},
                   {"manifests", json::array({{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                               {"digest", mdigest}, {"size", mbytes.size()},
                                               {"artifactType", "application/spdx+json"}}})}};
  PushManifest("sc/sbombase", "sha256-" + img.digest.substr(7), "application/vnd.oci.image.index.v1+json",
               fallback.dump());

  std::string out = env_->NewDir("child-sbom");
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/sc/sbombase:1\nCOPY status /var/lib/dpkg/status\n"},
                                   {"status", kDpkgStatus}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("sc/sbomchild:1") + " --sbom=" + out + "/sbom.json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("has its own SBOM (" + mdigest + "): 2 packages"), std::string::npos) << r.err;
  json sbom = json::parse(ReadFile(out + "/sbom.json"));
  std::vector<std::string> purls = Purls(sbom);
  EXPECT_EQ(std::count(purls.begin(), purls.end(), "pkg:golang/example.org/tool@v1.2.3"), 1) << sbom.dump(1);
  EXPECT_EQ(std::count(purls.begin(), purls.end(), "pkg:deb/debian/libfoo1@1%3A2.3%2Bdfsg-1?arch=amd64"), 1);
  EXPECT_EQ(std::count(purls.begin(), purls.end(), "pkg:oci/base@x"), 0);
  for (const json& p : sbom["packages"]) {
    if (p["name"] == "example.org/tool") {
      EXPECT_EQ(p["sourceInfo"], "the SBOM attached to " + env_->reg().host() + "/sc/sbombase@" + img.digest);
    }
    if (p["name"] == "libfoo1") { EXPECT_EQ(p["sourceInfo"], "installed package database: /var/lib/dpkg/status"); }
  }
}

// An image with an RPM database (rpmdb.sqlite, as dnf leaves it in Fedora and UBI 9 images, here
// written by Debian's rpm): its packages are in the SBOM, named by the os-release ID.
TEST_F(BuildSupplyChainTest, RpmPackagesFromTheSqliteDatabase) {
  if (!testing::HaveRpm()) GTEST_SKIP() << "rpm and rpmbuild are not installed (scripts/setup.sh installs them)";
  std::string fixture = env_->NewDir("rpm"), error;
  std::string db = testing::MakeRpmDatabase(fixture, &error);
  ASSERT_FALSE(db.empty()) << error;
  std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nCOPY os-release /etc/os-release\n"
                                                  "COPY rpmdb.sqlite /usr/lib/sysimage/rpm/rpmdb.sqlite\n"},
                                   {"os-release", "NAME=Fedora Linux\nID=fedora\nVERSION_ID=40\n"},
                                   {"rpmdb.sqlite", ReadFile(db)}});
  std::string out = env_->NewDir("rpm-sbom");
  auto r = env_->Build(ctx, "--destination " + env_->Ref("sc/rpm:1") + " --sbom=" + out + "/sbom.json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("SBOM: 1 package from /usr/lib/sysimage/rpm/rpmdb.sqlite"), std::string::npos) << r.err;
  json sbom = json::parse(ReadFile(out + "/sbom.json"));
  EXPECT_EQ(Purls(sbom), (std::vector<std::string>{
                             "pkg:oci/rpm@sha256%3A" + env_->Read("sc/rpm:1", false).digest.substr(7) +
                                 "?repository_url=" + Encoded(env_->Ref("sc/rpm")),
                             "pkg:rpm/fedora/kiln-hello@1.2.3-4?arch=noarch&epoch=2"}));
  EXPECT_EQ(sbom["packages"][1]["versionInfo"], "2:1.2.3-4");
}

}  // namespace
}  // namespace kiln
