// `kiln warm IMAGE...`: Kaniko's warmer. Pulls base images into a cache dir (--cache-dir) so that a
// build given the same --cache-dir takes them from there and pulls nothing for them. Credentials
// come from docker's config.json ($DOCKER_CONFIG, ~/.docker, /kaniko/.docker) and its helpers.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/registry_flags.h"
#include "core/image_model.h"
#include "executor/image/cache_warm.h"
#include "executor/dockerfile/args.h"
#include "registry/access_options.h"

namespace kiln::cmd {
namespace {

struct WarmFlags {
  std::string cache_dir = "/cache";  // Kaniko's default
  std::vector<std::string> images;
  RegistryFlags registries;
  std::string platform;
};

struct Prepared {
  Platform platform;
  registry::RegistryAccessOptions access;
};

Result<Prepared> Prepare(const WarmFlags& f) {
  Prepared p;
  if (f.images.empty()) return InvalidArgument("name at least one image (kiln warm IMAGE... or --image IMAGE)");
  if (f.cache_dir.empty()) return InvalidArgument("--cache-dir is empty");
  p.platform = Platform::Host();
  if (!f.platform.empty()) {
    Result<Platform> pl = dockerfile::ParsePlatform(f.platform);
    if (!pl.ok()) return pl.status().WithContext("--custom-platform");
    p.platform = *pl;
  }
  p.access = registry::RegistryAccessOptions::FromEnvironment();
  KILN_RETURN_IF_ERROR(f.registries.ApplyTo(p.access));
  return p;
}

Status RunWarm(const Prepared& p, const WarmFlags& f) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<CommandRegistryClient> session, CommandRegistryClient::Create(p.access));
  registry::Client& client = session->client();
  for (const std::string& image : f.images) {
    executor::WarmStats stats;
    KILN_RETURN_IF_ERROR(executor::WarmBaseImage(client, image, p.platform, f.cache_dir, &stats));
    std::cout << "warmed " << stats.canonical << " (" << p.platform.ToString() << "): " << stats.blobs_fetched
              << " blobs fetched, " << stats.bytes_fetched << " bytes, " << stats.blobs_present
              << " already cached\n"
              << std::flush;
  }
  return OkStatus();
}

void RegisterWarm(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<WarmFlags>();
  CLI::App* sub = app.add_subcommand("warm", "Pull base images into a cache dir for builds with --cache-dir (Kaniko's warmer)");
  sub->add_option("images", f->images, "Images to cache");
  sub->add_option("--image,-i", f->images, "Image to cache (repeatable)")->allow_extra_args(false)->expected(1)->take_all();
  sub->add_option("--cache-dir,-c", f->cache_dir, "Directory of the cache (default /cache)");
  f->registries.Declare(sub);
  sub->add_option("--custom-platform", f->platform, "Platform (os/arch[/variant]) to cache from an index (default: this machine's)");
  sub->callback([f, exit_code] {
    auto prepared = Prepare(*f);
    if (!prepared.ok()) {
      std::cerr << "kiln warm: " << prepared.status().message() << "\n";
      *exit_code = kExitUsage;
      return;
    }
    Status s = RunWarm(*prepared, *f);
    if (!s.ok()) {
      std::cerr << "kiln warm: " << s.message() << "\n";
      *exit_code = kExitFailure;
    }
  });
}

}  // namespace

KILN_REGISTER_COMMAND("warm", RegisterWarm);

}  // namespace kiln::cmd
