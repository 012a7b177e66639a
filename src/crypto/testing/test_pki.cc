#include "crypto/testing/test_pki.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace ward::crypto::testing {
namespace {

using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<&X509_CRL_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<&ASN1_TIME_free>>;

std::string PathOf(const std::string& dir, std::string_view name, std::string_view extension) {
  return absl::StrCat(dir, "/", core::ToAbsl(name), core::ToAbsl(extension));
}

absl::StatusOr<EvpPkeyPtr> ParsePrivateKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("private key does not parse");
  return key;
}

}  // namespace

absl::Status WriteFile(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    out.flush();
    if (!out.good()) return absl::InternalError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError("cannot rename " + tmp + " to " + path);
  }
  return absl::OkStatus();
}

absl::Status WritePemKeyPair(const PemKeyPair& pair, const std::string& dir,
                             std::string_view name) {
  WARD_RETURN_IF_ERROR(WriteFile(PathOf(dir, name, ".pem"), pair.cert_pem));
  return WriteFile(PathOf(dir, name, ".key"), pair.key_pem.view());
}

absl::StatusOr<PemKeyPair> WriteCa(const std::string& dir, std::string_view name,
                                   absl::Time not_before, absl::Duration validity) {
  WARD_ASSIGN_OR_RETURN(PemKeyPair ca, GenerateSelfSignedCa(name, not_before, validity));
  WARD_RETURN_IF_ERROR(WriteFile(PathOf(dir, name, ".pem"), ca.cert_pem));
  return ca;
}

absl::StatusOr<PemKeyPair> WriteClientCertificate(const std::string& dir, const PemKeyPair& ca,
                                                  std::string_view name, absl::Time not_before,
                                                  absl::Duration validity) {
  WARD_ASSIGN_OR_RETURN(
      PemKeyPair cert,
      IssueServerCertificate(ca, name, {absl::StrCat(core::ToAbsl(name), ".client")}, {},
                             not_before, validity));
  WARD_RETURN_IF_ERROR(WritePemKeyPair(cert, dir, name));
  return cert;
}

absl::StatusOr<LocalhostTls> WriteLocalhostTls(const std::string& dir, absl::Time now) {
  LocalhostTls tls;
  WARD_ASSIGN_OR_RETURN(tls.ca, GenerateSelfSignedCa("Server CA", now, absl::Hours(2)));
  WARD_ASSIGN_OR_RETURN(tls.server, IssueServerCertificate(tls.ca, "localhost", {"localhost"},
                                                           {"127.0.0.1"}, now, absl::Hours(1)));
  WARD_RETURN_IF_ERROR(WriteFile(PathOf(dir, "server-ca", ".pem"), tls.ca.cert_pem));
  WARD_RETURN_IF_ERROR(WritePemKeyPair(tls.server, dir, "server"));
  return tls;
}

absl::StatusOr<X509Ptr> ParseCertificate(std::string_view pem_or_der) {
  X509Ptr cert;
  if (pem_or_der.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(pem_or_der.data(), static_cast<int>(pem_or_der.size())));
    cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(pem_or_der.data());
    cert.reset(d2i_X509(nullptr, &p, static_cast<long>(pem_or_der.size())));
  }
  if (cert == nullptr) return absl::InvalidArgumentError("certificate does not parse");
  return cert;
}

absl::StatusOr<std::string> CertificateDer(std::string_view pem_or_der) {
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(pem_or_der));
  unsigned char* buf = nullptr;
  const int len = i2d_X509(cert.get(), &buf);
  if (len <= 0) return absl::InternalError("i2d_X509: " + LastOpenSslError());
  std::string der(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
  OPENSSL_free(buf);
  return der;
}

absl::StatusOr<std::string> MakeCrlPem(const PemKeyPair& ca,
                                       const std::vector<std::string>& revoked,
                                       absl::Time this_update,
                                       std::optional<absl::Time> next_update) {
  WARD_ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseCertificate(ca.cert_pem));
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, ParsePrivateKey(ca.key_pem.view()));
  X509CrlPtr crl(X509_CRL_new());
  Asn1TimePtr last(ASN1_TIME_set(nullptr, absl::ToTimeT(this_update)));
  if (crl == nullptr || last == nullptr || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1) {
    return absl::InternalError("building the CRL: " + LastOpenSslError());
  }
  if (next_update.has_value()) {
    Asn1TimePtr next(ASN1_TIME_set(nullptr, absl::ToTimeT(*next_update)));
    if (next == nullptr || X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
      return absl::InternalError("setting nextUpdate: " + LastOpenSslError());
    }
  }
  for (const std::string& cert_text : revoked) {
    WARD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(cert_text));
    X509_REVOKED* entry = X509_REVOKED_new();
    if (entry == nullptr ||
        X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert.get())) != 1 ||
        X509_REVOKED_set_revocationDate(entry, last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry) != 1) {
      X509_REVOKED_free(entry);
      return absl::InternalError("adding a revoked entry: " + LastOpenSslError());
    }
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("signing the CRL: " + LastOpenSslError());
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) {
    return absl::InternalError("writing the CRL: " + LastOpenSslError());
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace ward::crypto::testing
