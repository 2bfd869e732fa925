// `kiln pack DIR`: a one-layer image of a directory (what `FROM scratch` + `COPY . /` would make),
// written as an OCI layout and/or a docker-archive. It exercises the layer pipeline end to end
// without a Dockerfile.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cmd/commands.h"
#include "core/image_model.h"
#include "core/media_types.h"
#include "layers/decompress.h"
#include "layers/docker_archive.h"
#include "layers/layer_writer.h"
#include "layers/oci_layout.h"

namespace kiln::cmd {
namespace {

struct PackOptions {
  std::string dir;
  std::string oci_layout_path;  // DIR[:TAG]
  std::string tar_path;
  std::string image_name = "kiln/pack:latest";
  std::string compression = "gzip";
  int compression_level = 0;
  std::string platform;
  std::vector<std::string> cmd;
};

Status Pack(const PackOptions& o) {
  if (o.oci_layout_path.empty() && o.tar_path.empty()) {
    return InvalidArgument("nothing to write: give --oci-layout-path and/or --tar-path");
  }
  auto [layout_dir, tag] = layers::SplitLayoutPath(o.oci_layout_path);
  if (layout_dir == o.oci_layout_path) tag = "latest";  // no ":TAG" given
  // Without a layout destination, blobs still need a home while the archive is written: a scratch
  // layout beside the tarball, removed when done.
  std::string store = layout_dir;
  std::unique_ptr<std::string, void (*)(std::string*)> scratch(nullptr, [](std::string* p) {
    std::error_code ec;
    std::filesystem::remove_all(*p, ec);
    delete p;
  });
  if (store.empty()) {
    std::string tmpl = o.tar_path + ".kiln-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating a scratch directory beside " + o.tar_path, errno);
    scratch.reset(new std::string(tmpl));
    store = tmpl;
  }
  KILN_ASSIGN_OR_RETURN(layers::OciLayout layout, layers::OciLayout::OpenOrCreate(store));

  layers::LayerOptions lo;
  std::optional<media_type::Compression> compression = layers::CompressionFromName(o.compression);
  if (!compression) return InvalidArgument("--compression must be gzip, zstd or none, not \"" + o.compression + "\"");
  lo.compression.algorithm = *compression;
  lo.compression.level = o.compression_level;

  KILN_ASSIGN_OR_RETURN(layers::LayerChanges changes, layers::ChangesForTree(o.dir));
  KILN_ASSIGN_OR_RETURN(auto blob, layout.NewBlob());
  KILN_ASSIGN_OR_RETURN(layers::LayerInfo layer, layers::WriteLayer(o.dir, changes, lo, blob.get()));
  KILN_RETURN_IF_ERROR(blob->Commit(layer.digest).status());

  Platform platform = Platform::Host();
  if (!o.platform.empty()) {
    KILN_ASSIGN_OR_RETURN(platform, Platform::Parse(o.platform));
  }
  ImageConfig config;
  config.architecture = platform.architecture;
  config.os = platform.os;
  config.variant = platform.variant;
  config.created = FormatRfc3339(0);
  if (!o.cmd.empty()) config.config.cmd = o.cmd;
  config.diff_ids = {layer.diff_id};
  config.history = {History{config.created, "kiln pack " + o.dir, "", "", false}};
  std::string config_bytes = SerializeImageConfig(config);
  KILN_ASSIGN_OR_RETURN(Digest config_digest, layout.PutBlob(config_bytes));

  Manifest m;
  m.media_type = std::string(media_type::kOciManifest);
  m.config = Descriptor{std::string(media_type::kOciConfig), config_digest, static_cast<int64_t>(config_bytes.size()),
                        {}, {}, std::nullopt, ""};
  m.layers.push_back(Descriptor{layer.media_type, layer.digest, static_cast<int64_t>(layer.size), {}, {}, std::nullopt, ""});
  std::string manifest_bytes = SerializeManifest(m);
  KILN_ASSIGN_OR_RETURN(Digest manifest_digest, layout.PutBlob(manifest_bytes));
  Descriptor md{m.media_type, manifest_digest, static_cast<int64_t>(manifest_bytes.size()), {}, {}, std::nullopt, ""};
  if (!layout_dir.empty()) KILN_RETURN_IF_ERROR(layout.AddToIndex(md, tag));

  if (!o.tar_path.empty()) {
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(o.tar_path));
    layers::ArchiveImage img{manifest_bytes, config_bytes, {o.image_name}};
    KILN_RETURN_IF_ERROR(layers::WriteDockerArchive(
        {img}, [&](const Descriptor& d) { return layout.OpenBlob(d.digest, d.size); }, *out));
    KILN_RETURN_IF_ERROR(out->Close());
  }
  std::cout << "layer   " << layer.digest.ToString() << "  " << layer.size << " bytes (" << layer.stats.entries
            << " entries, diff_id " << layer.diff_id.Short() << ")\n"
            << "config  " << config_digest.ToString() << "\n"
            << "image   " << manifest_digest.ToString() << "\n";
  if (!layout_dir.empty()) std::cout << "wrote OCI layout " << layout_dir << ":" << tag << "\n";
  if (!o.tar_path.empty()) std::cout << "wrote docker-archive " << o.tar_path << " (" << o.image_name << ")\n";
  return OkStatus();
}

}  // namespace

namespace {
void RegisterPack(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<PackOptions>();
  CLI::App* sub = app.add_subcommand("pack", "Make a one-layer image of a directory (FROM scratch + COPY . /)");
  sub->add_option("dir", opts->dir, "Directory whose contents become the image's filesystem")->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--oci-layout-path", opts->oci_layout_path, "Write an OCI layout: DIR[:TAG]");
  sub->add_option("--tar-path", opts->tar_path, "Write a docker-archive tarball");
  sub->add_option("--image-name", opts->image_name, "Name recorded in the docker-archive");
  sub->add_option("--compression", opts->compression, "gzip, zstd or none");
  sub->add_option("--compression-level", opts->compression_level, "Compression level (0: default)");
  sub->add_option("--platform", opts->platform, "os/arch[/variant] recorded in the config");
  sub->add_option("--cmd", opts->cmd, "Default command of the image");
  sub->callback([opts, exit_code] {
    Status s = Pack(*opts);
    if (!s.ok()) {
      std::cerr << "kiln pack: " << s.message() << "\n";
      *exit_code = kExitFailure;
    }
  });
}

}  // namespace

KILN_REGISTER_COMMAND("pack", RegisterPack);

}  // namespace kiln::cmd
