// `kiln tree build DIR`, `kiln tree outdated DIR`, `kiln tree wait REF`: a directory of image
// definitions built in dependency order (docs/trees.md). The registry decides what is built: an
// image whose version tag exists is skipped, unless a tree ancestor is rebuilt in the same run, in
// which case the image gets a bumped version (and a changelog entry in the tree's files) and is
// rebuilt on the new parent. Each build is a child `kiln build` (cmd/tree_builds.h).
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "cmd/commands.h"
#include "cmd/registry_flags.h"
#include "cmd/tree_builds.h"
#include "core/image_model.h"
#include "core/io.h"
#include "core/reference.h"
#include "executor/tree/tree.h"

namespace kiln::cmd {
namespace {

constexpr char kBaseNameLabel[] = "org.opencontainers.image.base.name";
constexpr char kBaseDigestLabel[] = "org.opencontainers.image.base.digest";

struct TreeFlags {
  std::string dir;
  std::string registry, name_space;
  bool dry_run = false;
  int jobs = 2;
  std::string only, destination;
  std::vector<std::string> set_versions;  // NAME=VERSION
  std::string emit;                       // gitlab-ci | k8s
  std::string output;                     // --emit's file (default stdout)
  std::string emit_dir;                   // the tree's path in the pipeline's checkout
  std::string kiln_image, git_url, git_ref;
  std::vector<std::string> kiln_args;     // passed to every kiln build
  std::string state_dir;
  RegistryFlags registries;
};

// The session every subcommand shares: naming and a registry client.
struct Session {
  tree::TreeNaming naming;
  std::unique_ptr<CommandRegistryClient> registry;

  Result<std::unique_ptr<registry::Repository>> Open(const Reference& ref) {
    registry::Client& c = registry->client();
    return c.Open(c.PushEndpoint(ref.registry()), ref.repository(), false);
  }
  /// The digest `ref` (a tag) points at now, or nullopt when the registry does not have it.
  Result<std::optional<Digest>> Head(const std::string& ref_text) {
    KILN_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(ref_text));
    KILN_ASSIGN_OR_RETURN(auto repo, Open(ref));
    KILN_ASSIGN_OR_RETURN(std::optional<Descriptor> d, repo->HeadManifest(ref.Identifier()));
    if (!d) return std::optional<Digest>();
    return std::optional<Digest>(d->digest);
  }
};

Result<Session> OpenSession(const TreeFlags& f) {
  Session s;
  s.naming.registry = f.registry;
  s.naming.name_space = f.name_space;
  registry::RegistryAccessOptions access = registry::RegistryAccessOptions::FromEnvironment();
  KILN_RETURN_IF_ERROR(f.registries.ApplyTo(access));
  KILN_ASSIGN_OR_RETURN(s.registry, CommandRegistryClient::Create(access));
  return s;
}

// The registry flags again, for the child builds.
std::vector<std::string> RegistryArgs(const RegistryFlags& r) {
  std::vector<std::string> a;
  for (const auto& x : r.insecure_registries) a.push_back("--insecure-registry=" + x);
  for (const auto& x : r.skip_verify_registries) a.push_back("--skip-tls-verify-registry=" + x);
  for (const auto& x : r.registry_certificates) a.push_back("--registry-certificate=" + x);
  for (const auto& x : r.mirrors) a.push_back("--registry-mirror=" + x);
  for (const auto& x : r.registry_maps) a.push_back("--registry-map=" + x);
  return a;
}

std::string Rfc2822Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

enum class Action { kSkip, kBuild, kRebuild };

struct PlanEntry {
  std::string name;
  std::string old_version, version;
  Action action = Action::kSkip;
  std::string reason;
};

// What the registry says about each image, in tree order.
Result<std::vector<PlanEntry>> MakePlan(const tree::ImageTree& t, Session& s) {
  std::vector<PlanEntry> plan;
  std::map<std::string, const PlanEntry*> by_name;
  plan.reserve(t.order.size());
  for (const std::string& n : t.order) {
    const tree::TreeImage& img = t.images.at(n);
    PlanEntry e{n, img.version, img.version, Action::kSkip, ""};
    const PlanEntry* rebuilt_parent = nullptr;
    for (const std::string& p : img.parents) {
      if (by_name.at(p)->action != Action::kSkip) rebuilt_parent = by_name.at(p);
    }
    KILN_ASSIGN_OR_RETURN(auto have, s.Head(s.naming.Ref(n, e.version)));
    if (!have) {
      // A version the registry lacks is built as it is, whatever happens above it.
      e.action = Action::kBuild;
      e.reason = "version " + e.version + " is not in the registry";
    } else if (rebuilt_parent != nullptr) {
      e.action = Action::kRebuild;
      do {
        e.version = tree::BumpVersion(e.version);
        KILN_ASSIGN_OR_RETURN(have, s.Head(s.naming.Ref(n, e.version)));
      } while (have);
      e.reason = "Rebuild for " + rebuilt_parent->name + " " + rebuilt_parent->version;
    } else {
      e.reason = "exists (" + have->ToString().substr(0, 19) + ")";
    }
    plan.push_back(e);
    by_name[n] = &plan.back();
  }
  return plan;
}

void PrintPlan(const std::vector<PlanEntry>& plan, const tree::TreeNaming& naming, std::ostream& out) {
  out << "plan:\n";
  for (const PlanEntry& e : plan) {
    const char* what = e.action == Action::kSkip ? "skip   " : e.action == Action::kBuild ? "build  " : "rebuild";
    out << "  " << what << " " << naming.Ref(e.name, e.version);
    if (e.action == Action::kRebuild) out << " (was " << e.old_version << ")";
    out << ": " << e.reason << "\n";
  }
}

Result<std::map<std::string, std::string>> ParseSetVersions(const std::vector<std::string>& v,
                                                            const tree::ImageTree& t) {
  std::map<std::string, std::string> out;
  for (const std::string& s : v) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("--set-version must be NAME=VERSION, not \"" + s + "\"");
    std::string name = s.substr(0, eq);
    if (!t.images.count(name)) return InvalidArgument("--set-version: the tree has no image \"" + name + "\"");
    out[name] = s.substr(eq + 1);
  }
  return out;
}

// The child build of one image, with its base recorded as labels just before it starts.
TreeBuild MakeBuild(const tree::ImageTree& t, const std::string& name, const std::string& destination,
                    const std::map<std::string, std::string>& versions, const std::vector<std::string>& after,
                    const TreeFlags& f, Session& s, const std::string& work) {
  const tree::TreeImage& img = t.images.at(name);
  TreeBuild b;
  b.name = name;
  b.after = after;
  std::string dockerfile = work + "/" + name + ".Dockerfile";
  b.args = {"build", "--context=" + img.dir, "--dockerfile=" + dockerfile, "--destination=" + destination};
  for (const auto& [k, v] : img.build_args) b.args.push_back("--build-arg=" + k + "=" + v);
  if (!f.state_dir.empty()) b.args.push_back("--state-dir=" + f.state_dir);
  for (const std::string& a : RegistryArgs(f.registries)) b.args.push_back(a);
  for (const std::string& a : f.kiln_args) b.args.push_back(a);
  b.prepare = [&t, &img, &s, versions, dockerfile](std::vector<std::string>& args) -> Status {
    KILN_ASSIGN_OR_RETURN(std::string text, tree::RenderDockerfile(t, img, s.naming, versions));
    std::optional<std::string> base = tree::FinalBase(text);
    if (base && base->find('@') == std::string::npos) {
      // The base is pinned to the digest its tag has now, so the recorded digest is the one built on.
      KILN_ASSIGN_OR_RETURN(auto digest, s.Head(*base));
      if (!digest) return NotFound("base image " + *base + " is not in its registry");
      text = tree::PinBase(text, *base, digest->ToString());
      args.push_back(std::string("--label=") + kBaseNameLabel + "=" + *base);
      args.push_back(std::string("--label=") + kBaseDigestLabel + "=" + digest->ToString());
    }
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(dockerfile));
    KILN_RETURN_IF_ERROR(out->Write(text));
    return out->Close();
  };
  return b;
}

// The run's scratch directory (rendered Dockerfiles, build logs): removed when every build
// succeeded, kept (and named in the failure) otherwise.
struct ScratchDir {
  std::string path;
  bool keep = false;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty() && !keep) std::filesystem::remove_all(path, ec);
  }
};

Status MakeScratch(ScratchDir& d) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != 0 ? tmp : "/tmp") + "/kiln-tree-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return IoError("cannot create a directory like " + tmpl);
  d.path = tmpl;
  return OkStatus();
}

int Fail(const std::string& cmd, const Status& s, int code) {
  std::cerr << "kiln tree " << cmd << ": " << s.message() << "\n";
  return code;
}

int RunBuild(const TreeFlags& f) {
  auto tree_or = tree::LoadTree(f.dir);
  if (!tree_or.ok()) return Fail("build", tree_or.status(), kExitUsage);
  const tree::ImageTree& t = *tree_or;
  auto set = ParseSetVersions(f.set_versions, t);
  if (!set.ok()) return Fail("build", set.status(), kExitUsage);
  if (!f.only.empty() && !t.images.count(f.only)) return Fail("build", InvalidArgument("--only: the tree has no image \"" + f.only + "\""), kExitUsage);
  if (f.only.empty() && (!f.destination.empty() || !set->empty())) {
    return Fail("build", InvalidArgument("--destination and --set-version go with --only"), kExitUsage);
  }
  if (!f.emit.empty() && f.emit != "gitlab-ci" && f.emit != "k8s") {
    return Fail("build", InvalidArgument("--emit must be gitlab-ci or k8s, not \"" + f.emit + "\""), kExitUsage);
  }
  auto session = OpenSession(f);
  if (!session.ok()) return Fail("build", session.status(), kExitUsage);
  Session& s = *session;
  ScratchDir scratch;
  if (Status st = MakeScratch(scratch); !st.ok()) return Fail("build", st, kExitFailure);
  const std::string& work = scratch.path;

  if (!f.only.empty()) {
    // One image, exactly as told (a CI job of an emitted pipeline): no registry check, no files written.
    std::map<std::string, std::string> versions = *set;
    std::string version = versions.count(f.only) ? versions[f.only] : t.images.at(f.only).version;
    std::string dest = f.destination.empty() ? s.naming.Ref(f.only, version) : f.destination;
    std::cout << "building " << f.only << " as " << dest << "\n";
    if (f.dry_run) return kExitOk;
    TreeBuild b = MakeBuild(t, f.only, dest, versions, {}, f, s, work);
    TreeBuildResult r = RunTreeBuilds({b}, 1, work);
    scratch.keep = !r.status[f.only].ok();
    return scratch.keep ? kExitFailure : kExitOk;
  }

  auto plan_or = MakePlan(t, s);
  if (!plan_or.ok()) return Fail("build", plan_or.status(), kExitFailure);
  const std::vector<PlanEntry>& plan = *plan_or;
  PrintPlan(plan, s.naming, f.emit.empty() ? std::cout : std::cerr);
  std::map<std::string, std::string> versions;
  for (const PlanEntry& e : plan) versions[e.name] = e.version;
  std::set<std::string> building;
  for (const PlanEntry& e : plan) if (e.action != Action::kSkip) building.insert(e.name);
  auto after_of = [&](const std::string& n) {
    std::vector<std::string> a;
    for (const std::string& p : t.images.at(n).parents) if (building.count(p)) a.push_back(p);
    return a;
  };

  if (!f.emit.empty()) {
    std::vector<tree::EmitJob> jobs;
    for (const PlanEntry& e : plan) {
      if (e.action == Action::kSkip) continue;
      tree::EmitJob j{e.name, e.version, after_of(e.name), {}};
      // The versions this image is rendered with: its own and every tree image it uses.
      j.set_versions[e.name] = e.version;
      for (const std::string& n : t.order) {
        auto d = t.Descendants(n);
        if (n != e.name && std::find(d.begin(), d.end(), e.name) != d.end()) j.set_versions[n] = versions[n];
      }
      jobs.push_back(std::move(j));
    }
    tree::EmitOptions o;
    o.naming = s.naming;
    o.tree_dir = f.emit_dir.empty() ? f.dir : f.emit_dir;
    o.kiln_image = !f.kiln_image.empty() ? f.kiln_image
                   : f.emit == "k8s"     ? "registry.example.com/kiln/kiln:latest"
                                         : "registry.example.com/kiln/kiln:debug";
    if (!f.git_url.empty()) o.git_url = f.git_url;
    if (!f.git_ref.empty()) o.git_ref = f.git_ref;
    o.extra_args = RegistryArgs(f.registries);
    for (const std::string& a : f.kiln_args) o.extra_args.push_back("--kiln-arg=" + a);
    std::string text = f.emit == "k8s" ? tree::EmitKubernetes(jobs, o) : tree::EmitGitlabCi(jobs, o);
    if (f.output.empty()) {
      std::cout << text;
    } else {
      auto out = AtomicFileWriter::Create(f.output);
      Status w = out.ok() ? (*out)->Write(text) : out.status();
      if (w.ok()) w = (*out)->Close();
      if (!w.ok()) return Fail("build", w, kExitFailure);
      std::cerr << "wrote " << f.output << " (" << jobs.size() << " jobs)\n";
    }
    return kExitOk;
  }
  if (f.dry_run) {
    std::cout << "dry run: nothing built, no file written\n";
    return kExitOk;
  }
  // Bumps are written before building: if a build then fails, the next run still sees the bumped
  // versions missing from the registry and rebuilds them (written after, a half-finished run would
  // leave descendants on their old, existing tags and skip them).
  std::string date = Rfc2822Now();
  for (const PlanEntry& e : plan) {
    if (e.action != Action::kRebuild) continue;
    Status w = tree::WriteBump(t.images.at(e.name), e.version, e.reason, date);
    if (!w.ok()) return Fail("build", w, kExitFailure);
    std::cout << "bumped " << e.name << " " << e.old_version << " -> " << e.version << " in "
              << t.images.at(e.name).dir << " (" << e.reason << ")\n";
  }
  std::vector<TreeBuild> builds;
  for (const PlanEntry& e : plan) {
    if (e.action == Action::kSkip) continue;
    builds.push_back(MakeBuild(t, e.name, s.naming.Ref(e.name, e.version), versions, after_of(e.name), f, s, work));
  }
  if (builds.empty()) {
    std::cout << "nothing to build\n";
    return kExitOk;
  }
  TreeBuildResult r = RunTreeBuilds(builds, f.jobs, work);
  size_t failed = 0, abandoned = 0;
  for (const auto& [n, st] : r.status) {
    if (!st.ok()) (st.message().rfind("not built:", 0) == 0 ? abandoned : failed) += 1;
  }
  std::cout << builds.size() - failed - abandoned << " built, " << failed << " failed, ";
  if (abandoned > 0) std::cout << abandoned << " not built (a parent failed), ";
  std::cout << plan.size() - builds.size() << " skipped\n";
  failed += abandoned;
  scratch.keep = failed > 0;
  return failed == 0 ? kExitOk : kExitFailure;
}

// The base recorded in `ref`'s config labels: name and digest, or empty strings.
Result<std::pair<std::string, std::string>> RecordedBase(Session& s, const std::string& ref_text) {
  KILN_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(ref_text));
  KILN_ASSIGN_OR_RETURN(auto repo, s.Open(ref));
  KILN_ASSIGN_OR_RETURN(RawManifest raw, repo->GetManifest(ref.Identifier()));
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(raw.bytes, raw.media_type));
  if (kind == ManifestKind::kIndex) {
    KILN_ASSIGN_OR_RETURN(Index idx, ParseIndex(raw.bytes));
    if (idx.manifests.empty()) return InvalidArgument(ref_text + ": an empty index");
    KILN_ASSIGN_OR_RETURN(raw, repo->GetManifest(idx.manifests[0].digest.ToString()));
  }
  KILN_ASSIGN_OR_RETURN(Manifest m, ParseManifest(raw.bytes));
  KILN_ASSIGN_OR_RETURN(auto blob, repo->GetBlob(m.config.digest, m.config.size));
  KILN_ASSIGN_OR_RETURN(std::string json, ReadAll(*blob, 16 << 20));
  KILN_ASSIGN_OR_RETURN(ImageConfig c, ParseImageConfig(json));
  auto get = [&](const char* k) {
    auto it = c.config.labels.find(k);
    return it == c.config.labels.end() ? std::string() : it->second;
  };
  return std::make_pair(get(kBaseNameLabel), get(kBaseDigestLabel));
}

int RunOutdated(const TreeFlags& f) {
  auto tree_or = tree::LoadTree(f.dir);
  if (!tree_or.ok()) return Fail("outdated", tree_or.status(), kExitUsage);
  auto session = OpenSession(f);
  if (!session.ok()) return Fail("outdated", session.status(), kExitUsage);
  Session& s = *session;
  int outdated = 0;
  for (const std::string& n : tree_or->order) {
    std::string ref = s.naming.Ref(n, tree_or->images.at(n).version);
    auto have = s.Head(ref);
    if (!have.ok()) return Fail("outdated", have.status(), kExitFailure);
    if (!*have) {
      std::cout << "missing  " << ref << ": not in the registry (kiln tree build builds it)\n";
      continue;
    }
    auto base = RecordedBase(s, ref);
    if (!base.ok()) return Fail("outdated", base.status().WithContext("reading " + ref), kExitFailure);
    const auto& [name, digest] = *base;
    if (name.empty() || digest.empty()) {
      std::cout << "unknown  " << ref << ": no base recorded (not built by kiln tree, or FROM scratch)\n";
      continue;
    }
    auto now = s.Head(name);
    if (!now.ok()) return Fail("outdated", now.status().WithContext("base of " + ref), kExitFailure);
    if (!*now) {
      std::cout << "unknown  " << ref << ": its base " << name << " is gone from the registry\n";
    } else if ((*now)->ToString() != digest) {
      ++outdated;
      std::cout << "outdated " << ref << ": base " << name << " was " << digest << ", is now " << (*now)->ToString()
                << "\n";
    } else {
      std::cout << "current  " << ref << ": base " << name << " " << digest << "\n";
    }
  }
  std::cout << outdated << " outdated\n";
  return kExitOk;
}

int RunWait(const TreeFlags& f, const std::string& ref, int timeout_s) {
  auto session = OpenSession(f);
  if (!session.ok()) return Fail("wait", session.status(), kExitUsage);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    auto have = session->Head(ref);
    if (have.ok() && *have) {
      std::cout << ref << " is " << (*have)->ToString() << "\n";
      return kExitOk;
    }
    if (!have.ok()) std::cerr << "kiln tree wait: " << have.status().message() << " (retrying)\n";
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail("wait", Unavailable(ref + " did not appear within " + std::to_string(timeout_s) + "s"), kExitFailure);
    }
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
}

void DeclareCommon(CLI::App* sub, TreeFlags& f) {
  sub->add_option("--registry", f.registry, "Registry of the tree's images (docker-pkg's {{ registry }})");
  sub->add_option("--namespace", f.name_space, "Path under the registry: REGISTRY/NAMESPACE/NAME:VERSION");
  f.registries.Declare(sub);
}

void RegisterTree(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<TreeFlags>();
  CLI::App* tree_cmd = app.add_subcommand("tree", "Build a directory of images in dependency order (docs/trees.md)");
  tree_cmd->require_subcommand(1);

  CLI::App* build = tree_cmd->add_subcommand(
      "build", "Build every image of DIR whose version is not in the registry, and rebuild the descendants of each");
  build->add_option("dir", f->dir, "The tree: NAME/Dockerfile + NAME/image.yaml, or images/NAME/Dockerfile.template + changelog");
  build->add_option("--context", f->dir, "Same as DIR");
  DeclareCommon(build, *f);
  build->add_flag("--dry-run", f->dry_run, "Print the plan; build nothing, write nothing");
  build->add_option("--jobs", f->jobs, "Images built at once (default 2)");
  build->add_option("--only", f->only, "Build this image alone, unconditionally, at its version (CI jobs)");
  build->add_option("--destination", f->destination, "With --only: push here instead of the tree's name");
  build->add_option("--set-version", f->set_versions, "With --only: NAME=VERSION of an image (repeatable)")
      ->allow_extra_args(false)->expected(1)->take_all();
  build->add_option("--emit", f->emit, "Write a pipeline instead of building: gitlab-ci or k8s");
  build->add_option("-o,--output", f->output, "With --emit: the file to write (default stdout)");
  build->add_option("--emit-dir", f->emit_dir, "With --emit: the tree's path in the pipeline's checkout (default DIR)");
  build->add_option("--kiln-image", f->kiln_image, "With --emit: kiln's image for the jobs (GitLab needs its :debug image, for the shell)");
  build->add_option("--git-url", f->git_url, "With --emit k8s: the repository the Jobs clone");
  build->add_option("--git-ref", f->git_ref, "With --emit k8s: the branch the Jobs clone");
  build->add_option("--kiln-arg", f->kiln_args, "An argument for every kiln build, e.g. --kiln-arg=--cache (repeatable)")
      ->allow_extra_args(false)->expected(1)->take_all();
  build->add_option("--state-dir", f->state_dir, "kiln build's --state-dir");
  build->callback([f, exit_code] {
    if (f->dir.empty()) {
      std::cerr << "kiln tree build: give the tree's directory (DIR or --context)\n";
      *exit_code = kExitUsage;
      return;
    }
    *exit_code = RunBuild(*f);
  });

  CLI::App* outdated = tree_cmd->add_subcommand(
      "outdated", "List the images of DIR whose base tag now points at another digest than the one they were built on");
  outdated->add_option("dir", f->dir, "The tree")->required();
  DeclareCommon(outdated, *f);
  outdated->callback([f, exit_code] { *exit_code = RunOutdated(*f); });

  auto ref = std::make_shared<std::string>();
  auto timeout = std::make_shared<int>(3600);
  CLI::App* wait = tree_cmd->add_subcommand("wait", "Wait until REF is in its registry (orders emitted Kubernetes Jobs)");
  wait->add_option("ref", *ref, "The image reference")->required();
  wait->add_option("--timeout", *timeout, "Seconds to wait (default 3600)");
  f->registries.Declare(wait);
  wait->callback([f, ref, timeout, exit_code] { *exit_code = RunWait(*f, *ref, *timeout); });
}

}  // namespace

KILN_REGISTER_COMMAND("tree", RegisterTree);

}  // namespace kiln::cmd
