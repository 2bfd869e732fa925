#include "tests/testing/rpm_fixture.h"

#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {

bool HaveRpm() { return RunShell("command -v rpm && command -v rpmbuild") == 0; }

std::string MakeRpmDatabase(const std::string& dir, std::string* error) {
  WriteFile(dir + "/hello.spec",
            "Name: kiln-hello\nVersion: 1.2.3\nRelease: 4\nEpoch: 2\nSummary: a test package\n"
            "License: MIT\nBuildArch: noarch\n%description\nA test package.\n%files\n");
  std::string root = ShellQuote(dir + "/root");
  int rc = RunShell("cd " + ShellQuote(dir) + " && rpmbuild --define " + ShellQuote("_topdir " + dir + "/top") +
                        " -bb hello.spec && rpm --root " + root + " --dbpath /var/lib/rpm --initdb && rpm --root " +
                        root + " --dbpath /var/lib/rpm -i --nodeps --justdb --ignorearch " +
                        ShellQuote(dir + "/top/RPMS/noarch/kiln-hello-1.2.3-4.noarch.rpm") + " 2>&1",
                    error);
  return rc == 0 ? dir + "/root/var/lib/rpm/rpmdb.sqlite" : "";
}

}  // namespace kiln::testing
