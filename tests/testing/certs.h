// Test certificates made with the openssl command-line tool: a private CA, server certificates it
// signs for 127.0.0.1 / localhost, and self-signed RSA certificates for signing registry tokens.
#pragma once

#include <string>

namespace kiln::testing {

/// PEM file paths of a certificate and its unencrypted private key.
struct CertFiles {
  std::string cert;
  std::string key;
};

/// Creates an EC P-256 CA (basicConstraints CA:TRUE, keyCertSign) valid for two days as
/// dir/ca.crt and dir/ca.key. Aborts the test binary, printing openssl's output, on failure.
CertFiles MakeTestCa(const std::string& dir);

/// Creates dir/server.crt and dir/server.key, signed by `ca`, with subjectAltName IP:127.0.0.1 and
/// DNS:localhost and extendedKeyUsage serverAuth (Go and OpenSSL both ignore the CN). Aborts on failure.
CertFiles MakeServerCert(const std::string& dir, const CertFiles& ca);

/// Creates a self-signed RSA-2048 certificate for signing RS256 JWTs as dir/NAME.crt and
/// dir/NAME.key. Aborts on failure.
CertFiles MakeSigningCert(const std::string& dir, const std::string& name);

/// Quotes `s` for /bin/sh (single quotes, embedded quotes escaped).
std::string ShellQuote(const std::string& s);

}  // namespace kiln::testing
