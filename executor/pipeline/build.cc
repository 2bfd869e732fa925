#include "executor/pipeline/build.h"

#include <unistd.h>

#include <chrono>

#include "executor/image/locations.h"
#include "executor/image/publish.h"
#include "executor/pipeline/stages.h"
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
  if (!options.no_push && options.destinations.empty() && options.local_outputs.empty() && !options.print_plan) {
    return InvalidArgument("no --destination given: name where to push the image, or use --no-push (with "
                           "--tar-path or --oci-layout-path to keep it)");
  }
  return OkStatus();
}

// Assembles the image's config and manifest, then copies it into every output.
Status PublishImage(PreparedBuild& build, const BuildOptions& options, const BuiltImage& image,
                    BackgroundUploads& uploads, BuildLog* log, BuildResult& result) {
  MediaTypeFamily family = ChooseFamily(image, options.compression == media_type::Compression::kZstd);
  KILN_ASSIGN_OR_RETURN(AssembledImage assembled, Assemble(image, family, *build.store));
  result.digest = assembled.manifest.digest;
  result.manifest_bytes = assembled.manifest_bytes;
  result.config_bytes = assembled.config_bytes;
  log->Info("built image " + assembled.manifest.digest.ToString() + " (" + std::to_string(assembled.layers.size()) +
            " layers)");

  std::vector<ImageLocation> outputs = OutputsOf(options);
  registry::Client& client = build.access->push_client();
  SinkOpener open_sink = [&](const ImageLocation& loc) -> Result<std::unique_ptr<ImageSink>> {
    if (loc.kind == ImageLocation::Kind::kRegistry) {
      // Layers streamed to the first destination while they were written must be there before a push.
      uploads.Wait();
      auto it = build.destinations.find(loc.reference->ToString());
      if (it != build.destinations.end()) return registry::OpenRegistrySink(client, *loc.reference, it->second);
    }
    return OpenImageSink(client, loc);
  };
  KILN_ASSIGN_OR_RETURN(std::vector<PublishedOutput> published,
                        Publish(assembled, *build.store, image.base, outputs, open_sink, 1 + options.push_retry, log));
  for (const PublishedOutput& p : published) {
    if (p.copy.root.digest != assembled.manifest.digest) {
      return InternalError(p.location.ToString() + " received " + p.copy.root.digest.ToString() + ", not the built " +
                           assembled.manifest.digest.ToString());
    }
    if (p.location.kind == ImageLocation::Kind::kRegistry) {
      result.times.push += p.time;
      result.pushed.push_back(*p.location.reference);
    } else {
      result.times.outputs += p.time;
    }
  }
  return WriteDigestFiles(assembled.manifest.digest, options.destinations, options.digest_file,
                          options.image_name_with_digest_file, options.image_name_tag_with_digest_file);
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
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<PreparedBuild> build, Prepare(options, deps));
  BuildResult result;
  if (options.print_plan) {
    result.plan_json = dockerfile::PlanToJson(build->front.plan);
    return result;
  }
  BackgroundUploads uploads;  // outlives the stages that start them and the push that waits for them
  KILN_ASSIGN_OR_RETURN(BuiltImage image, BuildStages(*build, options, deps, &uploads, &result.times));
  // Every layer is written: the rootfs trees can go while the image is published.
  build->remover->Start();
  KILN_RETURN_IF_ERROR(PublishImage(*build, options, image, uploads, log, result));
  log->Info("done in " + FormatDuration(Clock::now() - build_start) + ": " + result.times.Summary());
  return result;
}

int RunInBuildNamespace(BuildOptions& options, BuildDeps& deps, const std::function<int()>& body, int failure_code) {
  bool wants_rootless = options.sandbox == SandboxChoice::kAuto || options.sandbox == SandboxChoice::kRootless;
  if (::geteuid() == 0 || !wants_rootless || options.print_plan) return body();
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
