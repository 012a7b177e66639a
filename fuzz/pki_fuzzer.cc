// Fuzzes what the PKI engine parses from callers (pki/certs.h, pki/role.h): CSRs handed to
// pki/sign, certificate bundles handed to pki/config/ca (import) and intermediate/set-signed,
// DER certificates (client chains reach auth/cert as DER), SPIFFE IDs, and the role's name
// checks on whatever a CSR asks for.
//
// Input: the first byte picks the parser, the rest is its input (seeds: a real CSR, a CA bundle,
// a DER leaf, SPIFFE IDs). Invariants (abort on violation):
//   - every parse error is kInvalidArgument (the documented code) and nothing throws;
//   - a certificate that parses survives PEM -> DER -> PEM with the same serial and names;
//   - a CSR that parses and passes the role's checks yields exactly one SPIFFE ID, which
//     ValidateSpiffeId accepts and which belongs to the role's trust domain.

#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "pki/certs.h"
#include "pki/role.h"

namespace {

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "pki_fuzzer: invariant violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

void ExpectInvalidArgument(const absl::Status& status, std::string_view what) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) Fail(what);
}

const ward::pki::Role& FuzzRole() {
  static const ward::pki::Role* role = [] {
    auto r = ward::pki::ParseRole(
        "fuzz",
        std::map<std::string, std::string>{{"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*"},
                                           {"allowed_domains", "example.org"},
                                           {"allow_subdomains", "true"},
                                           {"allow_ip_sans", "true"},
                                           {"use_csr_sans", "true"},
                                           {"use_csr_common_name", "true"}},
        nullptr);
    if (!r.ok()) Fail("the fuzz role does not parse");
    return new ward::pki::Role(*std::move(r));
  }();
  return *role;
}

void CheckCertificate(X509* cert) {
  ward::pki::Names names = ward::pki::NamesOf(cert);
  std::string serial = ward::pki::SerialColonHex(cert);
  (void)ward::pki::NotBefore(cert);
  (void)ward::pki::NotAfter(cert);
  auto pem = ward::pki::CertificateToPem(cert);
  if (!pem.ok()) return;  // OpenSSL may refuse to re-encode what it decoded leniently
  auto again = ward::pki::ParseCertificatePem(*pem);
  if (!again.ok()) Fail("a certificate's own PEM does not parse");
  if (ward::pki::SerialColonHex(again->get()) != serial) Fail("serial changed in a round trip");
  ward::pki::Names names_again = ward::pki::NamesOf(again->get());
  if (names_again.uri_sans != names.uri_sans || names_again.dns_sans != names.dns_sans ||
      names_again.common_name != names.common_name) {
    Fail("names changed in a round trip");
  }
  (void)ward::pki::SpiffeJwk(cert);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {  // a CSR, as pki/sign receives it, then the role's checks
      auto csr = ward::pki::ParseCsr(input);
      ExpectInvalidArgument(csr.status(), "ParseCsr error is not kInvalidArgument");
      if (!csr.ok()) return 0;
      ward::pki::IssueRequest request;
      auto checked = ward::pki::CheckNames(FuzzRole(), request, &csr->names);
      ExpectInvalidArgument(checked.status(), "CheckNames error is not kInvalidArgument");
      if (!checked.ok()) return 0;
      if (!ward::pki::ValidateSpiffeId(checked->spiffe_id, /*leaf=*/true).ok()) {
        Fail("CheckNames accepted an invalid SPIFFE ID");
      }
      if (ward::pki::TrustDomainOf(checked->spiffe_id) != "example.org") {
        Fail("CheckNames accepted a SPIFFE ID outside the role's trust domain");
      }
      return 0;
    }
    case 1: {  // a PEM bundle, as pki/config/ca and intermediate/set-signed receive it
      auto certs = ward::pki::ParseCertificatesPem(input);
      ExpectInvalidArgument(certs.status(), "ParseCertificatesPem error is not kInvalidArgument");
      if (!certs.ok()) return 0;
      for (const auto& cert : *certs) CheckCertificate(cert.get());
      auto key = ward::pki::ParsePrivateKeyPem(input);
      ExpectInvalidArgument(key.status(), "ParsePrivateKeyPem error is not kInvalidArgument");
      if (key.ok() && !certs->empty()) {
        (void)ward::pki::KeyMatchesCertificate(certs->front().get(), key->get());
      }
      return 0;
    }
    case 2: {  // one DER certificate, as a client chain carries it
      const unsigned char* p = reinterpret_cast<const unsigned char*>(input.data());
      X509* cert = d2i_X509(nullptr, &p, static_cast<long>(input.size()));
      if (cert == nullptr) return 0;
      CheckCertificate(cert);
      X509_free(cert);
      return 0;
    }
    default: {  // a SPIFFE ID, as uri_sans and allowed_uri_sans carry them
      absl::Status leaf = ward::pki::ValidateSpiffeId(input, /*leaf=*/true);
      absl::Status any = ward::pki::ValidateSpiffeId(input, /*leaf=*/false);
      ExpectInvalidArgument(leaf, "ValidateSpiffeId error is not kInvalidArgument");
      ExpectInvalidArgument(any, "ValidateSpiffeId error is not kInvalidArgument");
      if (leaf.ok()) (void)ward::pki::TrustDomainOf(input);
      return 0;
    }
  }
}
