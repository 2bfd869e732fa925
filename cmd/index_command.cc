// `kiln index create DEST SRC...`: merges images that already exist — typically one per platform,
// each pushed by its own CI job — into one image index at DEST, reading each image's platform from
// its config. Every child manifest (and any blob DEST lacks) is put before the index, and the index
// is tagged last, so DEST never names a missing image. SRC and DEST take the names `kiln copy` takes
// (registry references, oci:DIR[:TAG], docker-archive:PATH[:REF] as a source).
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/registry_flags.h"
#include "core/image_copy.h"
#include "core/image_index.h"
#include "core/image_location.h"
#include "core/media_types.h"
#include "executor/image/locations.h"

namespace kiln::cmd {
namespace {

struct IndexFlags {
  std::string dst;
  std::vector<std::string> srcs;
  std::vector<std::string> annotations;
  RegistryFlags registries;
  bool insecure = false;
  std::string digest_file;
};

struct Prepared {
  ImageLocation dst;
  std::vector<ImageLocation> srcs;
  IndexOptions index;
  registry::RegistryAccessOptions access;
};

// The user's mistakes (exit 2), found before any I/O.
Result<Prepared> Prepare(const IndexFlags& f) {
  Prepared p;
  KILN_ASSIGN_OR_RETURN(p.dst, ParseImageLocation(f.dst));
  if (p.dst.kind == ImageLocation::Kind::kDockerArchive) {
    return InvalidArgument("destination " + f.dst + ": a docker-archive holds single images, not an index");
  }
  for (const std::string& s : f.srcs) {
    Result<ImageLocation> loc = ParseImageLocation(s);
    if (!loc.ok()) return loc.status();
    p.srcs.push_back(*loc);
  }
  for (const std::string& a : f.annotations) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("--annotation must be KEY=VALUE, not \"" + a + "\"");
    p.index.annotations[a.substr(0, eq)] = a.substr(eq + 1);
  }
  p.access = registry::RegistryAccessOptions::FromEnvironment();
  KILN_RETURN_IF_ERROR(f.registries.ApplyTo(p.access));
  if (f.insecure) {
    auto plain_http = [&](const ImageLocation& loc) {
      if (loc.kind == ImageLocation::Kind::kRegistry) p.access.insecure_registries.insert(loc.reference->registry());
    };
    plain_http(p.dst);
    for (const ImageLocation& s : p.srcs) plain_http(s);
  }
  return p;
}

Status RunIndexCreate(const Prepared& p, const IndexFlags& f) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<CommandRegistryClient> session, CommandRegistryClient::Create(p.access));
  registry::Client& client = session->client();

  std::vector<std::unique_ptr<ImageSource>> sources;
  for (const ImageLocation& loc : p.srcs) {
    Result<std::unique_ptr<ImageSource>> src = executor::OpenImageSource(client, loc);
    if (!src.ok()) return src.status().WithContext("opening " + loc.Display());
    sources.push_back(std::move(src).value());
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> index, NewIndexSource(std::move(sources), p.index));
  KILN_ASSIGN_OR_RETURN(RawManifest root, index->RootManifest());
  KILN_ASSIGN_OR_RETURN(Index parsed, ParseIndex(root.bytes));
  for (const Descriptor& d : parsed.manifests) {
    std::cout << "  " << (d.platform ? d.platform->ToString() : std::string("(no platform)")) << "  "
              << d.digest.ToString() << "\n";
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ImageSink> sink, executor::OpenImageSink(client, p.dst));
  KILN_ASSIGN_OR_RETURN(CopyResult r, CopyImage(*index, *sink));
  if (!f.digest_file.empty()) {
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(f.digest_file));
    KILN_RETURN_IF_ERROR(out->Write(r.root.digest.ToString()));
    KILN_RETURN_IF_ERROR(out->Close());
  }
  std::cout << "pushed " << (root.media_type == media_type::kDockerManifestList ? "manifest list " : "index ")
            << p.dst.Display() << "@" << r.root.digest.ToString() << " (" << parsed.manifests.size() << " images, "
            << r.blobs_copied << " blobs copied, " << r.blobs_mounted << " mounted, " << r.blobs_skipped
            << " already there)\n";
  return OkStatus();
}

void RegisterIndex(CLI::App& app, int* exit_code) {
  CLI::App* index = app.add_subcommand("index", "Make and inspect multi-platform image indexes");
  index->require_subcommand(1);
  auto f = std::make_shared<IndexFlags>();
  CLI::App* create = index->add_subcommand(
      "create", "Merge existing images (one per platform, e.g. from separate CI jobs) into one index at DEST");
  create->add_option("dest", f->dst, "Where the index goes: a registry reference or oci:DIR[:TAG]")->required();
  create->add_option("sources", f->srcs, "The images (or indexes) to list, each with its platform from its config")
      ->required();
  create->add_option("--annotation", f->annotations, "An annotation KEY=VALUE on the index (repeatable)")
      ->allow_extra_args(false)
      ->expected(1)
      ->take_all();
  f->registries.Declare(create);
  create->add_flag("--insecure", f->insecure, "Use plain HTTP for the registries of DEST and every SRC");
  create->add_option("--digest-file", f->digest_file, "Write the index's digest to this file");
  create->callback([f, exit_code] {
    Result<Prepared> p = Prepare(*f);
    if (!p.ok()) {
      std::cerr << "kiln index create: " << p.status().message() << "\n";
      *exit_code = kExitUsage;
      return;
    }
    Status s = RunIndexCreate(*p, *f);
    if (!s.ok()) {
      std::cerr << "kiln index create: " << s.message() << "\n";
      *exit_code = kExitFailure;
    }
  });
}

}  // namespace

KILN_REGISTER_COMMAND("index", RegisterIndex);

}  // namespace kiln::cmd
