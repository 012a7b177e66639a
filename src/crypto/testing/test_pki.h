#pragma once

// Test support: the small PKI that TLS and certificate-auth tests build for themselves (a CA,
// server and client certificates it signs, a CRL revoking some of them) and the PEM files a
// listener or a client reads them from. Built on crypto/x509.h; never linked into the server.
//
// Files are written as `<dir>/<name>.pem` (certificate) and `<dir>/<name>.key` (PKCS#8 key).
// All functions are thread-safe (files aside: callers own their directories).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/openssl_handles.h"
#include "crypto/x509.h"

namespace ward::crypto::testing {

// Writes `data` to `path`, replacing any file there atomically (written to `path`.tmp, then
// renamed over it), as an operator replacing a watched certificate or CRL file should.
// Errors: kInternal if the file cannot be written or renamed.
absl::Status WriteFile(const std::string& path, std::string_view data);

// Writes `pair` as `<dir>/<name>.pem` and `<dir>/<name>.key`. Errors: as WriteFile.
absl::Status WritePemKeyPair(const PemKeyPair& pair, const std::string& dir, std::string_view name);

// Generates a self-signed CA with common name `name` (GenerateSelfSignedCa) and writes its
// certificate to `<dir>/<name>.pem`. Errors: those of GenerateSelfSignedCa and WriteFile.
absl::StatusOr<PemKeyPair> WriteCa(const std::string& dir, std::string_view name,
                                   absl::Time not_before, absl::Duration validity);

// Issues a client certificate signed by `ca`: CN=`name`, DNS SAN `<name>.client`; writes it
// with WritePemKeyPair(…, dir, name). Errors: those of IssueServerCertificate and WriteFile.
absl::StatusOr<PemKeyPair> WriteClientCertificate(const std::string& dir, const PemKeyPair& ca,
                                                  std::string_view name, absl::Time not_before,
                                                  absl::Duration validity);

// A listener's certificate and the CA that signed it.
struct LocalhostTls {
  PemKeyPair ca;
  PemKeyPair server;
};

// Generates a CA ("Server CA", valid 2 hours from `now`) and a server certificate it signs
// (CN and DNS SAN "localhost", IP SAN 127.0.0.1, valid 1 hour from `now`), and writes
// `<dir>/server-ca.pem`, `<dir>/server.pem` and `<dir>/server.key`.
// Errors: those of GenerateSelfSignedCa, IssueServerCertificate and WriteFile.
absl::StatusOr<LocalhostTls> WriteLocalhostTls(const std::string& dir, absl::Time now);

// Parses one certificate: PEM (the first of a bundle) or DER.
// Errors: kInvalidArgument if it does not parse.
absl::StatusOr<X509Ptr> ParseCertificate(std::string_view pem_or_der);

// The DER encoding of a certificate given as PEM (the first of a bundle) or DER.
// Errors: kInvalidArgument if it does not parse.
absl::StatusOr<std::string> CertificateDer(std::string_view pem_or_der);

// A PEM X.509 v2 CRL issued and signed (SHA-256) by `ca`, revoking every certificate of
// `revoked` (each PEM or DER) by serial number with revocation date `this_update`; nextUpdate
// is `next_update` if given, absent otherwise.
// Errors: kInvalidArgument if `ca` or a revoked certificate does not parse; kInternal if
// OpenSSL fails to build or sign the CRL.
absl::StatusOr<std::string> MakeCrlPem(const PemKeyPair& ca,
                                       const std::vector<std::string>& revoked,
                                       absl::Time this_update,
                                       std::optional<absl::Time> next_update = std::nullopt);

}  // namespace ward::crypto::testing
