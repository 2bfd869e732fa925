// Registry faults at scale: 50 `kiln build` + push runs through tests/testing/fault_proxy.py with
// about 20% of requests faulted (500, 503, resets before and in the middle of request and response
// bodies, delays, a flipped byte in a response body). Every build must end within a bound, either
// pushed or failed with a message naming the registry; afterwards every tag in the registry (read
// straight from it, around the proxy) must have a manifest that parses and blobs that exist and
// hash to their digests.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "registry/client.h"
#include "registry/curl_transport.h"
#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using nlohmann::json;

constexpr int kBuilds = 50;
constexpr int kBoundSeconds = 60;

// Each rule fires on a match with its chance, else the next is tried: about 20% of requests overall.
const char kFaults[] =
    "*: status=500 chance=0.035; "
    "*: status=503 chance=0.035; "
    "*: reset chance=0.03; "
    "PATCH,PUT,POST *: drop-request-after=3000 chance=0.04; "
    "GET *: drop-after=700 chance=0.04; "
    "GET *: flip-byte=60 chance=0.03; "
    "*: delay=0.4 chance=0.03";

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildFaultsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    testing::RegistryOptions faulty;
    faulty.fault_proxy = true;
    env_ = new testing::BuildEnv(KILN_BINARY, faulty);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (env_ == nullptr) GTEST_SKIP() << "needs root and Debian's busybox-static";
    env_->reg().SetFaults("");
  }

  // GET on the registry itself (not through the proxy).
  static Result<std::string> DirectGet(registry::Transport& wire, const std::string& path) {
    registry::Request req;
    req.url = "http://" + env_->reg().direct_host() + path;
    KILN_ASSIGN_OR_RETURN(registry::Response resp, wire.RoundTrip(req));
    if (resp.status != 200) return Unavailable("GET " + path + ": " + std::to_string(resp.status));
    return ReadAll(*resp.body, 16 << 20);
  }

  // Verifies repo:tag straight on the registry: the manifest (and for an index each child) parses,
  // and every blob it names exists and hashes to its digest. Returns what is wrong, "" when sound.
  static std::string VerifyTag(registry::Repository& repo, const std::string& ref, int depth = 0) {
    auto m = repo.GetManifest(ref);
    if (!m.ok()) return "manifest: " + m.status().message();
    json doc;
    try {
      doc = json::parse(m->bytes);
    } catch (const std::exception& e) {
      return std::string("manifest does not parse: ") + e.what();
    }
    std::vector<json> blobs;
    if (doc.contains("manifests")) {
      if (depth > 0) return "nested index";
      for (const json& child : doc["manifests"]) {
        std::string bad = VerifyTag(repo, child.value("digest", ""), depth + 1);
        if (!bad.empty()) return "child " + child.value("digest", "") + ": " + bad;
      }
      return "";
    }
    if (!doc.contains("config") || !doc.contains("layers")) return "manifest without config or layers";
    blobs.push_back(doc["config"]);
    for (const json& l : doc["layers"]) blobs.push_back(l);
    for (const json& b : blobs) {
      auto digest = Digest::Parse(b.value("digest", ""));
      if (!digest.ok()) return "bad digest in manifest: " + b.dump();
      auto reader = repo.GetBlob(*digest, b.value("size", int64_t{-1}));
      if (!reader.ok()) return "blob " + digest->ToString() + ": " + reader.status().message();
      char buf[64 << 10];
      while (true) {
        auto n = (*reader)->Read(buf, sizeof buf);
        if (!n.ok()) {
        std::error_code ec;
        auto on_disk = std::filesystem::file_size(env_->reg().BlobPath(digest->ToString()), ec);
        auto head = repo.HeadBlob(*digest);
        return "blob " + digest->ToString() + ": " + n.status().message() + " (on disk: " +
               (ec ? ec.message() : std::to_string(on_disk)) + " bytes; HEAD size " +
               (head.ok() && *head ? std::to_string(**head) : std::string("none")) + ")";
      }
        if (*n == 0) break;
      }
    }
    return "";
  }

  static testing::BuildEnv* env_;
};
testing::BuildEnv* BuildFaultsTest::env_ = nullptr;

TEST_F(BuildFaultsTest, FaultsAtScale) {
  env_->reg().ClearRequests();
  env_->reg().SetFaults(kFaults);
  int succeeded = 0, failed_clearly = 0, failed_unclearly = 0, hung = 0;
  std::string state = env_->NewDir("scale-state");
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kBuilds; ++i) {
    // Several layers with content unique to the build, so its blobs are really uploaded.
    std::string n = std::to_string(i);
    std::string ctx = env_->Context(
        {{"Dockerfile",
          "FROM @REG@/busybox:latest\n"
          "RUN echo build " + n + " > /id && dd if=/dev/urandom of=/noise bs=1k count=" +
              std::to_string(16 + (i % 5) * 32) + " 2>/dev/null\n"
          "COPY data.txt /data.txt\n"
          "RUN mkdir -p /etc/app && echo " + n + " > /etc/app/conf && rm -f /bin/vi\n"
          "LABEL build=" + n + "\n"},
         {"data.txt", std::string(2000 + i * 97, static_cast<char>('a' + i % 26))}});
    std::string repo = i % 3 == 0 ? "scale/a" : (i % 3 == 1 ? "scale/b" : "scale/c");
    std::string dests = " --destination " + env_->Ref(repo + ":" + n);
    if (i % 4 == 0) dests += " --destination " + env_->Ref(repo + ":latest");
    // Every fifth build starts from an empty state directory, so its base is pulled through the faults.
    std::string sd = i % 5 == 0 ? env_->NewDir("scale-fresh") : state;
    auto run = testing::RunKiln(KILN_BINARY,
                                "build --context " + ctx + " --state-dir " + sd + " --insecure --insecure-pull" + dests +
                                    " --push-retry 2 --image-download-retry 2",
                                "", "timeout -k 5 " + std::to_string(kBoundSeconds));
    for (size_t at = 0; (at = run.err.find("ed upload of", at)) != std::string::npos; ++at) {
      size_t b = run.err.rfind('\n', at), e = run.err.find('\n', at);
      std::cout << "build " << i << ": " << run.err.substr(b == std::string::npos ? 0 : b + 1, e - b) << "\n";
    }
    if (run.rc == 0) {
      ++succeeded;
    } else if (run.rc == 124 || run.rc == 137) {
      ++hung;
      ADD_FAILURE() << "build " << i << " ran over " << kBoundSeconds << " s:\n" << run.err;
    } else {
      // Clear: an ordinary failure exit (no signal), naming the registry, with no C++ crash text.
      bool clear = run.rc > 0 && run.rc < 128 && Has(run.err, env_->reg().host()) && !Has(run.err, "terminate called");
      if (clear) {
        ++failed_clearly;
        std::string last = run.err.substr(run.err.rfind('\n', run.err.size() - 2) + 1);
        std::cout << "build " << i << " failed (rc " << run.rc << "): " << last;
      } else {
        ++failed_unclearly;
        ADD_FAILURE() << "build " << i << " failed without a clear message (rc " << run.rc << "):\n" << run.err;
      }
    }
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string stats = env_->reg().ProxyStats();
  size_t requests = env_->reg().Requests().size();
  env_->reg().SetFaults("");
  int faults = json::parse(stats).value("faults", 0);

  // Every tag that exists, read around the proxy.
  registry::CurlTransport wire;
  registry::AnonymousKeychain keychain;
  registry::ClientOptions co;
  co.insecure_registries.insert(env_->reg().direct_host());
  registry::Client direct(&wire, &keychain, co);
  int tags = 0, bad = 0;
  auto catalog = DirectGet(wire, "/v2/_catalog?n=1000");
  ASSERT_TRUE(catalog.ok()) << catalog.status().message();
  for (const json& name : json::parse(*catalog).value("repositories", json::array())) {
    std::string repo_name = name.get<std::string>();
    auto list = DirectGet(wire, "/v2/" + repo_name + "/tags/list");
    ASSERT_TRUE(list.ok()) << list.status().message();
    json tag_list = json::parse(*list)["tags"];
    if (!tag_list.is_array()) continue;
    auto repo = direct.Open(direct.PushEndpoint(env_->reg().direct_host()), repo_name, false);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    for (const json& t : tag_list) {
      ++tags;
      std::string wrong = VerifyTag(**repo, t.get<std::string>());
      if (!wrong.empty()) {
        ++bad;
        ADD_FAILURE() << repo_name << ":" << t.get<std::string>() << ": " << wrong;
      }
    }
  }

  std::cout << "faults injected / builds succeeded / failed clearly / hung / bad tags: " << faults << " / "
            << succeeded << " / " << failed_clearly << " / " << hung << " / " << bad << "   (" << requests
            << " requests, " << tags << " tags verified, " << static_cast<int>(took) << " s)\n";
  EXPECT_EQ(hung, 0);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(failed_unclearly, 0);
  EXPECT_EQ(succeeded + failed_clearly, kBuilds);
  EXPECT_GT(faults, static_cast<int>(requests) / 10) << "the proxy injected too few faults to mean anything";
  EXPECT_GT(succeeded, kBuilds / 2) << "retries and resumes should carry most builds through";
  EXPECT_GE(tags, succeeded);
}

}  // namespace
}  // namespace kiln
