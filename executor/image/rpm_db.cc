#include "executor/image/rpm_db.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <memory>

namespace kiln::executor {
namespace {

// Header tags and types (rpm's rpmtag.h).
constexpr uint32_t kTagName = 1000, kTagVersion = 1001, kTagRelease = 1002, kTagEpoch = 1003, kTagLicense = 1014,
                   kTagArch = 1022;
constexpr uint32_t kTypeInt32 = 4, kTypeString = 6;
// A header larger than this is not a package header (rpm itself caps headers at 256 MiB; real ones
// are kilobytes to a few megabytes).
constexpr uint32_t kMaxIndexEntries = 1 << 16;

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::optional<Package> ParseRpmHeader(std::string_view blob, const std::string& source, const std::string& distro) {
  const auto* b = reinterpret_cast<const unsigned char*>(blob.data());
  if (blob.size() < 8) return std::nullopt;
  uint32_t il = Be32(b), dl = Be32(b + 4);
  if (il == 0 || il > kMaxIndexEntries) return std::nullopt;
  uint64_t data_start = 8 + uint64_t{il} * 16;
  if (data_start + dl > blob.size()) return std::nullopt;
  std::string_view data = blob.substr(data_start, dl);
  std::string name, version, release, arch, license;
  std::optional<uint32_t> epoch;
  for (uint32_t i = 0; i < il; ++i) {
    const unsigned char* e = b + 8 + uint64_t{i} * 16;
    uint32_t tag = Be32(e), type = Be32(e + 4), offset = Be32(e + 8), count = Be32(e + 12);
    if (offset >= data.size()) continue;
    if (type == kTypeString && count == 1) {
      size_t end = data.find('\0', offset);
      if (end == std::string_view::npos) return std::nullopt;
      std::string value(data.substr(offset, end - offset));
      if (tag == kTagName) name = value;
      if (tag == kTagVersion) version = value;
      if (tag == kTagRelease) release = value;
      if (tag == kTagArch) arch = value;
      if (tag == kTagLicense) license = value;
    } else if (type == kTypeInt32 && tag == kTagEpoch && count >= 1 && offset + 4 <= data.size()) {
      epoch = Be32(reinterpret_cast<const unsigned char*>(data.data()) + offset);
    }
  }
  // gpg-pubkey "packages" are the keys rpm trusts, not software in the image.
  if (name.empty() || version.empty() || name == "gpg-pubkey") return std::nullopt;
  Package p;
  p.type = "rpm";
  p.name = name;
  std::string evr = version + (release.empty() ? "" : "-" + release);
  p.version = (epoch ? std::to_string(*epoch) + ":" : "") + evr;
  p.arch = arch;
  p.license = license;
  p.source = source;
  p.purl = "pkg:rpm/" + PurlEncode(distro) + "/" + PurlEncode(name) + "@" + PurlEncode(evr);
  std::string q;
  if (!arch.empty()) q += "arch=" + PurlEncode(arch);
  if (epoch) q += (q.empty() ? "" : "&") + std::string("epoch=") + std::to_string(*epoch);
  if (!q.empty()) p.purl += "?" + q;
  return p;
}

Result<std::vector<Package>> ParseRpmSqlite(std::string db, const std::string& source, const std::string& distro) {
  // Bytes 18 and 19 of the header are the file format's write and read versions: 2 means WAL,
  // which an in-memory database cannot use (it would look for a -wal file). rpm checkpoints its WAL
  // on close, so the main file holds every committed package.
  static constexpr char kMagic[] = "SQLite format 3";
  if (db.size() < 100 || db.compare(0, sizeof kMagic, std::string_view(kMagic, sizeof kMagic)) != 0) {
    return InvalidArgument(source + ": not an SQLite database");
  }
  if (db[18] == 2) db[18] = 1;
  if (db[19] == 2) db[19] = 1;
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return InternalError("opening an in-memory SQLite database");
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> conn(raw, sqlite3_close);
  // The bytes are used in place, read-only: SQLite neither copies nor frees them.
  auto* bytes = reinterpret_cast<unsigned char*>(db.data());
  auto size = static_cast<sqlite3_int64>(db.size());
  if (sqlite3_deserialize(raw, "main", bytes, size, size, SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
    return InvalidArgument(source + ": not an SQLite database");
  }
  sqlite3_stmt* stmt_raw = nullptr;
  if (sqlite3_prepare_v2(raw, "SELECT blob FROM Packages ORDER BY hnum", -1, &stmt_raw, nullptr) != SQLITE_OK) {
    return InvalidArgument(source + ": not an RPM database (" + sqlite3_errmsg(raw) + ")");
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(stmt_raw, sqlite3_finalize);
  std::vector<Package> out;
  for (int rc; (rc = sqlite3_step(stmt_raw)) != SQLITE_DONE;) {
    if (rc != SQLITE_ROW) return InvalidArgument(source + ": reading the RPM database: " + sqlite3_errmsg(raw));
    const void* blob = sqlite3_column_blob(stmt_raw, 0);
    int n = sqlite3_column_bytes(stmt_raw, 0);
    if (blob == nullptr || n <= 0) continue;
    std::optional<Package> p = ParseRpmHeader(std::string_view(static_cast<const char*>(blob), static_cast<size_t>(n)),
                                              source, distro);
    if (p) out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace kiln::executor
