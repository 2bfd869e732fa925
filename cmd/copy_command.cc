// `kiln copy SRC DST`: copies an image or a whole index between registries, OCI layouts and
// docker-archives (skopeo's transport names: docker://REF or a bare REF, oci:DIR[:TAG],
// docker-archive:PATH[:REF]), keeping digests when nothing has to change. Blobs go first (HEAD,
// cross-repository mount, upload), the tagged manifest last. Credentials come from docker's
// config.json ($DOCKER_CONFIG, ~/.docker, /kaniko/.docker) and its credential helpers.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/registry_flags.h"
#include "core/image_model.h"
#include "registry/access_options.h"
#include "core/image_copy.h"
#include "core/image_location.h"
#include "executor/image/locations.h"

namespace kiln::cmd {
namespace {

struct CopyFlags {
  std::string src, dst;
  std::string platform;
  bool all = false;
  RegistryFlags registries;
  bool insecure = false;         // plain HTTP for the registries named by SRC and DST
  bool skip_tls_verify = false;  // no certificate check for the registries named by SRC and DST
  int retry = 4;
  int parallel = 3;
  std::string digest_file;
  std::string verbosity = "info";
};

enum class Verbosity { kError, kInfo, kDebug };

Result<Verbosity> ParseVerbosity(const std::string& v) {
  // Kaniko's logrus levels.
  if (v == "panic" || v == "fatal" || v == "error" || v == "warn" || v == "warning") return Verbosity::kError;
  if (v == "info") return Verbosity::kInfo;
  if (v == "debug" || v == "trace") return Verbosity::kDebug;
  return InvalidArgument("--verbosity must be one of panic, fatal, error, warn, info, debug, trace; not \"" + v + "\"");
}

struct Prepared {
  ImageLocation src, dst;
  registry::RegistryAccessOptions access;
  CopyOptions copy;
  Verbosity verbosity = Verbosity::kInfo;
};

// Everything that is the user's mistake (exit 2) is found here, before any I/O.
Result<Prepared> Prepare(const CopyFlags& f) {
  Prepared p;
  KILN_ASSIGN_OR_RETURN(p.verbosity, ParseVerbosity(f.verbosity));
  KILN_ASSIGN_OR_RETURN(p.src, ParseImageLocation(f.src));
  KILN_ASSIGN_OR_RETURN(p.dst, ParseImageLocation(f.dst));
  if (p.dst.kind == ImageLocation::Kind::kDockerArchive && p.dst.archive_index) {
    return InvalidArgument("destination " + f.dst + ": @N selects an image to read, it cannot name one to write");
  }
  if (!f.platform.empty() && f.all) return InvalidArgument("--platform and --all exclude each other");
  if (!f.platform.empty()) {
    KILN_ASSIGN_OR_RETURN(Platform pl, Platform::Parse(f.platform));
    p.copy.platform = pl;
  } else if (!f.all && p.dst.kind == ImageLocation::Kind::kDockerArchive) {
    // As skopeo: an archive holds one image, so an index contributes the machine's platform.
    p.copy.platform = Platform::Host();
  }
  if (f.retry < 0) return InvalidArgument("--retry must be 0 or more");
  if (f.parallel < 1) return InvalidArgument("--parallel must be 1 or more");
  p.copy.parallel = f.parallel;

  p.access = registry::RegistryAccessOptions::FromEnvironment();
  p.access.retry_attempts = f.retry + 1;
  p.copy.blob_attempts = f.retry + 1;
  KILN_RETURN_IF_ERROR(f.registries.ApplyTo(p.access));
  for (const auto& loc : {p.src, p.dst}) {
    if (loc.kind != ImageLocation::Kind::kRegistry) continue;
    if (f.insecure) p.access.insecure_registries.insert(loc.reference->registry());
    if (f.skip_tls_verify) p.access.skip_verify_registries.insert(loc.reference->registry());
  }
  return p;
}

const char* ActionName(BlobEvent::Action a) {
  switch (a) {
    case BlobEvent::Action::kCopied:
      return "copied ";
    case BlobEvent::Action::kSkipped:
      return "skipped";
    case BlobEvent::Action::kMounted:
      return "mounted";
  }
  return "?";
}

Status RunCopy(Prepared& p, const CopyFlags& f) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<CommandRegistryClient> session, CommandRegistryClient::Create(p.access));
  registry::Client& client = session->client();

  KILN_ASSIGN_OR_RETURN(auto source, executor::OpenImageSource(client, p.src));
  KILN_ASSIGN_OR_RETURN(auto sink, executor::OpenImageSink(client, p.dst));
  if (p.verbosity >= Verbosity::kInfo) {
    std::cout << "copying " << source->Describe() << " to " << sink->Describe() << "\n" << std::flush;
  }
  if (p.verbosity >= Verbosity::kInfo) {
    p.copy.on_blob = [](const BlobEvent& e) {
      std::cout << ActionName(e.action) << " " << e.blob.digest.ToString() << " " << e.blob.size << " bytes\n"
                << std::flush;
    };
  }
  KILN_ASSIGN_OR_RETURN(CopyResult r, CopyImage(*source, *sink, p.copy));
  if (p.verbosity >= Verbosity::kDebug) {
    std::cout << "blobs: " << r.blobs_copied << " copied (" << r.bytes_copied << " bytes), " << r.blobs_mounted
              << " mounted, " << r.blobs_skipped << " already present\n";
  }
  if (!f.digest_file.empty()) {
    // Kaniko's --digest-file: the digest alone, no newline.
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(f.digest_file));
    KILN_RETURN_IF_ERROR(out->Write(r.root.digest.ToString()));
    KILN_RETURN_IF_ERROR(out->Close());
  }
  std::cout << "digest " << r.root.digest.ToString() << "\n";
  return OkStatus();
}

void RegisterCopy(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<CopyFlags>();
  CLI::App* sub = app.add_subcommand(
      "copy", "Copy an image or index between registries (docker://REF or REF), OCI layouts (oci:DIR[:TAG]) "
              "and docker-archives (docker-archive:PATH[:REF])");
  sub->add_option("src", f->src, "Source image")->required();
  sub->add_option("dst", f->dst, "Destination image")->required();
  sub->add_option("--platform", f->platform, "Copy only this os/arch[/variant] out of an index");
  sub->add_flag("--all", f->all, "Copy every platform of an index (the default, except into a docker-archive)");
  f->registries.Declare(sub);
  sub->add_flag("--insecure", f->insecure, "Use plain HTTP for the registries of SRC and DST");
  sub->add_flag("--skip-tls-verify", f->skip_tls_verify, "Do not verify TLS certificates of the registries of SRC and DST");
  sub->add_option("--retry", f->retry, "Retries of a failed request or blob transfer (default 4)");
  sub->add_option("--parallel", f->parallel, "Blob transfers at once (default 3)");
  sub->add_option("--digest-file", f->digest_file, "Write the digest of the copied image to this file");
  sub->add_option("--verbosity,-v", f->verbosity, "Log level: error (quiet), info (default), debug");
  sub->callback([f, exit_code] {
    auto prepared = Prepare(*f);
    if (!prepared.ok()) {
      std::cerr << "kiln copy: " << prepared.status().message() << "\n";
      *exit_code = kExitUsage;
      return;
    }
    Status s = RunCopy(*prepared, *f);
    if (!s.ok()) {
      std::cerr << "kiln copy: " << s.message() << "\n";
      *exit_code = kExitFailure;
    }
  });
}

}  // namespace

KILN_REGISTER_COMMAND("copy", RegisterCopy);

}  // namespace kiln::cmd
