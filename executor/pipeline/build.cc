#include "executor/pipeline/build.h"

#include <unistd.h>

#include <chrono>
#include <future>

#include "core/image_index.h"
#include "executor/image/locations.h"
#include "executor/image/publish.h"
#include "executor/pipeline/policy_gate.h"
#include "executor/pipeline/stages.h"
#include "executor/pipeline/supply_chain.h"
#include "executor/sandbox/build_namespace.h"
#include "executor/sandbox/tier_detection.h"
#include "registry/registry_image.h"

namespace kiln::executor {
namespace {

using Clock = std::chrono::steady_clock;

Status CheckOptions(const BuildOptions& options) {
  if (options.sandbox == SandboxChoice::kInPlace) {
    return Unsupported("in-place builds (RUN in kiln's own filesystem, Kaniko's mode) are not implemented yet");
  }
  if (options.platforms.size() > 1) {
    for (const ImageLocation& out : options.local_outputs) {
      if (out.kind == ImageLocation::Kind::kDockerArchive) {
        return InvalidArgument("--tar-path writes a docker-archive, which holds one image; a build for " +
                               std::to_string(options.platforms.size()) +
                               " platforms makes an index (use --oci-layout-path, or one platform per build)");
      }
    }
  }
  if (!options.no_push && options.destinations.empty() && options.local_outputs.empty() && !options.print_plan &&
      !options.check_only) {
    return InvalidArgument("no --destination given: name where to push the image, or use --no-push (with "
                           "--tar-path or --oci-layout-path to keep it)");
  }
  return OkStatus();
}

// --check: the front end and the build checks only; nothing is pulled or written.
Status CheckOnly(const BuildOptions& options, BuildLog* log) {
  std::string dir = ContextDirectory(options.context);
  if (dir.empty()) {
    return InvalidArgument("--check reads the Dockerfile from a directory context; \"" + options.context +
                           "\" is not one");
  }
  KILN_ASSIGN_OR_RETURN(FrontEnd fe, LoadPlan(FrontEndOptionsOf(options), dir));
  for (const std::string& w : fe.dockerfile.warnings) log->Warn(w);
  for (const dockerfile::CheckFinding& f : fe.checks) log->Warn(f.formatted);
  std::vector<std::string> label_keys;
  for (const auto& [key, value] : options.labels) label_keys.push_back(key);
  KILN_RETURN_IF_ERROR(CheckPlanPolicy(options.policies, fe, label_keys, log).status());
  log->Info("build checks: " + std::to_string(fe.checks.size()) + " warning" + (fe.checks.size() == 1 ? "" : "s") +
            (fe.check_config.skip_all ? " (# check=skip=all)" : ""));
  return ChecksVerdict(fe);
}

// One platform's image, built and assembled, with what publishing it needs kept alive.
struct PlatformImage {
  std::unique_ptr<PreparedBuild> build;
  std::unique_ptr<BackgroundUploads> uploads;  // layers streamed to the first destination
  BuiltImage image;
  AssembledImage assembled;
  // The export of the cache mounts the build used (to the registry cache), run while the image is
  // assembled and published. Last member: destroyed (so waited for) before the build it reads.
  std::future<void> cache_export;
};

// Waits for every image's cache mount export (its warnings are logged by the export itself).
void WaitForCacheExports(std::vector<PlatformImage>& images) {
  for (PlatformImage& i : images) {
    if (i.cache_export.valid()) i.cache_export.wait();
  }
}

// Builds every stage for options.platform and assembles the target's config and manifest.
Result<PlatformImage> BuildForPlatform(const BuildOptions& options, BuildDeps& deps, PhaseTimes* times,
                                       std::shared_ptr<RegistryAccess> access) {
  PlatformImage out;
  KILN_ASSIGN_OR_RETURN(out.build, Prepare(options, deps, std::move(access)));
  out.uploads = std::make_unique<BackgroundUploads>();
  KILN_ASSIGN_OR_RETURN(out.image, BuildStages(*out.build, options, deps, out.uploads.get(), times));
  // Cache mounts are no longer written to: their export overlaps assembling and publishing the image.
  out.cache_export = std::async(std::launch::async, [b = out.build.get(), log = deps.log] { ExportCacheMounts(*b, log); });
  // Every layer is written: the rootfs trees can go while the image is published.
  out.build->remover->Start();
  MediaTypeFamily family = ChooseFamily(out.image, options.compression == media_type::Compression::kZstd);
  KILN_ASSIGN_OR_RETURN(out.assembled, Assemble(out.image, family, *out.build->store));
  // image.max_size: before anything is published (layers streamed ahead to a registry stay untagged).
  KILN_RETURN_IF_ERROR(CheckImageSizePolicy(options.policies, out.build->front, out.assembled, deps.log));
  deps.log->Info("built image " + out.assembled.manifest.digest.ToString() + " (" +
                 std::to_string(out.assembled.layers.size()) + " layers" +
                 (options.platform ? ", " + options.platform->ToString() : std::string()) + ")");
  return out;
}

// Copies `what` into every output, then writes the digest files.
Status PublishToOutputs(const Publication& what, std::vector<PlatformImage>& images, const BuildOptions& options,
                        BuildLog* log, BuildResult& result) {
  PreparedBuild& first = *images.front().build;
  registry::Client& client = first.access->push_client();
  SinkOpener open_sink = [&](const ImageLocation& loc) -> Result<std::unique_ptr<ImageSink>> {
    if (loc.kind == ImageLocation::Kind::kRegistry) {
      // Layers streamed to the first destination while they were written must be there before a push.
      for (PlatformImage& i : images) i.uploads->Wait();
      auto it = first.destinations.find(loc.reference->ToString());
      if (it != first.destinations.end()) return registry::OpenRegistrySink(client, *loc.reference, it->second);
    }
    return OpenImageSink(client, loc);
  };
  KILN_ASSIGN_OR_RETURN(std::vector<PublishedOutput> published,
                        Publish(what, OutputsOf(options), open_sink, 1 + options.push_retry, log));
  for (const PublishedOutput& p : published) {
    if (p.copy.root.digest != what.digest) {
      return InternalError(p.location.ToString() + " received " + p.copy.root.digest.ToString() + ", not the built " +
                           what.digest.ToString());
    }
    if (p.location.kind == ImageLocation::Kind::kRegistry) {
      result.times.push += p.time;
      result.pushed.push_back(*p.location.reference);
    } else {
      result.times.outputs += p.time;
    }
  }
  return WriteDigestFiles(what.digest, options.destinations, options.digest_file, options.image_name_with_digest_file,
                          options.image_name_tag_with_digest_file);
}

// --custom-platform with several platforms: each image built in turn (sharing the registry
// clients), then one index over them published; the children go with it, before it.
Result<BuildResult> RunMultiPlatformBuild(const BuildOptions& options, BuildDeps& deps) {
  BuildResult result;
  std::vector<PlatformImage> images;
  std::shared_ptr<RegistryAccess> access;
  for (const Platform& p : options.platforms) {
    BuildOptions one = options;
    one.platform = p;
    one.platforms.clear();
    deps.log->Info("building for " + p.ToString());
    Result<PlatformImage> built = BuildForPlatform(one, deps, &result.times, access);
    if (!built.ok()) return built.status().WithContext("building for " + p.ToString());
    access = built->build->access;
    images.push_back(std::move(built).value());
  }
  // An index over the built images (each one's platform read back from its config), opened afresh
  // for every output like a single image's.
  std::vector<Publication> children;
  Publication index;
  for (const PlatformImage& i : images) {
    children.push_back(PublicationOf(i.assembled, *i.build->store, i.image.base));
    index.layer_bytes += children.back().layer_bytes;
  }
  index.open = [&children](ProgressMeter* meter) -> Result<std::unique_ptr<ImageSource>> {
    std::vector<std::unique_ptr<ImageSource>> sources;
    for (const Publication& child : children) {
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source, child.open(meter));
      sources.push_back(std::move(source));
    }
    return NewIndexSource(std::move(sources));
  };
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> probe, index.open(nullptr));
  KILN_ASSIGN_OR_RETURN(RawManifest root, probe->RootManifest());
  index.digest = root.digest;
  result.digest = root.digest;
  result.manifest_bytes = root.bytes;
  deps.log->Info("built index " + root.digest.ToString() + " (" + std::to_string(images.size()) + " platforms)");
  KILN_RETURN_IF_ERROR(PublishToOutputs(index, images, options, deps.log, result));
  // SBOM and provenance describe one image each: every platform's own, attached to its manifest
  // (as BuildKit attaches per-platform attestations), written to per-platform files.
  for (PlatformImage& i : images) {
    BuildOptions one = options;
    one.platform = i.build->front.target;
    if (!one.sbom_file.empty()) one.sbom_file = PlatformFileName(options.sbom_file, *one.platform);
    if (!one.provenance_file.empty()) one.provenance_file = PlatformFileName(options.provenance_file, *one.platform);
    KILN_RETURN_IF_ERROR(AttachSupplyChain(one, *i.build, i.assembled, i.image.base.get(), result.pushed, deps.log)
                             .WithContext("for " + one.platform->ToString()));
  }
  WaitForCacheExports(images);
  return result;
}

}  // namespace

std::vector<ImageLocation> OutputsOf(const BuildOptions& options) {
  std::vector<ImageLocation> outputs = options.local_outputs;
  if (!options.no_push) {
    for (const Reference& d : options.destinations) outputs.push_back(ImageLocation::Registry(d));
  }
  return outputs;
}

Result<BuildResult> RunBuild(const BuildOptions& options, BuildDeps& deps) {
  BuildLog* log = deps.log;
  auto build_start = Clock::now();
  KILN_RETURN_IF_ERROR(CheckOptions(options));
  BuildResult result;
  if (options.check_only) {
    KILN_RETURN_IF_ERROR(CheckOnly(options, log));
    return result;
  }
  if (options.print_plan) {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<PreparedBuild> build, Prepare(options, deps));
    result.plan_json = dockerfile::PlanToJson(build->front.plan);
    return result;
  }
  if (options.platforms.size() > 1) {
    KILN_ASSIGN_OR_RETURN(result, RunMultiPlatformBuild(options, deps));
  } else {
    BuildOptions one = options;
    if (!options.platforms.empty()) one.platform = options.platforms[0];
    std::vector<PlatformImage> images;
    KILN_ASSIGN_OR_RETURN(PlatformImage image, BuildForPlatform(one, deps, &result.times, nullptr));
    images.push_back(std::move(image));
    const AssembledImage& a = images[0].assembled;
    result.digest = a.manifest.digest;
    result.manifest_bytes = a.manifest_bytes;
    result.config_bytes = a.config_bytes;
    KILN_RETURN_IF_ERROR(
        PublishToOutputs(PublicationOf(a, *images[0].build->store, images[0].image.base), images, one, log, result));
    KILN_RETURN_IF_ERROR(AttachSupplyChain(one, *images[0].build, a, images[0].image.base.get(), result.pushed, log));
    WaitForCacheExports(images);
  }
  log->Info("done in " + FormatDuration(Clock::now() - build_start) + ": " + result.times.Summary());
  return result;
}

int RunInBuildNamespace(BuildOptions& options, BuildDeps& deps, const std::function<int()>& body, int failure_code) {
  bool wants_rootless = options.sandbox == SandboxChoice::kAuto || options.sandbox == SandboxChoice::kRootless;
  if (::geteuid() == 0 || !wants_rootless || options.print_plan || options.check_only) return body();
  sandbox::UserNamespaceProbe probe = sandbox::ProbeUserNamespace();
  if (!probe.problem.empty()) return body();  // the runner says why and falls back (or refuses a forced tier)
  // Made and checked here, outside, where its owner is still this uid; the build inside uses it as named.
  Result<std::string> state = PrepareStateDir(options, deps.log);
  if (!state.ok()) {
    deps.log->Error(state.status().message());
    return failure_code;
  }
  options.state_dir = *state;
  deps.build_namespace = probe.id_mapping;
  deps.build_namespace_note = probe.id_mapping_note;
  Result<int> rc = sandbox::RunInUserNamespace(probe.id_mapping, body);
  if (!rc.ok()) {
    deps.log->Error(rc.status().message());
    return failure_code;
  }
  return *rc;
}

}  // namespace kiln::executor
