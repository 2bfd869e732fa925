// Helpers shared by the deploy tests: kiln's debug image built the way it is published and a
// registry to build against, running a program the way a pod would (podrun), and looking for
// credentials in everything a build left behind.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/testing/base_images.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::deploy_testing {

/// kiln's debug image (a superset of release), built by the test's kiln with deploy/build-image.sh,
/// pushed to `env`'s registry as kiln/kiln:debug and read back into `*image` when the build
/// succeeded. Returns the script's exit code; its output goes to `log`.
inline int BuildDebugImage(testing::BuildEnv& env, std::string* log, testing::ReadBack** image) {
  int rc = testing::RunShell(std::string(KILN_SOURCE_DIR) + "/deploy/build-image.sh --kiln " + KILN_BINARY +
                                 " --target debug --destination " + env.Ref("kiln/kiln:debug") +
                                 " --insecure --compression-level 1 --state-dir " + env.state_dir() + " 2>&1",
                             log);
  if (rc == 0) *image = new testing::ReadBack(env.Read("kiln/kiln:debug"));
  return rc;
}

/// A TLS registry with basic auth for `user`:`password` (its own CA), holding busybox as
/// base/busybox:latest: what builds run inside kiln's image pull from and push to.
inline testing::RegistryServer* StartAuthRegistryWithBusybox(const std::string& user, const std::string& password) {
  testing::RegistryOptions o;
  o.tls = true;
  o.user = user;
  o.password = password;
  testing::RegistryServer* reg = testing::RegistryServer::Start(o).release();
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *reg, "base/busybox:latest",
                          testing::MediaTypes::kOci, user + ":" + password);
  return reg;
}

/// base64 of `s` (standard alphabet, padded), as docker config.json's "auth" holds user:password.
inline std::string Base64(const std::string& s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == s.size()) {
    unsigned v = (unsigned char)s[i] << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == s.size()) {
    unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8;
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

/// A file's bytes, decompressed when it is gzip or zstd (layers are), so strings inside show.
inline std::string ReadDecompressed(const std::string& path) {
  std::string raw = testing::ReadFile(path);
  const char* tool = nullptr;
  if (raw.size() >= 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b) tool = "gzip -dc";
  if (raw.size() >= 4 && raw.compare(0, 4, "\x28\xb5\x2f\xfd") == 0) tool = "zstd -dcq";
  if (!tool) return raw;
  std::string out;
  testing::RunShell(std::string(tool) + " < " + testing::ShellQuote(path) + " 2>/dev/null", &out);
  return raw + out;
}

/// Every regular file under `roots` (files or directories; missing ones skipped) whose bytes, or
/// decompressed bytes, contain one of `needles`, as "PATH: NEEDLE-INDEX". Empty: nothing leaked.
/// `scanned` (optional) receives how many files were read, so a test can check it looked at all.
inline std::vector<std::string> FindSecrets(const std::vector<std::string>& roots, const std::vector<std::string>& needles,
                                            int* scanned = nullptr) {
  std::vector<std::string> hits;
  auto check = [&](const std::string& path) {
    if (scanned) ++*scanned;
    std::string data = ReadDecompressed(path);
    for (size_t i = 0; i < needles.size(); ++i) {
      if (data.find(needles[i]) != std::string::npos) hits.push_back(path + ": secret #" + std::to_string(i));
    }
  };
  namespace fs = std::filesystem;
  for (const std::string& root : roots) {
    std::error_code ec;
    if (fs::is_regular_file(fs::symlink_status(root, ec))) {
      check(root);
      continue;
    }
    if (!fs::is_directory(fs::symlink_status(root, ec))) continue;
    for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) check(it->path().string());
    }
  }
  return hits;
}

/// Whether `haystack` holds `needle` (tests print the result, never the secret).
inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace kiln::deploy_testing
