// RPM's package database in an image (Fedora ≥ 33, RHEL/UBI/Rocky/Alma 9, Amazon Linux 2023, …):
// the SQLite file rpmdb.sqlite, whose Packages table holds one RPM header blob per installed
// package. The older Berkeley DB (`Packages`, RHEL ≤ 8) and SUSE's ndb (`Packages.db`) formats are
// not read: the SBOM says so in a warning rather than listing nothing silently.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/image/package_db.h"

namespace kiln::executor {

/// One package's header (the blob rpm stores: big-endian index count, data length, 16-byte index
/// entries, data), read for NAME, EPOCH, VERSION, RELEASE, ARCH and LICENSE. nullopt for a header
/// that is malformed, has no name or version, or is a gpg-pubkey pseudo-package.
std::optional<Package> ParseRpmHeader(std::string_view blob, const std::string& source, const std::string& distro);

/// Every package of an rpmdb.sqlite file's bytes. `distro` ("fedora", "rhel", "rocky") is the purl
/// namespace: pkg:rpm/DISTRO/NAME@VERSION-RELEASE?arch=ARCH[&epoch=N]. kInvalidArgument when the
/// bytes are not an SQLite database with a Packages table. Takes the bytes to mark a database in WAL
/// mode (as rpm writes it) as a rollback-journal one in place, which SQLite needs to read it from memory.
Result<std::vector<Package>> ParseRpmSqlite(std::string db, const std::string& source, const std::string& distro);

}  // namespace kiln::executor
