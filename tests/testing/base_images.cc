#include "tests/testing/base_images.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/digest.h"
#include "core/image_model.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "base images: %s\n", what.c_str());
  std::abort();
}

// Runs a shell command that must succeed; returns its output (stdout and stderr).
std::string Must(const std::string& command) {
  std::string out;
  int rc = RunShell(command, &out);
  if (rc != 0) Die("`" + command + "` exited " + std::to_string(rc) + ":\n" + out);
  return out;
}

// Runs a command and returns stdout alone (stderr to a file, shown when it fails).
std::string MustStdout(const std::string& command, const std::string& err_file) {
  std::string out;
  int rc = RunShell("(" + command + " 2>" + ShellQuote(err_file) + ")", &out);
  if (rc != 0) Die("`" + command + "` exited " + std::to_string(rc) + ":\n" + out + ReadFile(err_file));
  return out;
}

// The process-wide scratch directory (removed at exit) for layouts, trees and logs.
TempDir& Cache() {
  static TempDir dir;
  static bool opened = [] {
    // Rootless tests run kiln as nobody with HOME inside it.
    ::chmod(dir.path().c_str(), 0755);
    return true;
  }();
  (void)opened;
  return dir;
}

std::string Quote(const std::string& s) { return ShellQuote(s); }

void MkdirMode(const std::string& path, mode_t mode, int uid = 0, int gid = 0) {
  std::filesystem::create_directories(path);
  if (::chmod(path.c_str(), mode) != 0) Die("chmod " + path);
  if (::lchown(path.c_str(), uid, gid) != 0 && HaveRoot()) Die("chown " + path);
}

// The busybox tree described in the header.
// `busybox`: the binary put at /bin/busybox (the applet list is always the host's busybox's).
void MakeBusyboxTree(const std::string& root, const std::string& busybox = "/bin/busybox") {
  MkdirMode(root, 0755);
  MkdirMode(root + "/bin", 0755);
  WriteFile(root + "/bin/busybox", ReadFile(busybox), 0755);
  std::istringstream applets(Must("/bin/busybox --list-full"));
  for (std::string line; std::getline(applets, line);) {
    if (line.empty() || line == "bin/busybox") continue;
    std::string full = root + "/" + line;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    if (::symlink("/bin/busybox", full.c_str()) != 0 && errno != EEXIST) Die("symlink " + full);
  }
  WriteFile(root + "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "app:x:1000:1000:app user:/home/app:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  WriteFile(root + "/etc/group",
            "root:x:0:\n"
            "staff:x:50:app\n"
            "app:x:1000:\n"
            "devs:x:2000:app\n"
            "nogroup:x:65534:\n");
  MkdirMode(root + "/tmp", 01777);
  MkdirMode(root + "/root", 0700);
  MkdirMode(root + "/home", 0755);
  MkdirMode(root + "/home/app", 0755, kAppUid, kAppGid);
  MkdirMode(root + "/var", 0755);
}

void Pack(const std::string& kiln, const std::string& tree, const std::string& layout_tag,
          const std::string& platform = "") {
  Must(Quote(kiln) + " pack " + Quote(tree) + " --oci-layout-path " + Quote(layout_tag) +
       (platform.empty() ? "" : " --platform " + platform));
}

// The index.json entry tagged `tag` in an OCI layout.
nlohmann::json IndexEntry(const std::string& layout, const std::string& tag) {
  nlohmann::json index = nlohmann::json::parse(ReadFile(layout + "/index.json"));
  for (const auto& m : index["manifests"]) {
    if (m.value("annotations", nlohmann::json::object()).value("org.opencontainers.image.ref.name", "") == tag) {
      return m;
    }
  }
  Die("no tag " + tag + " in " + layout);
}

std::string BlobPath(const std::string& layout, const std::string& digest) {
  return layout + "/blobs/sha256/" + digest.substr(7);
}

}  // namespace

bool HaveRoot() { return ::geteuid() == 0; }
bool HaveBusyboxStatic() { return ::access("/bin/busybox", X_OK) == 0; }

const std::string& BusyboxLayout(const std::string& kiln) {
  static const std::string layout = [&] {
    std::string tree = Cache().Sub("busybox-tree");
    MakeBusyboxTree(tree);
    std::string dir = Cache().Sub("busybox.oci");
    Pack(kiln, tree, dir + ":latest");
    return dir;
  }();
  return layout;
}

namespace {

// scripts/foreign-debs.sh DIR arm64 PACKAGES, once per process; "" with `problem` when it fails.
std::string ForeignDebs(const std::string& name, const std::string& packages, std::string* problem) {
  std::string dir = Cache().Sub(name), log;
  int rc = RunShell(Quote(std::string(KILN_TESTING_DIR) + "/../../scripts/foreign-debs.sh") + " " + Quote(dir) +
                        " arm64 " + packages,
                    &log);
  if (rc == 0) return dir;
  *problem = "Debian's " + packages + " for arm64 could not be had (scripts/foreign-debs.sh exited " +
             std::to_string(rc) + "): " + log;
  return "";
}

}  // namespace

std::string Arm64Busybox(std::string* why) {
  static std::string problem;
  static const std::string path = [] {
    std::string dir = ForeignDebs("debs-busybox-arm64", "busybox-static", &problem);
    return dir.empty() ? dir : dir + "/bin/busybox";
  }();
  if (why != nullptr) *why = problem;
  return path;
}

std::string Arm64DebianUserland(std::string* why) {
  static std::string problem;
  static const std::string root = [] {
    std::string dir = ForeignDebs("debs-userland-arm64",
                                  "libc6 dash coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0 libcap2",
                                  &problem);
    if (!dir.empty()) {
      ::symlink("dash", (dir + "/bin/sh").c_str());
      std::filesystem::create_directories(dir + "/tmp");
    }
    return dir;
  }();
  if (why != nullptr) *why = problem;
  return root;
}

std::string QemuAarch64() {
  for (const char* p : {"/usr/bin/qemu-aarch64-static", "/usr/local/bin/qemu-aarch64-static"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

const std::string& Arm64BusyboxLayout(const std::string& kiln) {
  static const std::string layout = [&] {
    std::string why, busybox = Arm64Busybox(&why);
    if (busybox.empty()) Die(why);
    std::string tree = Cache().Sub("busybox-arm64-tree");
    MakeBusyboxTree(tree, busybox);
    std::string dir = Cache().Sub("busybox-arm64.oci");
    Pack(kiln, tree, dir + ":latest", "linux/arm64");
    return dir;
  }();
  return layout;
}

std::string NativePlatform() { return Platform::Host().ToString(); }
std::string ForeignPlatform() {
  return Platform::Host().architecture == "arm64" ? "linux/amd64" : "linux/arm64/v8";
}

const std::string& MultiPlatformLayout(const std::string& kiln) {
  static const std::string layout = [&] {
    std::string native = Cache().Sub("native-tree"), foreign = Cache().Sub("foreign-tree");
    MakeBusyboxTree(native);
    WriteFile(native + "/etc/platform", NativePlatform() + "\n");
    WriteFile(foreign + "/etc/platform", ForeignPlatform() + "\n");
    WriteFile(foreign + "/etc/foreign", "only in the foreign image\n");
    std::string dir = Cache().Sub("multi.oci");
    Pack(kiln, native, dir + ":native", NativePlatform());
    Pack(kiln, foreign, dir + ":foreign", ForeignPlatform());

    // The index, written by hand (skopeo cannot make one): each manifest with the platform its
    // config names, as `docker buildx` writes them.
    nlohmann::json manifests = nlohmann::json::array();
    for (const char* tag : {"native", "foreign"}) {
      nlohmann::json entry = IndexEntry(dir, tag);
      nlohmann::json manifest = nlohmann::json::parse(ReadFile(BlobPath(dir, entry["digest"])));
      nlohmann::json config = nlohmann::json::parse(ReadFile(BlobPath(dir, manifest["config"]["digest"])));
      nlohmann::json platform = {{"architecture", config["architecture"]}, {"os", config["os"]}};
      if (config.contains("variant")) platform["variant"] = config["variant"];
      manifests.push_back({{"mediaType", entry["mediaType"]},
                           {"digest", entry["digest"]},
                           {"size", entry["size"]},
                           {"platform", platform}});
    }
    // "multi" lists this machine's image first; "multi-reversed" the foreign one first (a client
    // must pick by platform, not by position).
    nlohmann::json reversed = nlohmann::json::array({manifests[1], manifests[0]});
    nlohmann::json top = nlohmann::json::parse(ReadFile(dir + "/index.json"));
    for (const auto& [tag, list] : {std::pair<const char*, nlohmann::json>{"multi", manifests},
                                    std::pair<const char*, nlohmann::json>{"multi-reversed", reversed}}) {
      nlohmann::json index = {{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.index.v1+json"},
                              {"manifests", list}};
      std::string bytes = index.dump();
      std::string digest = Sha256Of(bytes).ToString();
      WriteFile(BlobPath(dir, digest), bytes);
      top["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                  {"digest", digest},
                                  {"size", bytes.size()},
                                  {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
    }
    WriteFile(dir + "/index.json", top.dump());
    return dir;
  }();
  return layout;
}

const std::string& DebianLayout(const std::string& kiln) {
  static const std::string layout = [&] {
    std::string tar = Cache().Sub("debian.tar"), tree = Cache().Sub("debian-tree");
    Must(Quote(std::string(KILN_TESTING_DIR) + "/../../scripts/debian-rootfs.sh") + " " + Quote(tar));
    std::filesystem::create_directories(tree);
    Must("tar --numeric-owner -xpf " + Quote(tar) + " -C " + Quote(tree));
    std::string dir = Cache().Sub("debian.oci");
    Pack(kiln, tree, dir + ":latest");
    Must("rm -rf " + Quote(tree) + " " + Quote(tar));
    return dir;
  }();
  return layout;
}

std::string SkopeoSourceFlags(const RegistryServer& reg, const std::string& creds) {
  std::string f = reg.scheme() == "https" ? "--cert-dir " + Quote(reg.ca_cert_dir()) : "--tls-verify=false";
  if (!creds.empty()) f += " --creds " + Quote(creds);
  return f;
}

std::string PushToRegistry(const std::string& source, const RegistryServer& reg, const std::string& repo_tag,
                           MediaTypes types, const std::string& creds) {
  std::string dest = "docker://" + reg.host() + "/" + repo_tag;
  std::string flags = reg.scheme() == "https" ? "--dest-cert-dir " + Quote(reg.ca_cert_dir()) : "--dest-tls-verify=false";
  if (!creds.empty()) flags += " --dest-creds " + Quote(creds);
  if (types == MediaTypes::kDocker) flags += " --format v2s2";
  Must("skopeo --insecure-policy copy --all " + flags + " " + Quote(source) + " " + Quote(dest));
  std::string raw = MustStdout("skopeo inspect --raw " + SkopeoSourceFlags(reg, creds) + " " + Quote(dest),
                               Cache().Sub("skopeo.err"));
  return Sha256Of(raw).ToString();
}

KilnRun RunKiln(const std::string& kiln, const std::string& args, const std::string& env, const std::string& wrapper) {
  static int counter = 0;
  std::string home = Cache().Sub("home");
  std::filesystem::create_directories(home + "/.docker");
  ::chmod(home.c_str(), 0755);
  ::chmod((home + "/.docker").c_str(), 0755);
  std::string err_file = Cache().Sub("kiln-" + std::to_string(++counter) + ".err");
  KilnRun r;
  r.rc = RunShell("(" + wrapper + " env HOME=" + Quote(home) + " DOCKER_CONFIG=" + Quote(home + "/.docker") + " " +
                      env + " " + Quote(kiln) + " " + args + " 2>" + Quote(err_file) + ")",
                  &r.out);
  r.err = ReadFile(err_file);
  ::unlink(err_file.c_str());
  return r;
}

FileInfo Stat(const std::string& rootfs, const std::string& path) {
  FileInfo fi;
  std::string full = rootfs + "/" + path;
  struct stat st;
  if (::lstat(full.c_str(), &st) != 0) {
    fi.type = '-';
    return fi;
  }
  fi.mode = st.st_mode & 07777;
  fi.uid = st.st_uid;
  fi.gid = st.st_gid;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      fi.type = 'f';
      fi.content = ReadFile(full);
      break;
    case S_IFDIR: fi.type = 'd'; break;
    case S_IFLNK: {
      fi.type = 'l';
      char buf[4096];
      ssize_t n = ::readlink(full.c_str(), buf, sizeof buf);
      if (n > 0) fi.link.assign(buf, static_cast<size_t>(n));
      break;
    }
    case S_IFCHR: fi.type = 'c'; break;
    case S_IFBLK: fi.type = 'b'; break;
    case S_IFIFO: fi.type = 'p'; break;
    case S_IFSOCK: fi.type = 's'; break;
  }
  return fi;
}

std::vector<std::string> ListTree(const std::string& rootfs, const std::string& dir) {
  std::vector<std::string> out;
  std::vector<std::string> todo = {dir};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    DIR* d = ::opendir((rootfs + "/" + rel).c_str());
    if (d == nullptr) continue;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string child = rel.empty() || rel == "/" ? n : rel + "/" + n;
      if (!child.empty() && child[0] == '/') child = child.substr(1);
      struct stat st;
      if (::lstat((rootfs + "/" + child).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        out.push_back(child + "/");
        todo.push_back(child);
      } else {
        out.push_back(child);
      }
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ReadBack::LayerEntries(size_t i) const {
  std::string digest = manifest["layers"].at(i)["digest"];
  std::string listing = Must("tar -tf " + Quote(BlobPath(layout, digest)));
  std::vector<std::string> names;
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) names.push_back(line);
  return names;
}

size_t ReadBack::NonEmptyHistory() const {
  size_t n = 0;
  for (const auto& h : config.value("history", nlohmann::json::array())) n += !h.value("empty_layer", false);
  return n;
}

ReadBack ReadImage(const std::string& source, const std::string& dir, const std::string& flags, bool unpack) {
  ReadBack r;
  std::string err = dir + "/skopeo.err";
  std::filesystem::create_directories(dir);
  r.manifest_raw = MustStdout("skopeo inspect --raw " + flags + " " + Quote(source), err);
  r.manifest = nlohmann::json::parse(r.manifest_raw);
  r.digest = Sha256Of(r.manifest_raw).ToString();
  r.config = nlohmann::json::parse(MustStdout("skopeo inspect --raw --config " + flags + " " + Quote(source), err));
  // copy takes the same options with a --src- prefix.
  std::string copy_flags;
  std::istringstream words(flags);
  for (std::string w; words >> w;) copy_flags += " " + (w.rfind("--", 0) == 0 ? "--src-" + w.substr(2) : w);
  r.layout = dir + "/layout";
  Must("skopeo --insecure-policy copy" + copy_flags + " " + Quote(source) + " " + Quote("oci:" + r.layout + ":img"));
  if (unpack) {
    r.rootfs = dir + "/rootfs";
    Must("umoci raw unpack --image " + Quote(r.layout + ":img") + " " + Quote(r.rootfs));
  }
  return r;
}

BuildEnv::BuildEnv(std::string kiln, const RegistryOptions& options)
    : kiln_(std::move(kiln)), scratch_(std::make_unique<TempDir>()), reg_(RegistryServer::Start(options)) {
  ::chmod(scratch_->path().c_str(), 0755);
  state_ = NewDir("state");
  PushToRegistry("oci:" + BusyboxLayout(kiln_) + ":latest", *reg_, "busybox:latest");
  PushToRegistry("oci:" + BusyboxLayout(kiln_) + ":latest", *reg_, "busybox:docker", MediaTypes::kDocker);
}

std::string BuildEnv::NewDir(const std::string& name) {
  std::string dir = scratch_->Sub(name + "-" + std::to_string(++counter_));
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  return dir;
}

std::string BuildEnv::Context(const std::map<std::string, std::string>& files) {
  std::string dir = NewDir("context");
  for (auto [path, content] : files) {
    for (size_t at; (at = content.find("@REG@")) != std::string::npos;) content.replace(at, 5, reg_->host());
    WriteFile(dir + "/" + path, content);
  }
  return dir;
}

KilnRun BuildEnv::Build(const std::string& context, const std::string& args, const std::string& env,
                        const std::string& wrapper) {
  return RunKiln(kiln_, "build --context " + Quote(context) + " --state-dir " + Quote(state_) +
                            " --insecure --insecure-pull " + args,
                 env, wrapper);
}

ReadBack BuildEnv::Read(const std::string& repo_tag, bool unpack) {
  return ReadImage("docker://" + Ref(repo_tag), NewDir("read"), SkopeoSourceFlags(*reg_), unpack);
}

bool BuildEnv::TagExists(const std::string& repo_tag) {
  std::string out;
  if (RunShell("skopeo inspect --raw " + SkopeoSourceFlags(*reg_) + " " + Quote("docker://" + Ref(repo_tag)), &out) == 0) {
    return true;
  }
  // Only the registry's own "no such manifest" counts as absent; anything else is a broken fixture.
  if (out.find("manifest unknown") == std::string::npos && out.find("name unknown") == std::string::npos) {
    Die("cannot tell whether " + repo_tag + " exists:\n" + out);
  }
  return false;
}

}  // namespace kiln::testing
