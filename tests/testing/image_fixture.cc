#include "tests/testing/image_fixture.h"

#include <cstdio>
#include <cstdlib>

#include "core/media_types.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "image fixture: %s\n", what.c_str());
  std::abort();
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().message());
  return std::move(r).value();
}

}  // namespace

FixtureImage MakeFixtureImage(const layers::OciLayout& layout, const std::string& scratch,
                              const std::vector<std::pair<std::string, std::string>>& files,
                              const std::string& tag, bool docker) {
  std::string tree = scratch + "/tree-" + tag;
  for (const auto& [path, content] : files) WriteFile(tree + "/" + path, content);
  std::string tar = scratch + "/layer-" + tag + ".tar";
  std::string out;
  if (RunShell("tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C " + tree + " -cf " + tar +
                   " . && gzip -n -k -f " + tar,
               &out) != 0) {
    Die("tar: " + out);
  }
  std::string tar_bytes = ReadFile(tar);
  std::string gz_bytes = ReadFile(tar + ".gz");
  Digest layer_digest = Must(layout.PutBlob(gz_bytes), "storing layer");

  ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.created = "2024-01-01T00:00:00Z";
  config.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  config.config.cmd = std::vector<std::string>{"/bin/sh"};
  config.diff_ids = {Sha256Of(tar_bytes)};
  config.history = {History{"2024-01-01T00:00:00Z", "COPY . / # fixture " + tag, "", "", false}};
  FixtureImage img;
  img.config = SerializeImageConfig(config);
  Digest config_digest = Must(layout.PutBlob(img.config), "storing config");

  Manifest m;
  m.media_type = std::string(docker ? media_type::kDockerManifest : media_type::kOciManifest);
  m.config = Descriptor{std::string(docker ? media_type::kDockerConfig : media_type::kOciConfig), config_digest,
                        static_cast<int64_t>(img.config.size()), {}, {}, std::nullopt, ""};
  m.layers.push_back(Descriptor{std::string(docker ? media_type::kDockerLayerGzip : media_type::kOciLayerGzip),
                                layer_digest, static_cast<int64_t>(gz_bytes.size()), {}, {}, std::nullopt, ""});
  img.manifest = SerializeManifest(m);
  Digest manifest_digest = Must(layout.PutBlob(img.manifest), "storing manifest");
  img.manifest_desc = Descriptor{m.media_type, manifest_digest, static_cast<int64_t>(img.manifest.size()),
                                 {}, {}, std::nullopt, ""};
  Status s = layout.AddToIndex(img.manifest_desc, tag);
  if (!s.ok()) Die("index: " + s.message());
  img.layer_files.push_back(layout.BlobPath(layer_digest));
  return img;
}

}  // namespace kiln::testing
