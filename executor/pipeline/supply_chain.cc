#include "executor/pipeline/supply_chain.h"

#include <chrono>
#include <ctime>
#include <set>

#include "core/io.h"
#include "executor/image/provenance.h"
#include "executor/image/sbom.h"
#include "executor/image/package_db.h"
#include "registry/referrers.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxDockerfileBytes = 16 << 20;
constexpr int64_t kMaxBaseSbomBytes = 64 << 20;

// The packages the base image's own SBOMs list (SPDX documents attached to it as referrers, by kiln
// --sbom, oras attach or a registry's scanner), for packages no database in the layers shows (a
// static binary's modules, a distroless base's). A base without them, or in a registry that cannot
// say, adds nothing; a document that cannot be read is a warning, never a failed build.
std::vector<Package> BaseSbomPackages(PreparedBuild& build, const SourceImage& base, BuildLog* log) {
  std::vector<Package> out;
  auto location = base.source ? base.source->RegistryLocation() : std::nullopt;
  if (!location || !build.access) return out;
  registry::Client& client = build.access->pull_client();
  auto repo = client.Open(client.PushEndpoint(location->first), location->second, false);
  if (!repo.ok()) {
    log->Warn("SBOM: cannot look for the base image's own SBOM: " + repo.status().message());
    return out;
  }
  const Digest& subject = base.manifest_raw.digest;
  auto found = registry::FindReferrers(**repo, subject, "application/spdx+json");
  if (!found.ok()) {
    log->Warn("SBOM: cannot look for the base image's own SBOM: " + found.status().message());
    return out;
  }
  std::string name = location->first + "/" + location->second + "@" + subject.ToString();
  for (const Descriptor& d : *found) {
    auto fetched = [&]() -> Result<std::vector<Package>> {
      KILN_ASSIGN_OR_RETURN(RawManifest raw, (*repo)->GetManifest(d.digest.ToString()));
      KILN_ASSIGN_OR_RETURN(Manifest m, ParseManifest(raw.bytes));
      if (m.layers.size() != 1 || m.layers[0].size > kMaxBaseSbomBytes) {
        return InvalidArgument("an SBOM artifact is one document of at most 64 MiB");
      }
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, (*repo)->GetBlob(m.layers[0].digest, m.layers[0].size));
      KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(*blob, kMaxBaseSbomBytes));
      return ParseSpdxPackages(text, "the SBOM attached to " + name);
    }();
    if (!fetched.ok()) {
      log->Warn("SBOM: the base image's SBOM " + d.digest.ToString() + " is left out: " + fetched.status().message());
      continue;
    }
    log->Info("SBOM: the base image " + name + " has its own SBOM (" + d.digest.ToString() + "): " +
              std::to_string(fetched->size()) + " packages");
    out.insert(out.end(), fetched->begin(), fetched->end());
  }
  return out;
}

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
                             const SourceImage* base, BuildLog* log) {
  auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(ImagePackages found, ReadImagePackages(image.layers, *build.store));
  std::string took = FormatDuration(std::chrono::steady_clock::now() - start);
  for (const std::string& w : found.warnings) log->Warn(w);
  if (base) {
    // What the layers show wins; the base's SBOM adds what they cannot show.
    std::set<std::string> seen;
    for (const Package& p : found.packages) seen.insert(p.purl);
    size_t added = 0;
    for (Package& p : BaseSbomPackages(build, *base, log)) {
      if (!seen.insert(p.purl).second) continue;
      found.packages.push_back(std::move(p));
      ++added;
    }
    if (added > 0) SortPackages(found.packages);
  }
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
                         const SourceImage* base, const std::vector<Reference>& pushed, BuildLog* log) {
  if (!options.sbom && !options.provenance) return OkStatus();
  std::map<std::string, std::string> annotations = {{"org.opencontainers.image.created", CreatedOf(image)}};
  std::vector<registry::Artifact> artifacts;
  if (options.sbom) {
    Result<std::string> doc = MakeSbom(options, build, image, base, log);
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
