#pragma once

// The pure OpenSSL side of Ward's CA: keys, certificates (CA and X509-SVID leaves), CSRs and
// CRLs, with no storage and no policy. The engine (pki/engine.h) decides what to build; these
// functions build it and parse what clients send.
//
// Signatures: ECDSA P-256 and RSA keys sign with SHA-256, Ed25519 keys with pure Ed25519.
// Serial numbers are 16 random bytes, positive, never zero. notBefore is backdated by
// kBackdate to tolerate clock skew between peers.
//
// All functions are thread-safe (a key may be used to sign from several threads at once).

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/secure_bytes.h"
#include "crypto/openssl_handles.h"

namespace ward::pki {

// RAII aliases for the OpenSSL types only this module uses (crypto/openssl_handles.h holds
// the shared ones).
using X509CrlPtr = std::unique_ptr<X509_CRL, crypto::Deleter<&X509_CRL_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, crypto::Deleter<&X509_REQ_free>>;

inline constexpr absl::Duration kBackdate = absl::Seconds(30);

// The algorithms Ward issues and accepts: key_type "ec" (P-256 only, key_bits 256), "ed25519"
// (key_bits 0) and "rsa" (key_bits 2048 or 3072; 4096 is accepted for imported/CSR keys).
enum class KeyType { kEc, kEd25519, kRsa };

struct KeySpec {
  KeyType type = KeyType::kEc;
  int bits = 256;  // 256 for ec, 0 for ed25519, the modulus size for rsa
};

// Vault's names: "ec", "ed25519", "rsa".
std::string_view KeyTypeName(KeyType type);

// Parses Vault's key_type / key_bits pair. key_bits 0 picks the default for the type (ec 256,
// rsa 2048). Errors: kInvalidArgument naming the value for an unknown type or a size Ward does
// not generate (ec other than 256, rsa other than 2048/3072, ed25519 other than 0).
absl::StatusOr<KeySpec> ParseKeySpec(std::string_view key_type, int key_bits);

// The spec of an existing key. Errors: kInvalidArgument for another algorithm or EC curve.
absl::StatusOr<KeySpec> KeySpecOf(EVP_PKEY* key);

// Generates a key. Blocking (RSA takes up to a second): call off event-loop threads and
// outside locks. Errors: kInternal if OpenSSL fails.
absl::StatusOr<crypto::EvpPkeyPtr> GenerateKey(const KeySpec& spec);

// PKCS#8 unencrypted PEM ("BEGIN PRIVATE KEY"). Errors: kInternal if OpenSSL fails.
absl::StatusOr<core::SecureBytes> PrivateKeyToPem(EVP_PKEY* key);

// Parses the first private key in `pem` (PKCS#8, or traditional "EC/RSA PRIVATE KEY"); never
// prompts for a passphrase. Errors: kInvalidArgument if there is none or it is encrypted.
absl::StatusOr<crypto::EvpPkeyPtr> ParsePrivateKeyPem(std::string_view pem);

// Every "CERTIFICATE" block in `pem`, in order (other blocks are skipped).
// Errors: kInvalidArgument if there is none or one does not parse.
absl::StatusOr<std::vector<crypto::X509Ptr>> ParseCertificatesPem(std::string_view pem);
// The first certificate in `pem`. Errors: kInvalidArgument if there is none.
absl::StatusOr<crypto::X509Ptr> ParseCertificatePem(std::string_view pem);

// Encodings of a certificate. Errors: kInternal if OpenSSL fails.
absl::StatusOr<std::string> CertificateToPem(X509* cert);
absl::StatusOr<std::string> CertificateToDer(X509* cert);
absl::StatusOr<std::string> PemToDer(std::string_view cert_pem);  // kInvalidArgument if bad
// The DER bytes of the first PEM block of any type in `pem` (a certificate, a CSR, a private
// key), zeroed on destruction since it may be a key. Errors: kInvalidArgument if none.
absl::StatusOr<core::SecureBytes> PemBlockToDer(std::string_view pem);

// A copy of the certificate (reference-counted).
crypto::X509Ptr CopyCertificate(X509* cert);

// The serial number as Vault prints it: lower-case hex bytes joined by ':' ("3a:0f:...").
std::string SerialColonHex(const X509* cert);
// Normalises a serial typed by a client: accepts ':' or '-' separators, any case.
// Errors: kInvalidArgument if it is not hex bytes.
absl::StatusOr<std::string> NormalizeSerial(std::string_view serial);

absl::Time NotBefore(const X509* cert);
absl::Time NotAfter(const X509* cert);

// Whether the private key belongs to the certificate's (or another key's) public key.
bool KeyMatchesCertificate(X509* cert, EVP_PKEY* key);
bool SamePublicKey(EVP_PKEY* a, EVP_PKEY* b);

// The names in a certificate's or CSR's subject and subjectAltName.
struct Names {
  std::string common_name;            // "" if the subject has no CN
  std::vector<std::string> dns_sans;  // in certificate order
  std::vector<std::string> ip_sans;   // text form ("10.0.0.1", "2001:db8::1")
  std::vector<std::string> uri_sans;
  std::vector<std::string> email_sans;
};
Names NamesOf(X509* cert);

// What a new certificate carries. Subject: CN=`common_name` if non-empty, else empty (the
// SAN extension is then critical, RFC 5280 4.1.2.6). Validity [not_before, not_after] exactly
// (callers apply kBackdate and clamping).
struct CertificateTemplate {
  std::string common_name;
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;
  std::vector<std::string> uri_sans;
  absl::Time not_before;
  absl::Time not_after;
  // CA: basicConstraints critical CA:TRUE (pathlen if path_len >= 0), keyUsage critical
  // keyCertSign+cRLSign. Leaf: basicConstraints critical CA:FALSE, keyUsage critical
  // digitalSignature (+keyEncipherment for RSA keys), extendedKeyUsage per the two flags.
  bool is_ca = false;
  int path_len = -1;
  bool server_auth = true;
  bool client_auth = true;
};

// Builds and signs a certificate for `subject_key` (a public key suffices). `issuer` null
// means self-signed (signed by `signing_key`, which must then be the subject key); otherwise
// the issuer name and authorityKeyIdentifier come from `issuer`. subjectKeyIdentifier is
// always set. The serial is random.
// Errors: kInvalidArgument for a common name over 64 characters, a malformed DNS name, IP
//         address or URI, or not_after <= not_before; kInternal if OpenSSL fails.
absl::StatusOr<crypto::X509Ptr> BuildCertificate(const CertificateTemplate& tmpl,
                                                 EVP_PKEY* subject_key, X509* issuer,
                                                 EVP_PKEY* signing_key);

// A parsed, signature-checked certificate signing request.
struct Csr {
  crypto::EvpPkeyPtr public_key;
  Names names;  // subject CN and the requested subjectAltName extension
};

// Parses a PEM CSR ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") and verifies its
// self-signature. Errors: kInvalidArgument "csr is not a valid PEM certificate request" or
// "csr signature does not verify".
absl::StatusOr<Csr> ParseCsr(std::string_view pem);

// A PEM CSR for `key` with subject CN=`common_name` (omitted if empty) and the given URI SANs.
// Errors: kInvalidArgument for bad names; kInternal if OpenSSL fails.
absl::StatusOr<std::string> BuildCsr(EVP_PKEY* key, std::string_view common_name,
                                     const std::vector<std::string>& uri_sans);

// One revoked certificate on a CRL.
struct RevokedSerial {
  std::string serial;  // colon hex, as SerialColonHex
  absl::Time revocation_time;
};

// Builds a v2 CRL signed by `issuer_key` with issuer name and authorityKeyIdentifier from
// `issuer`, thisUpdate `this_update`, nextUpdate `next_update`, cRLNumber `number`.
// Errors: kInvalidArgument for a malformed serial; kInternal if OpenSSL fails.
absl::StatusOr<X509CrlPtr> BuildCrl(X509* issuer, EVP_PKEY* issuer_key,
                                    const std::vector<RevokedSerial>& revoked,
                                    absl::Time this_update, absl::Time next_update,
                                    uint64_t number);
absl::StatusOr<std::string> CrlToDer(X509_CRL* crl);
absl::StatusOr<std::string> CrlToPem(X509_CRL* crl);

// SPIFFE ID syntax (SPIFFE-ID.md): scheme "spiffe", lower-case trust domain of [a-z0-9.-_]
// (at most 255 bytes), path segments of [a-zA-Z0-9.-_] that are neither empty, "." nor "..",
// no trailing '/', no query or fragment, at most 2048 bytes. `leaf`: the path must be
// non-empty (an SVID); otherwise it must be empty (a trust domain, as on a CA certificate).
// Errors: kInvalidArgument with the reason and the value.
absl::Status ValidateSpiffeId(std::string_view uri, bool leaf);

// The trust domain of a valid SPIFFE ID ("spiffe://example.org/ns/a" -> "example.org").
std::string TrustDomainOf(std::string_view spiffe_id);

// One JWK of a SPIFFE bundle for a CA certificate: {"use":"x509-svid","kty":..,(key
// params),"x5c":[base64 DER]} as compact JSON. Errors: kInvalidArgument for an unsupported
// key algorithm; kInternal if OpenSSL fails.
absl::StatusOr<std::string> SpiffeJwk(X509* ca_cert);

}  // namespace ward::pki
