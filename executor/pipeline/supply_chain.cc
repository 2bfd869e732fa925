#include "executor/pipeline/supply_chain.h"

#include <chrono>
#include <ctime>
#include <set>

#include "core/io.h"
#include "executor/image/provenance.h"
#include "executor/image/sbom.h"
#include "registry/referrers.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxDockerfileBytes = 16 << 20;

Status WriteDocument(const std::string& path, const std::string& content) {
  KILN_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path, 0644));
  KILN_RETURN_IF_ERROR(w->Write(content.data(), content.size()));
  return w->Close();
}

std::string SubjectName(const BuildOptions& options) {
  return options.destinations.empty() ? "image" : options.destinations.front().Name();
}

// The config's creation time (SOURCE_DATE_EPOCH and --reproducible already applied), so two
// reproducible builds give the same SBOM bytes.
std::string CreatedOf(const AssembledImage& image) {
  auto config = ParseImageConfig(image.config_bytes);
  if (config.ok() && !config->created.empty()) return config->created;
  return FormatRfc3339(static_cast<int64_t>(std::time(nullptr)));
}

Result<std::string> MakeSbom(const BuildOptions& options, PreparedBuild& build, const AssembledImage& image,
                             BuildLog* log) {
  auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(ImagePackages found, ReadImagePackages(image.layers, *build.store));
  std::string took = FormatDuration(std::chrono::steady_clock::now() - start);
  for (const std::string& w : found.warnings) log->Warn(w);
  std::set<std::string> sources;
  for (const Package& p : found.packages) sources.insert(p.source);
  std::string from;
  for (const std::string& s : sources) from += (from.empty() ? "" : ", ") + s;
  log->Info("SBOM: " + std::to_string(found.packages.size()) + " package" + (found.packages.size() == 1 ? "" : "s") +
            (from.empty() ? " (no package database found)" : " from " + from) + "; " +
            std::to_string(image.layers.size()) + " layers read in " + took);
  SbomSubject subject{SubjectName(options), image.manifest.digest, CreatedOf(image), "kiln-" + options.builder_version};
  return SpdxDocument(subject, found.packages);
}

Result<std::string> MakeProvenance(const BuildOptions& options, PreparedBuild& build, const AssembledImage& image) {
  ProvenanceInputs in;
  in.builder_version = options.builder_version;
  in.subject_name = SubjectName(options);
  in.subject = image.manifest.digest;
  const std::string& path = build.front.dockerfile_path;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> file, OpenFileReader(path));
  KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(*file, kMaxDockerfileBytes));
  in.dockerfile_digest = Sha256Of(text);
  // Relative to the context when inside it: the absolute path of a CI runner's checkout says nothing.
  std::string root = build.context ? ContextDirectory(options.context) : "";
  in.dockerfile_path = path;
  if (!root.empty() && root.back() != '/') root += '/';
  if (!root.empty() && path.compare(0, root.size(), root) == 0) in.dockerfile_path = path.substr(root.size());
  in.target = options.target;
  in.platforms.push_back(build.front.target.ToString());
  for (const std::string& arg : options.build_args) {
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      in.build_args.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
    } else if (auto it = options.environ.find(arg); it != options.environ.end()) {
      in.build_args.emplace_back(arg, it->second);
    }
  }
  for (const auto& base : build.fetcher->Resolved()) {
    in.bases.push_back(ResolvedBase{base->name, base->canonical, base->manifest_raw.digest});
  }
  return ProvenanceDocument(in);
}

Result<std::shared_ptr<registry::Repository>> DestinationRepository(PreparedBuild& build, const Reference& ref) {
  auto it = build.destinations.find(ref.ToString());
  if (it != build.destinations.end()) return it->second;
  registry::Client& client = build.access->push_client();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<registry::Repository> repo,
                        client.Open(client.PushEndpoint(ref.registry()), ref.repository(), true));
  return std::shared_ptr<registry::Repository>(std::move(repo));
}

}  // namespace

std::string PlatformFileName(const std::string& path, const Platform& platform) {
  std::string tag = platform.ToString();
  for (char& c : tag) c = c == '/' ? '-' : c;
  size_t slash = path.rfind('/');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  if (path.size() > base + 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    return path.substr(0, path.size() - 5) + "." + tag + ".json";
  }
  return path + "." + tag;
}

Status AttachSupplyChain(const BuildOptions& options, PreparedBuild& build, const AssembledImage& image,
                         const std::vector<Reference>& pushed, BuildLog* log) {
  if (!options.sbom && !options.provenance) return OkStatus();
  std::map<std::string, std::string> annotations = {{"org.opencontainers.image.created", CreatedOf(image)}};
  std::vector<registry::Artifact> artifacts;
  if (options.sbom) {
    Result<std::string> doc = MakeSbom(options, build, image, log);
    if (!doc.ok()) return doc.status().WithContext("making the SBOM");
    if (!options.sbom_file.empty()) {
      KILN_RETURN_IF_ERROR(WriteDocument(options.sbom_file, *doc).WithContext("writing --sbom " + options.sbom_file));
      log->Info("wrote SBOM " + options.sbom_file);
    }
    artifacts.push_back({"application/spdx+json", std::move(doc).value(), annotations});
  }
  if (options.provenance) {
    Result<std::string> doc = MakeProvenance(options, build, image);
    if (!doc.ok()) return doc.status().WithContext("making the provenance");
    if (!options.provenance_file.empty()) {
      KILN_RETURN_IF_ERROR(
          WriteDocument(options.provenance_file, *doc).WithContext("writing --provenance " + options.provenance_file));
      log->Info("wrote provenance " + options.provenance_file);
    }
    artifacts.push_back({"application/vnd.in-toto+json", std::move(doc).value(), annotations});
  }
  for (const Reference& ref : pushed) {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<registry::Repository> repo, DestinationRepository(build, ref));
    for (const registry::Artifact& a : artifacts) {
      KILN_ASSIGN_OR_RETURN(Descriptor d, registry::PushReferrer(*repo, image.manifest, a));
      log->Info("attached " + a.artifact_type + " " + d.digest.ToString() + " to " + ref.Name() + "@" +
                image.manifest.digest.ToString());
    }
  }
  return OkStatus();
}

}  // namespace kiln::executor
