// Base images for the end-to-end tests of `kiln build`, and the tools those tests use to run kiln and
// read back what it made.
//
// The bases are real root filesystems packed by `kiln pack` into OCI layouts (built once per test
// process, then cached) and pushed into a harness registry by skopeo:
//   busybox: Debian's static /bin/busybox with every applet as a symlink (busybox --list-full),
//            (arm64: the same tree around Debian's arm64 busybox-static, for RUN through qemu-user)
//            /etc/passwd and /etc/group (root, nobody, app 1000:1000 with supplementary group
//            staff 50 and devs 2000), /tmp 1777, /root 0700, /home/app owned by app.
//   multi:   an image index (written by hand) of two images: the host's platform (busybox plus
//            /etc/platform) and a foreign one (only /etc/platform and /etc/foreign).
//   debian:  Debian bookworm minbase from scripts/debian-rootfs.sh (minutes the first time on a machine).
// Reading back: skopeo inspect --raw / --config for the manifest and config, skopeo copy into an OCI
// layout and `umoci raw unpack` for the files, lstat for each path (never following symlinks).
//
// Every helper aborts the test binary (with the tool's output) when a tool fails: fixtures that do
// not work are not a test result. Not thread-safe; call from the test's main thread. The packing and
// the file ownership checks need root; HaveRoot() lets tests skip otherwise.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/testing/registry_server.h"

namespace kiln::testing {

/// Ids in the busybox base's /etc/passwd and /etc/group.
inline constexpr int kAppUid = 1000, kAppGid = 1000, kStaffGid = 50, kDevsGid = 2000, kNobodyUid = 65534;

bool HaveRoot();
/// Debian's busybox-static at /bin/busybox.
bool HaveBusyboxStatic();

/// OCI layout directory holding the busybox base as tag "latest". `kiln` is the kiln executable.
const std::string& BusyboxLayout(const std::string& kiln);
/// OCI layout directory holding the two-platform index as tag "multi" (and each image as "native"
/// and "foreign").
const std::string& MultiPlatformLayout(const std::string& kiln);
/// "os/arch[/variant]" of the index's two images; native is this machine's.
std::string NativePlatform();
std::string ForeignPlatform();
/// Debian's busybox-static built for arm64 (scripts/foreign-debs.sh: downloaded from Debian's
/// mirror once, cached in $KILN_CACHE_DIR), unpacked into this process's scratch area. "" when it
/// cannot be had, with the reason in `*why`.
std::string Arm64Busybox(std::string* why);
/// A directory holding Debian's arm64 dash (as /bin/sh), coreutils and the libraries they load
/// (libc6 and the rest), the dynamically linked programs of a real image; "" with `*why` otherwise.
std::string Arm64DebianUserland(std::string* why);
/// A static qemu-user for aarch64 on this machine (Debian's qemu-user-static), or "".
std::string QemuAarch64();
/// OCI layout directory holding the busybox base built from Arm64Busybox() (same tree as `busybox`),
/// platform linux/arm64, as tag "latest". REQUIRES: Arm64Busybox() found it.
const std::string& Arm64BusyboxLayout(const std::string& kiln);
/// OCI layout directory holding Debian bookworm minbase as tag "latest" (runs scripts/debian-rootfs.sh).
const std::string& DebianLayout(const std::string& kiln);

enum class MediaTypes { kOci, kDocker };

/// skopeo copy of `source` (a skopeo transport name such as "oci:DIR:TAG") to `repo_tag` in `reg`,
/// with every image of an index (--all). kDocker converts to Docker schema 2 media types. `creds`
/// "user:password" when the registry wants them. Returns the digest of the pushed manifest.
std::string PushToRegistry(const std::string& source, const RegistryServer& reg, const std::string& repo_tag,
                           MediaTypes types = MediaTypes::kOci, const std::string& creds = "");
/// Skopeo flags to read from `reg` (--tls-verify=false or --cert-dir, and --creds).
std::string SkopeoSourceFlags(const RegistryServer& reg, const std::string& creds = "");

/// What `kiln ...` did.
struct KilnRun {
  int rc = -1;
  std::string out, err;
};

/// Runs `[wrapper] env ENV... kiln ARGS` through /bin/sh with stdout and stderr captured apart.
/// `env` is a list of shell words (e.g. "DOCKER_CONFIG=/x"); HOME and DOCKER_CONFIG default to an
/// empty private directory so the machine's credentials never leak in.
KilnRun RunKiln(const std::string& kiln, const std::string& args, const std::string& env = "",
                const std::string& wrapper = "");

/// One path of an unpacked rootfs, from lstat.
struct FileInfo {
  char type = '?';  ///< 'f' file, 'd' directory, 'l' symlink, 'c', 'b', 'p', 's'; '-' when missing
  unsigned mode = 0;  ///< permission bits with setuid/setgid/sticky (07777)
  unsigned uid = 0, gid = 0;
  std::string content;  ///< regular files
  std::string link;     ///< symlinks: the target as stored
};
FileInfo Stat(const std::string& rootfs, const std::string& path);
/// Paths under `dir` of a rootfs (relative to the rootfs, sorted; directories end in '/').
std::vector<std::string> ListTree(const std::string& rootfs, const std::string& dir);

/// A built image read back with skopeo (and umoci unless it is zstd).
struct ReadBack {
  std::string manifest_raw;
  nlohmann::json manifest;
  nlohmann::json config;
  std::string digest;  ///< sha256 of manifest_raw
  std::string layout;  ///< OCI layout holding the image as tag "img"
  std::string rootfs;  ///< umoci raw unpack of it ("" when not unpacked)

  /// The tar entry names of layer `i` (tar -tf on the blob, any compression tar knows).
  std::vector<std::string> LayerEntries(size_t i) const;
  /// history entries that are not empty_layer.
  size_t NonEmptyHistory() const;
};

/// Reads `source` (any skopeo transport; `flags` such as SkopeoSourceFlags) into `dir` and unpacks it
/// when `unpack`.
ReadBack ReadImage(const std::string& source, const std::string& dir, const std::string& flags = "",
                   bool unpack = true);

/// One test suite's world: a plain-HTTP harness registry with the busybox base pushed as
/// busybox:latest (OCI media types) and busybox:docker (Docker's), kiln's state directory and a
/// scratch directory. Create it in SetUpTestSuite from the main thread (the registry's children die
/// with the thread that started them).
class BuildEnv {
 public:
  explicit BuildEnv(std::string kiln, const RegistryOptions& options = {});

  RegistryServer& reg() { return *reg_; }
  const std::string& kiln() const { return kiln_; }
  const std::string& state_dir() const { return state_; }
  /// host/repo_tag in the registry.
  std::string Ref(const std::string& repo_tag) const { return reg_->host() + "/" + repo_tag; }
  /// A fresh, empty directory in the scratch area, world-readable (for the rootless tests).
  std::string NewDir(const std::string& name);
  /// A fresh context directory with `files` (path → content, mode 0644). "@REG@" in any content is
  /// replaced by the registry's host:port.
  std::string Context(const std::map<std::string, std::string>& files);
  /// `kiln build --context CONTEXT --state-dir STATE --insecure --insecure-pull ARGS`.
  KilnRun Build(const std::string& context, const std::string& args, const std::string& env = "",
                const std::string& wrapper = "");
  /// ReadImage of docker://Ref(repo_tag) into a fresh directory.
  ReadBack Read(const std::string& repo_tag, bool unpack = true);
  /// Whether the tag exists in the registry (aborts unless the registry answers "manifest unknown").
  bool TagExists(const std::string& repo_tag);

 private:
  std::string kiln_;
  std::unique_ptr<TempDir> scratch_;
  std::unique_ptr<RegistryServer> reg_;
  std::string state_;
  int counter_ = 0;
};

}  // namespace kiln::testing
