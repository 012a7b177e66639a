#pragma once

// Building X.509 certificates for Ward's own TLS: a self-signed CA and server/client leaf
// certificates it signs (dev mode and bootstrap). Keys are EC P-256, signatures ECDSA with
// SHA-256, serial numbers 16 random bytes (positive), and notBefore is backdated one minute
// to tolerate clock skew between peers.
//
// All functions are thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

// A certificate and its private key, both PEM. `key_pem` is PKCS#8 ("BEGIN PRIVATE KEY"),
// unencrypted, and zeroes itself when destroyed.
struct PemKeyPair {
  std::string cert_pem;
  core::SecureBytes key_pem;
};

// Generates a self-signed CA: subject and issuer CN=`common_name`; basicConstraints critical
// CA:TRUE; keyUsage critical keyCertSign, cRLSign; subjectKeyIdentifier and
// authorityKeyIdentifier. Valid from not_before - 1 minute until not_before + validity.
// Errors: kInvalidArgument if `common_name` is empty or longer than 64 characters, or
// `validity` is not positive; kInternal if OpenSSL fails.
absl::StatusOr<PemKeyPair> GenerateSelfSignedCa(std::string_view common_name, absl::Time not_before,
                                                absl::Duration validity);

// Issues a leaf certificate signed by `ca`: subject CN=`common_name` (omitted if empty);
// subjectAltName with every entry of `dns_names` (DNS) and `ip_addresses` (IPv4 or IPv6
// text); extendedKeyUsage serverAuth, clientAuth; keyUsage critical digitalSignature;
// basicConstraints critical CA:FALSE; subjectKeyIdentifier and authorityKeyIdentifier (the
// CA's key id). Valid from not_before - 1 minute until not_before + validity (not clamped to
// the CA's validity: callers choose a validity inside it).
// Errors: kInvalidArgument if `ca` does not parse or its key does not match its certificate,
// the CA certificate is not a CA, `common_name` is longer than 64 characters, a DNS name is
// empty or holds characters other than letters, digits, '-', '.', '_' and '*', an IP address
// does not parse, there is neither a common name nor a SAN, or `validity` is not positive;
// kInternal if OpenSSL fails.
absl::StatusOr<PemKeyPair> IssueServerCertificate(const PemKeyPair& ca,
                                                  std::string_view common_name,
                                                  const std::vector<std::string>& dns_names,
                                                  const std::vector<std::string>& ip_addresses,
                                                  absl::Time not_before, absl::Duration validity);

}  // namespace ward::crypto
