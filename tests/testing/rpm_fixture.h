// A real RPM database for SBOM tests: rpmbuild makes a package, rpm installs it (--justdb) into a
// fresh root with Debian's rpm 4.18 (SQLite backend).
#pragma once

#include <string>

namespace kiln::testing {

/// True when rpm and rpmbuild are installed (scripts/setup.sh installs Debian's rpm).
bool HaveRpm();

/// Builds the noarch package kiln-hello 2:1.2.3-4 (License MIT) in `dir` and installs it into
/// `dir`/root; returns the path of the rpmdb.sqlite written (root/var/lib/rpm/rpmdb.sqlite), or ""
/// with the commands' output in *error.
std::string MakeRpmDatabase(const std::string& dir, std::string* error);

}  // namespace kiln::testing
