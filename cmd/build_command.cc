// `kiln build` (alias `kiln executor`, and the whole binary when it is invoked as `executor`):
// Kaniko's executor command line, flag for flag, mapped onto executor::BuildOptions.
//
// Kaniko flags kiln does not implement yet are still declared, so that using one fails with a clear
// message instead of being ignored (or CLI11's generic "not expected"); those that mean nothing for
// kiln are accepted and named once in the log.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "cmd/commands.h"
#include "core/stop_signals.h"
#include "executor/dockerfile/args.h"
#include "executor/dockerfile/mount.h"
#include "executor/pipeline/build.h"
#include "executor/pipeline/contexts.h"
#include "layers/decompress.h"
#include "layers/oci_layout.h"

extern char** environ;

namespace kiln::cmd {
namespace {

// The flags as typed; RunBuildCommand parses each into executor::BuildOptions once.
struct BuildFlags {
  executor::BuildOptions o;
  std::vector<std::string> destinations;
  std::string tar_path;
  std::string oci_layout_path;
  std::vector<std::string> platforms;
  std::string compression = "gzip";
  std::vector<std::string> labels;
  std::vector<std::string> secrets;
  std::vector<std::string> ssh;
  std::vector<std::string> policy_files;
  std::string cache_mount_max_size;
  std::string max_layer_size, decompression_ratio_min_size;
  std::string verbosity = "info";
  std::vector<std::string> insecure_registries;
  std::vector<std::string> skip_tls_verify_registries;
  std::vector<std::string> registry_mirrors;
  std::vector<std::string> registry_client_certs;
  std::vector<std::string> registry_maps;
  bool skip_default_registry_fallback = false;
  std::vector<std::string> registry_certificates;
  std::string log_format = "text";
  std::string sandbox = "auto";
  bool ignore_var_run = true;
  int image_fs_extract_retry = 0;
  bool preserve_context = false;
  bool skip_unused_stages = true;
  std::string kaniko_dir;
  std::string cache_ttl;
  bool compressed_caching = true;
  std::string context_sub_path;
  std::string git;  // Kaniko's --git KEY=VALUE,...
  std::vector<std::string> build_contexts;
  bool no_push_cache = false;
  // Kaniko flags that mean nothing for kiln: accepted, and each named once in the log.
  std::vector<std::string> accepted_notes;
  // Declared for the message only.
  std::vector<std::pair<std::string, std::string>> unsupported_values;
};

// Declares a Kaniko flag (`is_flag`) or option that kiln only takes note of: `on_set` runs when it is
// given (its value, if any, is not needed).
void DeclareNoted(CLI::App* sub, const std::string& name, bool is_flag, const std::string& help,
                  const std::string& group, std::function<void()> on_set) {
  CLI::Option* opt = is_flag ? sub->add_flag_function(name, [on_set](int64_t) { on_set(); }, help)
                             : sub->add_option_function<std::string>(
                                   name, [on_set](const std::string&) { on_set(); }, help);
  opt->group(group);
}

// A Kaniko flag kiln knows but does not implement: accepted by the parser, refused when set.
void Unsupported(CLI::App* sub, BuildFlags* f, const std::string& name, const std::string& why, bool is_flag) {
  DeclareNoted(sub, name, is_flag, "(Kaniko) not supported yet", "Kaniko flags not supported yet",
               [f, name, why] { f->unsupported_values.emplace_back(name, why); });
}

// A Kaniko flag that means nothing for kiln: accepted, and said once at info level when set.
void Accepted(CLI::App* sub, BuildFlags* f, const std::string& name, const std::string& note, bool is_flag) {
  DeclareNoted(sub, name, is_flag, "(Kaniko) accepted; " + note, "Kaniko flags kiln accepts but does not need",
               [f, text = name + ": " + note] { f->accepted_notes.push_back(text); });
}

std::map<std::string, std::string> Environ() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

// Kaniko's BENCHMARK_FILE: the time each phase took, as JSON (nanoseconds, as Kaniko's timing
// package writes durations), for comparing builds.
Status WriteBenchmarkFile(const std::string& path, const executor::PhaseTimes& t, std::chrono::nanoseconds total) {
  nlohmann::ordered_json j;
  j["Base images"] = t.base.count();
  j["RUN"] = t.run.count();
  j["Snapshots"] = t.snapshot.count();
  j["COPY"] = t.copy.count();
  j["Layers"] = t.layer.count();
  j["Push"] = t.push.count();
  j["Outputs"] = t.outputs.count();
  j["Total"] = total.count();
  j["layers"] = t.layers;
  j["layer_bytes"] = t.layer_bytes;
  std::ofstream out(path, std::ios::trunc);
  if (!out) return ErrnoStatus("writing " + path, errno);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return IoError("writing " + path);
  return OkStatus();
}

// Kaniko's --git "branch=B,single-branch=BOOL,recurse-submodules=BOOL,insecure-skip-tls=BOOL", and
// BuildKit's --build-context NAME=VALUE.
Status ParseContextFlags(BuildFlags& f) {
  executor::BuildOptions& o = f.o;
  for (const std::string& bc : f.build_contexts) {
    size_t eq = bc.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == bc.size()) {
      return InvalidArgument("--build-context must be NAME=VALUE (a directory, docker-image://REF or a git URL), not \"" +
                             bc + "\"");
    }
    o.build_contexts.emplace_back(bc.substr(0, eq), bc.substr(eq + 1));
  }
  if (f.git.empty()) return OkStatus();
  if (!executor::IsGitContext(o.context)) {
    return InvalidArgument("--git applies to a git build context (--context git://...), not to \"" + o.context + "\"");
  }
  size_t start = 0;
  while (start <= f.git.size()) {
    size_t comma = f.git.find(',', start);
    std::string kv = f.git.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? f.git.size() + 1 : comma + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string key = kv.substr(0, eq), value = eq == std::string::npos ? "" : kv.substr(eq + 1);
    auto boolean = [&](bool* out) -> Status {
      if (value == "true" || value == "1") *out = true;
      else if (value == "false" || value == "0") *out = false;
      else return InvalidArgument("--git " + key + " must be true or false, not \"" + value + "\"");
      return OkStatus();
    };
    if (eq == std::string::npos) return InvalidArgument("--git takes KEY=VALUE pairs, not \"" + kv + "\"");
    if (key == "branch") o.git.branch = value;
    else if (key == "single-branch") KILN_RETURN_IF_ERROR(boolean(&o.git.single_branch));
    else if (key == "recurse-submodules") KILN_RETURN_IF_ERROR(boolean(&o.git.recurse_submodules));
    else if (key == "insecure-skip-tls") KILN_RETURN_IF_ERROR(boolean(&o.git.insecure_skip_tls));
    else {
      return InvalidArgument("--git: unknown option \"" + key +
                             "\" (Kaniko's are branch, single-branch, recurse-submodules, insecure-skip-tls)");
    }
  }
  return OkStatus();
}

// Each flag parsed once into its typed BuildOptions field; errors name the flag.
Status ParseTypedFlags(BuildFlags& f) {
  executor::BuildOptions& o = f.o;
  std::vector<std::string> repo_tags;
  for (const std::string& d : f.destinations) {
    Result<Reference> ref = Reference::Parse(d);
    if (!ref.ok()) return ref.status().WithContext("--destination");
    o.destinations.push_back(*ref);
    if (!ref->TagOrDefault().empty()) repo_tags.push_back(ref->Name() + ":" + ref->TagOrDefault());
  }
  if (!f.tar_path.empty()) o.local_outputs.push_back(ImageLocation::DockerArchive(f.tar_path, repo_tags));
  if (!f.oci_layout_path.empty()) {
    auto [dir, tag] = layers::SplitLayoutPath(f.oci_layout_path);
    o.local_outputs.push_back(ImageLocation::OciLayout(dir, tag));
  }
  // --custom-platform a,b or repeated: several platforms make a multi-platform build (an index).
  std::vector<Platform> platforms;
  for (const std::string& value : f.platforms) {
    size_t start = 0;
    for (;;) {
      size_t comma = value.find(',', start);
      std::string one = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      Result<Platform> p = dockerfile::ParsePlatform(one);
      if (!p.ok()) return p.status().WithContext("--custom-platform");
      for (const Platform& seen : platforms) {
        if (seen.ToString() == p->ToString()) {
          return InvalidArgument("--custom-platform: " + p->ToString() + " is named twice");
        }
      }
      platforms.push_back(*p);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (platforms.size() == 1) o.platform = platforms[0];
  if (platforms.size() > 1) o.platforms = platforms;
  std::optional<media_type::Compression> compression = layers::CompressionFromName(f.compression);
  if (!compression) {
    return InvalidArgument("--compression must be gzip, zstd or uncompressed, not \"" + f.compression + "\"");
  }
  o.compression = *compression;
  if (!f.cache_mount_max_size.empty()) {
    Result<int64_t> n = dockerfile::ParseRamInBytes(f.cache_mount_max_size);
    if (!n.ok() || *n < 0) {
      return InvalidArgument("--cache-mount-max-size must be a size such as 512m or 2g, not \"" +
                             f.cache_mount_max_size + "\"");
    }
    o.cache_mount_max_bytes = static_cast<uint64_t>(*n);
  }
  for (const auto& [flag, value, dest] :
       {std::tuple{"--max-layer-size", &f.max_layer_size, &o.max_layer_bytes},
        std::tuple{"--decompression-ratio-min-size", &f.decompression_ratio_min_size, &o.decompression_ratio_min_bytes}}) {
    if (value->empty()) continue;
    Result<int64_t> n = dockerfile::ParseRamInBytes(*value);
    if (!n.ok() || *n < 0) {
      return InvalidArgument(std::string(flag) + " must be a size such as 512m or 64g, not \"" + *value + "\"");
    }
    *dest = static_cast<uint64_t>(*n);
  }
  for (const std::string& s : f.ssh) {
    Result<executor::SshSource> ssh = executor::ParseSshFlag(s);
    if (!ssh.ok()) return ssh.status();
    o.ssh.push_back(*ssh);
  }
  for (const std::string& s : f.secrets) {
    Result<executor::SecretSource> secret = executor::ParseSecretFlag(s, o.environ);
    if (!secret.ok()) return secret.status();
    o.secrets.push_back(*secret);
  }
  for (const std::string& l : f.labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("--label must be KEY=VALUE, not \"" + l + "\"");
    o.labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
  }
  o.log_level = executor::ParseLogLevel(f.verbosity);
  // Registry settings: the system store from the environment, then the flags.
  registry::RegistryAccessOptions& r = o.registry;
  auto env = [&](const char* k) {
    auto it = o.environ.find(k);
    return it == o.environ.end() ? std::string() : it->second;
  };
  r.system_ca_file = env("SSL_CERT_FILE");
  r.system_ca_dir = env("SSL_CERT_DIR");
  for (const std::string& rc : f.registry_certificates) {
    size_t eq = rc.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == rc.size()) {
      return InvalidArgument("--registry-certificate must be REGISTRY=PATH, not \"" + rc + "\"");
    }
    // The last one given for a registry wins, as Kaniko's map does.
    r.registry_certificates[rc.substr(0, eq)] = {rc.substr(eq + 1)};
  }
  for (const std::string& c : f.registry_client_certs) KILN_RETURN_IF_ERROR(r.AddRegistryClientCert(c));
  for (const std::string& m : f.registry_maps) KILN_RETURN_IF_ERROR(r.AddRegistryMap(m));
  r.insecure_registries.insert(f.insecure_registries.begin(), f.insecure_registries.end());
  r.skip_verify_registries.insert(f.skip_tls_verify_registries.begin(), f.skip_tls_verify_registries.end());
  r.mirrors = f.registry_mirrors;
  r.mirror_fallback = !f.skip_default_registry_fallback;
  return ParseContextFlags(f);
}

int RunBuildCommand(BuildFlags& f) {
  for (const auto& [name, why] : f.unsupported_values) {
    std::cerr << "kiln: " << name << " is a Kaniko flag that kiln does not implement yet (" << why << ")\n";
  }
  if (!f.unsupported_values.empty()) return kExitUsage;
  executor::BuildOptions& o = f.o;
  o.environ = Environ();
  // The environment variables Kaniko reads, with its meaning: they add to the flags.
  if (auto it = o.environ.find("KANIKO_NO_PUSH"); it != o.environ.end()) {
    static const std::set<std::string> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
    static const std::set<std::string> kFalse = {"0", "f", "F", "FALSE", "false", "False"};
    if (kTrue.count(it->second)) {
      o.no_push = true;
    } else if (!kFalse.count(it->second)) {
      std::cerr << "kiln: KANIKO_NO_PUSH must be true or false, not \"" << it->second << "\"\n";
      return kExitUsage;
    }
  }
  if (auto it = o.environ.find("KANIKO_REGISTRY_MIRROR"); it != o.environ.end() && !it->second.empty()) {
    f.registry_mirrors.push_back(it->second);
  }
  if (auto it = o.environ.find("KANIKO_REGISTRY_MAP"); it != o.environ.end() && !it->second.empty()) {
    f.registry_maps.push_back(it->second);
  }
  if (Status s = ParseTypedFlags(f); !s.ok()) {
    // A value CLI11 could not check (a reference, a KEY=VALUE pair): exit 1 as Kaniko does for any
    // error, so CI rules keyed on its exit codes keep working.
    std::cerr << "kiln: " << s.message() << "\n";
    return kExitFailure;
  }
  // $KILN_POLICY and every --policy apply together (a job cannot switch a central policy off).
  if (Result<std::vector<policy::Policy>> p = policy::LoadPolicies(f.policy_files, o.environ); p.ok()) {
    o.policies = std::move(p).value();
  } else {
    std::cerr << "kiln: " << p.status().message() << "\n";
    return kExitUsage;
  }
  if (!f.context_sub_path.empty() && executor::IsGitContext(o.context)) {
    o.context_sub_path = f.context_sub_path;  // applied below the checkout (executor/pipeline/contexts.h)
  } else if (!f.context_sub_path.empty()) {
    std::string dir = o.context.rfind("dir://", 0) == 0 ? o.context.substr(6) : o.context;
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::cerr << "kiln: --context-sub-path needs a directory context; \"" << o.context
                << "\" is not one (unpack the tarball and pass the directory)\n";
      return kExitUsage;
    }
    std::string sub = f.context_sub_path;
    while (!sub.empty() && sub.front() == '/') sub.erase(0, 1);
    if (sub == ".." || sub.rfind("../", 0) == 0 || sub.find("/../") != std::string::npos ||
        (sub.size() >= 3 && sub.compare(sub.size() - 3, 3, "/..") == 0)) {
      std::cerr << "kiln: --context-sub-path must stay inside the context, not \"" << f.context_sub_path << "\"\n";
      return kExitUsage;
    }
    o.context = dir + "/" + sub;
  }
  if (f.log_format != "text" && f.log_format != "color" && f.log_format != "json" && f.log_format != "plain") {
    std::cerr << "kiln: --log-format must be text, color, json or plain\n";
    return kExitUsage;
  }
  // text: lines, and at a terminal a live step line in colour; color: colour even in CI logs;
  // plain: lines only, never rewritten or coloured; json: one record per line.
  if (f.log_format == "json") o.log_format = executor::LogFormat::kJson;
  if (f.log_format == "color") o.log_format = executor::LogFormat::kColor;
  if (f.log_format == "plain") o.log_format = executor::LogFormat::kPlain;
  if (f.sandbox == "auto") o.sandbox = executor::SandboxChoice::kAuto;
  else if (f.sandbox == "rootless") o.sandbox = executor::SandboxChoice::kRootless;
  else if (f.sandbox == "chroot") o.sandbox = executor::SandboxChoice::kChroot;
  else if (f.sandbox == "ptrace") o.sandbox = executor::SandboxChoice::kPtrace;
  else {
    std::cerr << "kiln: --sandbox must be auto, rootless, chroot or ptrace\n";
    return kExitUsage;
  }
  if (f.ignore_var_run) o.ignore_paths.push_back("/var/run");
  o.image_download_retry = std::max(o.image_download_retry, f.image_fs_extract_retry);
  if (!f.kaniko_dir.empty() && o.state_dir.empty()) o.state_dir = f.kaniko_dir;
  if (!f.cache_ttl.empty()) {
    // Go durations as Kaniko takes them: "336h", "90m", "1h30m", "3600s".
    int64_t seconds = 0, n = 0;
    bool digits = false, ok = true;
    for (char c : f.cache_ttl) {
      if (c >= '0' && c <= '9') {
        n = n * 10 + (c - '0');
        digits = true;
      } else if (digits && (c == 'h' || c == 'm' || c == 's')) {
        seconds += n * (c == 'h' ? 3600 : c == 'm' ? 60 : 1);
        n = 0;
        digits = false;
      } else {
        ok = false;
      }
    }
    if (!ok || digits) {
      std::cerr << "kiln: --cache-ttl must be a duration like 336h or 90m, not \"" << f.cache_ttl << "\"\n";
      return kExitUsage;
    }
    o.cache_ttl = std::chrono::seconds(seconds);
  }
  auto sde = o.environ.find("SOURCE_DATE_EPOCH");
  for (const std::string& a : o.build_args) {
    if (a.rfind("SOURCE_DATE_EPOCH=", 0) == 0) o.source_date_epoch = std::strtoll(a.c_str() + 18, nullptr, 10);
  }
  if (!o.source_date_epoch && sde != o.environ.end() && !sde->second.empty()) {
    o.source_date_epoch = std::strtoll(sde->second.c_str(), nullptr, 10);
  }

  auto log = executor::NewFdBuildLog(STDERR_FILENO, o.log_format, o.log_level, o.log_timestamp,
                                     o.environ.count("GITLAB_CI") > 0);
  for (const std::string& note : f.accepted_notes) log->Info(note);
  if (f.no_push_cache) {
    o.cache_read_only = true;
    log->Info("--no-push-cache: the layer cache is read, and nothing new is stored in it");
  }
  executor::BuildDeps deps;
  deps.log = log.get();
  auto started = std::chrono::steady_clock::now();
  // Rootless: the whole build runs as root in one user namespace (executor/build.h).
  return executor::RunInBuildNamespace(o, deps, [&]() -> int {
    // A cancelled CI job (SIGTERM) or Ctrl-C: the running step's processes end and the build's work
    // directory goes before kiln exits with 128 + the signal. Installed here, inside the build's user
    // namespace when there is one (it starts a thread; the namespace needs a single-threaded caller).
    InstallStopHandlers([](int sig) {
      std::cerr << "kiln: " << ::strsignal(sig) << ": stopping the build and removing its work directory\n";
    });
    Result<executor::BuildResult> r = executor::RunBuild(o, deps);
    if (!r.ok()) {
      log->Error(r.status().message());
      // A failing RUN exits with the step's own code, as Kaniko does (GitLab's allow_failure:exit_codes).
      if (r.status().code() == ErrorCode::kPolicyViolation) return kExitPolicy;
      return r.status().step_exit_code() != 0 ? r.status().step_exit_code() : kExitFailure;
    }
    if (o.print_plan) std::cout << r->plan_json << "\n";
    if (auto it = o.environ.find("BENCHMARK_FILE"); it != o.environ.end() && !it->second.empty() &&
                                                    it->second != "false") {
      Status w = WriteBenchmarkFile(it->second, r->times, std::chrono::steady_clock::now() - started);
      if (!w.ok()) log->Warn("BENCHMARK_FILE: " + w.message());
    }
    return kExitOk;
  }, kExitFailure);
}

void RegisterBuild(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<BuildFlags>();
  executor::BuildOptions& o = f->o;
  CLI::App* sub = app.add_subcommand("build", "Build an image from a Dockerfile (takes Kaniko's executor flags)");
  sub->alias("executor");
  auto multi = [](CLI::Option* opt) { return opt->allow_extra_args(false)->expected(1)->take_all(); };

  sub->add_option("-c,--context", o.context,
                  "Build context: a directory, dir://DIR, tar://FILE, tar://stdin, a .tar.gz, or a git repository "
                  "(Kaniko's git://HOST/REPO.git#REF#COMMIT, or any git URL)")
      ->capture_default_str();
  sub->add_option("-f,--dockerfile", o.dockerfile, "Path to the Dockerfile (default CONTEXT/Dockerfile)");
  multi(sub->add_option("-d,--destination", f->destinations, "Where to push the image (repeatable)"));
  multi(sub->add_option("--build-arg", o.build_args, "ARG value NAME=VALUE, or NAME to take it from the environment"));
  sub->add_option("--target", o.target, "Build this stage (and what it needs) instead of the last");
  multi(sub->add_option("--custom-platform,--customPlatform,--platform", f->platforms,
                        "Platform to build for, os/arch[/variant]; several (comma-separated or repeated) make an "
                        "index of one image per platform"));
  multi(sub->add_option("--label", f->labels, "Set a label KEY=VALUE on the image (repeatable)"));
  sub->add_option("--cache-mount-max-size", f->cache_mount_max_size,
                  "With --cache and a registry cache repo: export RUN --mount=type=cache directories up to this "
                  "size (default 1g; 0 = never)");
  multi(sub->add_option("--ssh", f->ssh,
                        "An ssh agent for RUN --mount=type=ssh: default ($SSH_AUTH_SOCK) or ID=SOCKET|KEY[,KEY] (repeatable)"));
  multi(sub->add_option("--secret", f->secrets,
                        "A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable)"));
  sub->add_flag("--no-push", o.no_push, "Build without pushing");
  sub->add_option("--tar-path,--tarPath", f->tar_path, "Also write the image as a docker-archive tar");
  sub->add_option("--oci-layout-path", f->oci_layout_path, "Also write the image into an OCI layout DIR[:TAG]");
  sub->add_option("--digest-file", o.digest_file, "Write the image digest to this file");
  sub->add_option("--image-name-with-digest-file", o.image_name_with_digest_file,
                  "Write REGISTRY/REPO@DIGEST for each destination to this file");
  sub->add_option("--image-name-tag-with-digest-file", o.image_name_tag_with_digest_file,
                  "Write REGISTRY/REPO:TAG@DIGEST for each destination to this file");
  sub->add_flag("--skip-push-permission-check", o.skip_push_permission_check,
                "Do not check before building that every destination accepts a push");
  sub->add_flag("--insecure", o.insecure_push, "Push to the destinations' registries over plain HTTP");
  sub->add_flag("--insecure-pull", o.insecure_pull, "Pull from registries over plain HTTP");
  auto* insecure_reg = multi(sub->add_option("--insecure-registry", f->insecure_registries, "Use plain HTTP for this registry (repeatable)"));
  (void)insecure_reg;
  sub->add_flag("--skip-tls-verify", o.skip_tls_verify_push, "Do not verify the destinations' TLS certificates");
  sub->add_flag("--skip-tls-verify-pull", o.skip_tls_verify_pull, "Do not verify TLS certificates when pulling");
  multi(sub->add_option("--skip-tls-verify-registry", f->skip_tls_verify_registries,
                        "Do not verify this registry's TLS certificate (repeatable)"));
  multi(sub->add_option("--registry-certificate", f->registry_certificates,
                        "Trust this CA file or certs.d directory for a registry: REGISTRY=PATH (repeatable)"));
  multi(sub->add_option("--registry-mirror", f->registry_mirrors,
                        "Mirror for docker.io: HOST[/PATH] (repeatable, tried in order; also $KANIKO_REGISTRY_MIRROR)"));
  multi(sub->add_option("--registry-map", f->registry_maps,
                        "REGISTRY=MIRROR[/PATH]: pull REGISTRY's images from MIRROR first (repeatable or ';'-separated; "
                        "also $KANIKO_REGISTRY_MAP)"));
  multi(sub->add_option("--registry-client-cert", f->registry_client_certs,
                        "REGISTRY=CERT_FILE,KEY_FILE: a client certificate for mutual TLS (repeatable)"));
  sub->add_option("--context-sub-path", f->context_sub_path, "Build from this sub-directory of the context");
  sub->add_flag("--no-push-cache", f->no_push_cache, "Read the layer cache but store nothing new in it");
  sub->add_flag("--skip-default-registry-fallback", f->skip_default_registry_fallback,
                "Fail when every mirror failed instead of trying docker.io");
  sub->add_option("--push-retry", o.push_retry, "Extra attempts for a failed push");
  sub->add_option("--image-download-retry", o.image_download_retry, "Extra attempts for a failed pull");
  sub->add_option("--image-fs-extract-retry", f->image_fs_extract_retry, "Same as --image-download-retry");
  sub->add_flag("--single-snapshot", o.single_snapshot, "One layer for the whole target stage");
  sub->add_option("--snapshot-mode,--snapshotMode", o.snapshot_mode, "full, redo or time (kiln's stat index serves all three)")
      ->check(CLI::IsMember({"full", "redo", "time"}));
  sub->add_flag("--reproducible", o.reproducible, "Zero timestamps (or SOURCE_DATE_EPOCH) in layers, config and history");
  sub->add_option("--compression", f->compression, "Layer compression: gzip, zstd or uncompressed")
      ->check(CLI::IsMember({"gzip", "zstd", "uncompressed", "none"}));
  sub->add_option("--compression-level", o.compression_level, "Compression level (0 = default)");
  multi(sub->add_option("--ignore-path", o.ignore_paths, "Leave this path out of RUN snapshots (repeatable)"));
  sub->add_flag("--ignore-var-run,--whitelist-var-run", f->ignore_var_run, "Leave /var/run out of snapshots (default true)");
  sub->add_flag("--cleanup", o.cleanup, "Remove the build's working files at the end (kiln always does)");
  sub->add_flag("--preserve-context", f->preserve_context, "Accepted; kiln never modifies the context");
  sub->add_flag("--skip-unused-stages", f->skip_unused_stages, "Accepted; kiln always skips unneeded stages");
  sub->add_option("-v,--verbosity", f->verbosity, "panic, fatal, error, warn, info, debug or trace")
      ->check(CLI::IsMember({"panic", "fatal", "error", "warn", "info", "debug", "trace"}));
  sub->add_option("--log-format", f->log_format,
                  "text (live step lines at a terminal), color, plain (never rewritten) or json");
  sub->add_flag("--log-timestamp", o.log_timestamp, "Timestamp every log line");
  sub->add_option("--kaniko-dir", f->kaniko_dir, "Same as --state-dir");
  sub->add_flag("--cache", o.cache, "Reuse layers of earlier builds (see --cache-repo, --cache-dir)");
  sub->add_option("--cache-repo", o.cache_repo, "Registry repository of the layer cache (default DESTINATION/cache)");
  sub->add_option("--cache-dir", o.cache_dir, "Local directory of the layer cache (and of base images from `kiln warm`)");
  sub->add_option("--cache-ttl", f->cache_ttl, "How long cached layers stay valid, e.g. 336h, 30m (default two weeks)");
  sub->add_flag("--cache-run-layers", o.cache_run_layers, "Cache RUN layers (default true)");
  sub->add_flag("--cache-copy-layers", o.cache_copy_layers, "Cache COPY/ADD layers (default true in kiln)");
  sub->add_flag("--compressed-caching", f->compressed_caching, "Accepted; kiln's cache never holds layers in memory");
  // kiln's own.
  sub->add_option("--state-dir", o.state_dir, "kiln's blob store and work directory (default /var/lib/kiln as root)")
      ->group("kiln's own flags");
  sub->add_option("--sandbox", f->sandbox, "RUN sandbox: auto, rootless (user namespace), chroot or ptrace")->group("kiln's own flags");
  sub->add_option("--jobs", o.jobs,
                  "Build up to N stages that do not depend on each other at once (default: the number of cores; "
                  "1: one after the other)")
      ->check(CLI::NonNegativeNumber)
      ->group("kiln's own flags");
  sub->add_option("--max-layer-size", f->max_layer_size,
                  "Fail when a pulled layer decompresses to more than this, e.g. 64g (default 64g; 0 = no limit)")
      ->group("kiln's own flags");
  sub->add_option("--max-decompression-ratio", o.max_decompression_ratio,
                  "Fail when a pulled layer expands more than N times its compressed size, once past "
                  "--decompression-ratio-min-size (default 1000; 0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->group("kiln's own flags");
  sub->add_option("--decompression-ratio-min-size", f->decompression_ratio_min_size,
                  "Where --max-decompression-ratio starts to apply (default 1g)")
      ->group("kiln's own flags");
  sub->add_flag("--keep-work", o.keep_work, "Keep the rootfs directories (for debugging)")->group("kiln's own flags");
  sub->add_flag("--print-plan", o.print_plan, "Print the stage plan as JSON and stop")->group("kiln's own flags");
  CLI::Option* sbom = sub->add_option("--sbom", o.sbom_file,
                                      "Attach an SPDX SBOM to each pushed image (OCI referrer); with =FILE also write it there")
                          ->expected(0, 1)->type_name("[=FILE]")->group("kiln's own flags");
  CLI::Option* provenance = sub->add_option("--provenance", o.provenance_file,
                                            "Attach a SLSA v1 provenance statement likewise; with =FILE also write it there")
                                ->expected(0, 1)->type_name("[=FILE]")->group("kiln's own flags");
  multi(sub->add_option("--policy", f->policy_files,
                        "A policy file (YAML or JSON, docs/policy.md) the build must comply with; adds to $KILN_POLICY "
                        "(repeatable; exit 77 on a violation)"))
      ->group("kiln's own flags");
  sub->add_flag("--check", o.check_only, "Only run the build checks (BuildKit's rules; # check= directive) and stop")
      ->group("kiln's own flags");

  sub->add_option("--git", f->git,
                  "Options of a git context: branch=NAME,single-branch=BOOL,recurse-submodules=BOOL,insecure-skip-tls=BOOL");
  multi(sub->add_option("--build-context", f->build_contexts,
                        "Named context for FROM NAME and COPY --from=NAME: NAME=DIR, NAME=docker-image://REF, NAME=oci-layout://DIR[:TAG] or "
                        "NAME=GIT-URL (repeatable; BuildKit's)"))
      ->group("kiln's own flags");
  Accepted(sub, f.get(), "--force", "kiln never builds in the host's own filesystem, so there is nothing to force", true);
  Accepted(sub, f.get(), "--use-new-run", "kiln's RUN snapshots are always incremental (what --use-new-run chose)", true);
  Accepted(sub, f.get(), "--push-ignore-immutable-tag-errors",
           "kiln reports a registry's refusal to overwrite an immutable tag as a push error", true);
  Unsupported(sub, f.get(), "--materialize", "not implemented", true);

  // --help in groups a Kaniko user recognises; kiln's own flags last.
  static const std::map<std::string, std::string> kGroups = {
      {"--context", "Build"}, {"--dockerfile", "Build"}, {"--build-arg", "Build"}, {"--target", "Build"},
      {"--custom-platform", "Build"}, {"--label", "Build"}, {"--context-sub-path", "Build"}, {"--git", "Build"},
      {"--single-snapshot", "Build"}, {"--snapshot-mode", "Build"}, {"--reproducible", "Build"},
      {"--ignore-path", "Build"}, {"--ignore-var-run", "Build"}, {"--cleanup", "Build"},
      {"--preserve-context", "Build"}, {"--skip-unused-stages", "Build"}, {"--kaniko-dir", "Build"},
      {"--destination", "Output"}, {"--no-push", "Output"}, {"--tar-path", "Output"},
      {"--oci-layout-path", "Output"}, {"--digest-file", "Output"}, {"--image-name-with-digest-file", "Output"},
      {"--image-name-tag-with-digest-file", "Output"}, {"--compression", "Output"},
      {"--compression-level", "Output"}, {"--skip-push-permission-check", "Output"},
      {"--insecure", "Registry"}, {"--insecure-pull", "Registry"}, {"--insecure-registry", "Registry"},
      {"--skip-tls-verify", "Registry"}, {"--skip-tls-verify-pull", "Registry"},
      {"--skip-tls-verify-registry", "Registry"}, {"--registry-certificate", "Registry"},
      {"--registry-client-cert", "Registry"}, {"--registry-mirror", "Registry"}, {"--registry-map", "Registry"},
      {"--skip-default-registry-fallback", "Registry"}, {"--push-retry", "Registry"},
      {"--image-download-retry", "Registry"}, {"--image-fs-extract-retry", "Registry"},
      {"--cache", "Cache"}, {"--cache-repo", "Cache"}, {"--cache-dir", "Cache"}, {"--cache-ttl", "Cache"},
      {"--cache-run-layers", "Cache"}, {"--cache-copy-layers", "Cache"}, {"--compressed-caching", "Cache"},
      {"--no-push-cache", "Cache"}, {"--verbosity", "Logging"}, {"--log-format", "Logging"},
      {"--log-timestamp", "Logging"}};
  for (CLI::Option* opt : sub->get_options()) {
    for (const std::string& name : opt->get_lnames()) {
      if (auto it = kGroups.find("--" + name); it != kGroups.end()) {
        opt->group("Kaniko flags: " + it->second);
        break;
      }
    }
  }

  sub->callback([f, exit_code, sbom, provenance] {
    f->o.sbom = sbom->count() > 0;
    f->o.provenance = provenance->count() > 0;
    f->o.builder_version = kKilnVersion;
    *exit_code = RunBuildCommand(*f);
  });
}

}  // namespace

KILN_REGISTER_COMMAND("build", RegisterBuild);

}  // namespace kiln::cmd
