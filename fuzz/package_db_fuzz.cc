// Fuzz target: the package databases --sbom reads from an image's layers (executor/image/package_db.h,
// rpm_db.h) — untrusted bytes from any base image. The first byte picks the reader, the rest is the
// file: dpkg status, apk installed, an npm lockfile, a base image's SPDX SBOM, an RPM header blob, or
// an rpmdb.sqlite file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "executor/image/package_db.h"
#include "executor/image/rpm_db.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::executor;
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: (void)ParseDpkgStatus(text, "/var/lib/dpkg/status", "debian"); break;
    case 1: (void)ParseApkInstalled(text, "/lib/apk/db/installed", "alpine"); break;
    case 2: (void)ParseNpmLock(text, "/app/package-lock.json"); break;
    case 3: (void)ParseSpdxPackages(text, "base SBOM"); break;
    case 4: (void)ParseRpmHeader(text, "/var/lib/rpm/rpmdb.sqlite", "fedora"); break;
    default: (void)ParseRpmSqlite(std::string(text), "/var/lib/rpm/rpmdb.sqlite", "fedora"); break;
  }
  return 0;
}
