// The whole build pipeline in-process (executor/pipeline/build.h): RunBuild with a FakeCommandRunner
// for RUN and a loopback docker-registry for pulls and pushes, no kiln binary. Each test checks
// exactly which commands ran (the runner's recorded specs) and what each pushed layer holds (read
// back from the registry through kiln's registry client and listed with libarchive). Needs no privilege:
// ctest runs it once more as nobody (tests/executor/CMakeLists.txt).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/io.h"
#include "executor/pipeline/build.h"
#include "executor/sandbox/fake_command_runner.h"
#include "layers/docker_archive_store.h"
#include "layers/oci_layout_store.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using sandbox::FakeCommandRunner;
using sandbox::FakeFileChange;
using sandbox::FakeRun;
using testing::TempDir;
using testing::WriteFile;

// path → content ("" for directories, "-> TARGET" for symlinks) of one layer blob.
using LayerListing = std::map<std::string, std::string>;

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = testing::RegistryServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    registry::ClientOptions co;
    co.insecure_registries = {server_->host()};
    reader_ = std::make_unique<registry::Client>(&wire_, &anonymous_, co);
  }

  Reference Ref(const std::string& repo_tag) const { return *Reference::Parse(server_->host() + "/" + repo_tag); }

  // Options for a build of context dir `ctx` pushed to `dest`, with a fresh state directory.
  BuildOptions Options(const std::string& ctx, const std::string& dest) {
    BuildOptions o;
    o.context = ctx;
    o.destinations = {Ref(dest)};
    o.insecure_push = o.insecure_pull = true;
    o.state_dir = tmp_.Sub("state");
    o.reproducible = true;
    // ctest runs the suite once more with KILN_PIPELINE_JOBS=4 (tests/executor/CMakeLists.txt).
    if (const char* jobs = std::getenv("KILN_PIPELINE_JOBS")) o.jobs = std::atoi(jobs);
    return o;
  }

  // Runs the build in this process with `runner`.
  Result<BuildResult> Build(const BuildOptions& o, FakeCommandRunner& runner) {
    BuildDeps deps;
    deps.log = &log_;
    deps.runner = &runner;
    deps.keychain = std::make_unique<registry::AnonymousKeychain>();
    return RunBuild(o, deps);
  }

  Result<Manifest> PulledManifest(const Reference& ref) {
    KILN_ASSIGN_OR_RETURN(auto repo, reader_->Open(reader_->PushEndpoint(ref.registry()), ref.repository(), false));
    KILN_ASSIGN_OR_RETURN(RawManifest raw, repo->GetManifest(ref.Identifier()));
    return ParseManifest(raw.bytes);
  }

  // Every entry of layer `d` of repository `ref`, decompressed by libarchive.
  LayerListing ListLayer(const Reference& ref, const Descriptor& d) {
    auto repo = reader_->Open(reader_->PushEndpoint(ref.registry()), ref.repository(), false);
    EXPECT_TRUE(repo.ok());
    auto blob = (*repo)->GetBlob(d.digest, d.size);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    auto bytes = ReadAll(**blob, 64 << 20);
    EXPECT_TRUE(bytes.ok());
    LayerListing out;
    struct archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    EXPECT_EQ(archive_read_open_memory(a, bytes->data(), bytes->size()), ARCHIVE_OK);
    struct archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      std::string content;
      if (archive_entry_filetype(e) == AE_IFLNK) {
        content = std::string("-> ") + archive_entry_symlink(e);
      } else if (archive_entry_filetype(e) == AE_IFREG) {
        content.resize(static_cast<size_t>(archive_entry_size(e)));
        archive_read_data(a, content.data(), content.size());
      }
      out[archive_entry_pathname(e)] = content;
    }
    archive_read_free(a);
    return out;
  }

  static testing::RegistryServer* server_;
  TempDir tmp_;
  MemoryBuildLog log_;
  registry::CurlTransport wire_{registry::CurlTransportOptions{}};
  registry::AnonymousKeychain anonymous_;
  std::unique_ptr<registry::Client> reader_;
};

testing::RegistryServer* PipelineTest::server_ = nullptr;

// A build stage that compiles with RUN, a final stage that copies only the result: the runner sees
// exactly the one RUN with the stage's environment and working directory, the final image holds
// exactly the copied file, and the base image (pushed by a first build) is pulled from the registry.
TEST_F(PipelineTest, TwoStagesRunAndCopyFrom) {
  // The base: a scratch image with one file, pushed by an in-process build of its own.
  WriteFile(tmp_.Sub("base/hello.txt"), "hello\n");
  WriteFile(tmp_.Sub("base/Dockerfile"), "FROM scratch\nCOPY hello.txt /etc/hello.txt\n");
  FakeCommandRunner no_runs;
  auto base = Build(Options(tmp_.Sub("base"), "pipeline/base:1"), no_runs);
  ASSERT_TRUE(base.ok()) << base.status().ToString() << "\n" << log_.text();
  EXPECT_TRUE(no_runs.specs().empty());

  WriteFile(tmp_.Sub("app/main.c"), "int main(){}\n");
  WriteFile(tmp_.Sub("app/Dockerfile"),
            "FROM " + Ref("pipeline/base:1").ToString() + " AS build\n"
            "ENV CC=cc\n"
            "WORKDIR /src\n"
            "COPY main.c .\n"
            "RUN $CC -o /out/app main.c\n"
            "FROM scratch\n"
            "COPY --from=build /out/app /usr/local/bin/app\n"
            "CMD [\"/usr/local/bin/app\"]\n");
  FakeCommandRunner runner;
  FakeRun compile;
  compile.output = "compiled\n";
  compile.changes = {FakeFileChange::Mkdir("out"), FakeFileChange::Write("out/app", "\x7f" "ELF binary", 0755)};
  runner.Push(compile);
  auto built = Build(Options(tmp_.Sub("app"), "pipeline/app:1"), runner);
  ASSERT_TRUE(built.ok()) << built.status().ToString() << "\n" << log_.text();

  // Exactly one command ran, as the Dockerfile says.
  ASSERT_EQ(runner.specs().size(), 1u);
  const sandbox::RunSpec& run = runner.specs()[0];
  EXPECT_EQ(run.argv, (std::vector<std::string>{"/bin/sh", "-c", "$CC -o /out/app main.c"}));
  EXPECT_EQ(run.workdir, "/src");
  EXPECT_NE(std::find(run.env.begin(), run.env.end(), "CC=cc"), run.env.end());
  EXPECT_EQ(run.uid, 0u);
  EXPECT_NE(log_.text().find("compiled"), std::string::npos) << log_.text();

  // The pushed image is the final stage: one layer holding only the copied binary.
  ASSERT_EQ(built->pushed.size(), 1u);
  auto m = PulledManifest(Ref("pipeline/app:1"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->layers.size(), 1u);
  LayerListing layer = ListLayer(Ref("pipeline/app:1"), m->layers[0]);
  EXPECT_EQ(layer["usr/local/bin/app"], "\x7f" "ELF binary");
  for (const auto& [path, content] : layer) {
    EXPECT_TRUE(path == "usr/local/bin/app" || path.rfind("usr/", 0) == 0) << "unexpected " << path;
  }
  EXPECT_EQ(layer.count("etc/hello.txt"), 0u);  // the build stage's files stay there
}

// With --cache, a second build of the same Dockerfile reuses the RUN layer: the runner is not called
// again, and the image is the same, byte for byte.
TEST_F(PipelineTest, CacheHitSkipsTheRun) {
  WriteFile(tmp_.Sub("ctx/Dockerfile"), "FROM scratch\nRUN generate > /data.txt\n");
  FakeRun generate;
  generate.changes = {FakeFileChange::Write("data.txt", "generated\n")};

  BuildOptions o = Options(tmp_.Sub("ctx"), "pipeline/cached:1");
  o.cache = true;
  o.cache_dir = tmp_.Sub("layer-cache");
  FakeCommandRunner first;
  first.Push(generate);
  auto one = Build(o, first);
  ASSERT_TRUE(one.ok()) << one.status().ToString() << "\n" << log_.text();
  ASSERT_EQ(first.specs().size(), 1u);

  o.state_dir = tmp_.Sub("state2");  // a fresh machine, the same cache directory
  FakeCommandRunner second;
  auto two = Build(o, second);
  ASSERT_TRUE(two.ok()) << two.status().ToString() << "\n" << log_.text();
  EXPECT_TRUE(second.specs().empty()) << "the RUN layer should have come from the cache";
  EXPECT_EQ(two->digest, one->digest);

  auto m = PulledManifest(Ref("pipeline/cached:1"));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(ListLayer(Ref("pipeline/cached:1"), m->layers[0])["data.txt"], "generated\n");
}

// A failing RUN stops the build with the step's exit code and the Dockerfile position; nothing is
// pushed, and the steps after it never run.
TEST_F(PipelineTest, FailingRunPushesNothing) {
  WriteFile(tmp_.Sub("ctx/Dockerfile"), "FROM scratch\nRUN first\nRUN second\nRUN third\n");
  FakeCommandRunner runner;
  runner.Push(FakeRun{});
  FakeRun fails;
  fails.exit_code = 3;
  fails.output = "second: broken\n";
  runner.Push(fails);
  auto r = Build(Options(tmp_.Sub("ctx"), "pipeline/failing:1"), runner);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().step_exit_code(), 3);
  EXPECT_NE(r.status().message().find("Dockerfile:3"), std::string::npos) << r.status().message();
  ASSERT_EQ(runner.specs().size(), 2u);
  EXPECT_EQ(runner.specs()[1].argv.back(), "second");
  EXPECT_FALSE(PulledManifest(Ref("pipeline/failing:1")).ok()) << "a failed build must not push a tag";
}

// Every output is a copy of the built image into a sink: the OCI layout, the docker-archive and the
// registry all hold the same manifest digest, the layout's new blobs are hard links into the store
// (no second copy of a layer), and the digest files name every destination.
TEST_F(PipelineTest, EveryOutputGetsTheSameImage) {
  WriteFile(tmp_.Sub("ctx/Dockerfile"), "FROM scratch\nRUN make\n");
  FakeRun make;
  make.changes = {FakeFileChange::Write("built.txt", std::string(100000, 'k'))};
  FakeCommandRunner runner;
  runner.Push(make);
  BuildOptions o = Options(tmp_.Sub("ctx"), "pipeline/outputs:1");
  o.destinations.push_back(Ref("pipeline/outputs:2"));
  o.local_outputs = {ImageLocation::DockerArchive(tmp_.Sub("image.tar"), {Ref("pipeline/outputs:1").Name() + ":1"}),
                     ImageLocation::OciLayout(tmp_.Sub("layout"), "v1")};
  o.digest_file = tmp_.Sub("digest");
  o.image_name_with_digest_file = tmp_.Sub("names");
  auto r = Build(o, runner);
  ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << log_.text();
  ASSERT_EQ(r->pushed.size(), 2u);

  auto layout = layers::OpenLayoutSource(tmp_.Sub("layout"), "v1");
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  EXPECT_EQ((*layout)->RootManifest()->digest, r->digest);
  auto archive = layers::OpenArchiveSource(tmp_.Sub("image.tar"), std::nullopt, std::nullopt);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  EXPECT_EQ((*archive)->RootManifest()->digest, r->digest);
  for (const char* tag : {"pipeline/outputs:1", "pipeline/outputs:2"}) {
    auto m = PulledManifest(Ref(tag));
    ASSERT_TRUE(m.ok()) << tag;
  }

  auto m = ParseManifest((*layout)->RootManifest()->bytes);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->layers.size(), 1u);
  struct stat in_layout, in_store;
  ASSERT_EQ(::stat((tmp_.Sub("layout") + "/blobs/sha256/" + m->layers[0].digest.hex()).c_str(), &in_layout), 0);
  ASSERT_EQ(::stat((o.state_dir + "/store/blobs/sha256/" + m->layers[0].digest.hex()).c_str(), &in_store), 0);
  EXPECT_EQ(in_layout.st_ino, in_store.st_ino) << "the layout's layer should be a hard link into the store";

  EXPECT_EQ(testing::ReadFile(tmp_.Sub("digest")), r->digest.ToString());
  EXPECT_EQ(testing::ReadFile(tmp_.Sub("names")), Ref("pipeline/outputs").Name() + "@" + r->digest.ToString() + "\n" +
                                                      Ref("pipeline/outputs").Name() + "@" + r->digest.ToString() + "\n");
}

// --jobs: two stages that need nothing of each other run at once; the image is the serial build's,
// byte for byte, each stage's log lines carry its lane, and a stage that fails fails the build.
TEST_F(PipelineTest, IndependentStagesBuiltAtOnceMakeTheSameImage) {
  WriteFile(tmp_.Sub("ctx/Dockerfile"),
            "FROM scratch AS left\nRUN make-left\nFROM scratch AS right\nRUN make-right\nRUN more\n"
            "FROM scratch\nCOPY --from=left /left.txt /\nCOPY --from=right /right.txt /\n");
  auto script = [](FakeCommandRunner& runner) {
    FakeRun left, right;
    left.output = "left says hi\n";
    left.changes = {FakeFileChange::Write("left.txt", "L\n")};
    right.output = "right says hi";  // no newline: the lane ends the line
    right.changes = {FakeFileChange::Write("right.txt", "R\n")};
    runner.On("make-left", left);
    runner.On("make-right", right);
  };
  BuildOptions o = Options(tmp_.Sub("ctx"), "pipeline/jobs:serial");
  o.jobs = 1;
  FakeCommandRunner serial_runner;
  script(serial_runner);
  auto serial = Build(o, serial_runner);
  ASSERT_TRUE(serial.ok()) << serial.status().ToString() << "\n" << log_.text();
  EXPECT_EQ(log_.text().find("[#1 left]"), std::string::npos) << log_.text();

  MemoryBuildLog parallel_log;
  o = Options(tmp_.Sub("ctx"), "pipeline/jobs:parallel");
  o.state_dir = tmp_.Sub("state-parallel");
  o.jobs = 4;
  FakeCommandRunner parallel_runner;
  script(parallel_runner);
  BuildDeps deps;
  deps.log = &parallel_log;
  deps.runner = &parallel_runner;
  deps.keychain = std::make_unique<registry::AnonymousKeychain>();
  auto parallel = RunBuild(o, deps);
  ASSERT_TRUE(parallel.ok()) << parallel.status().ToString() << "\n" << parallel_log.text();
  EXPECT_EQ(parallel->digest, serial->digest);
  EXPECT_EQ(parallel_runner.specs().size(), 3u);
  const std::string text = parallel_log.text();
  EXPECT_NE(text.find("[#1 left] left says hi\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[#2 right] right says hi\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[#2 right] info: [stage 2/3] STEP 3/3: RUN more"), std::string::npos) << text;
  EXPECT_NE(text.find("[#3] info: [stage 3/3] STEP 2/3: COPY --from=left"), std::string::npos) << text;

  // The right stage fails: the build fails with its exit code and position, nothing is pushed.
  FakeCommandRunner failing;
  FakeRun broken;
  broken.exit_code = 4;
  failing.On("make-right", broken);
  o = Options(tmp_.Sub("ctx"), "pipeline/jobs:failed");
  o.state_dir = tmp_.Sub("state-failed");
  o.jobs = 4;
  auto failed = Build(o, failing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().step_exit_code(), 4);
  EXPECT_NE(failed.status().message().find("Dockerfile:4"), std::string::npos) << failed.status().message();
  EXPECT_FALSE(PulledManifest(Ref("pipeline/jobs:failed")).ok());
}

// `kiln build --print-plan` stops after the front end: nothing runs and nothing is pushed.
TEST_F(PipelineTest, PrintPlanBuildsNothing) {
  WriteFile(tmp_.Sub("ctx/Dockerfile"), "# syntax=docker/dockerfile:1.7\nFROM scratch AS a\nRUN x\nFROM a\nRUN y\n");
  BuildOptions o = Options(tmp_.Sub("ctx"), "pipeline/plan:1");
  o.print_plan = true;
  FakeCommandRunner runner;
  auto r = Build(o, runner);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(runner.specs().empty());
  EXPECT_NE(r->plan_json.find("\"stages\""), std::string::npos);
  // BuildKit's frontend selector is noted, not followed: kiln has one frontend.
  EXPECT_NE(log_.text().find("# syntax=docker/dockerfile:1.7: noted"), std::string::npos) << log_.text();
  EXPECT_FALSE(PulledManifest(Ref("pipeline/plan:1")).ok());
}

}  // namespace
}  // namespace kiln::executor
