#include "tests/testing/certs.h"

#include <cstdio>
#include <cstdlib>

#include "tests/testing/temp_dir.h"

namespace kiln::testing {
namespace {

void RunOrAbort(const std::string& what, const std::string& command) {
  std::string out;
  if (RunShell(command, &out) != 0) {
    std::fprintf(stderr, "certs: %s failed:\n$ %s\n%s\n", what.c_str(), command.c_str(), out.c_str());
    std::abort();
  }
}

}  // namespace

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

CertFiles MakeTestCa(const std::string& dir) {
  CertFiles ca{dir + "/ca.crt", dir + "/ca.key"};
  // EC keys: generating them is instant, where RSA-2048 takes a noticeable fraction of a second.
  RunOrAbort("creating the test CA",
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
             " -subj '/CN=kiln test CA' -addext basicConstraints=critical,CA:TRUE"
             " -addext keyUsage=critical,keyCertSign,cRLSign -keyout " +
                 ShellQuote(ca.key) + " -out " + ShellQuote(ca.cert));
  return ca;
}

CertFiles MakeServerCert(const std::string& dir, const CertFiles& ca) {
  CertFiles server{dir + "/server.crt", dir + "/server.key"};
  const std::string csr = dir + "/server.csr";
  const std::string ext = dir + "/server.ext";
  WriteFile(ext,
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  RunOrAbort("creating the server key",
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost"
             " -keyout " + ShellQuote(server.key) + " -out " + ShellQuote(csr));
  RunOrAbort("signing the server certificate",
             "openssl x509 -req -days 2 -set_serial 2 -in " + ShellQuote(csr) + " -CA " +
                 ShellQuote(ca.cert) + " -CAkey " + ShellQuote(ca.key) + " -extfile " +
                 ShellQuote(ext) + " -out " + ShellQuote(server.cert));
  return server;
}

CertFiles MakeSigningCert(const std::string& dir, const std::string& name) {
  CertFiles c{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  RunOrAbort("creating the token signing certificate",
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kiln-test-token-signer"
             " -addext keyUsage=critical,digitalSignature -keyout " +
                 ShellQuote(c.key) + " -out " + ShellQuote(c.cert));
  return c;
}

}  // namespace kiln::testing
