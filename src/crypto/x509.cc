#include "crypto/x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/status_macros.h"
#include "crypto/openssl_handles.h"
#include "crypto/random.h"

namespace ward::crypto {
namespace {

constexpr size_t kMaxCommonName = 64;  // ub-common-name, RFC 5280
constexpr absl::Duration kBackdate = absl::Minutes(1);

absl::Status OpenSslFailure(std::string_view what) {
  return absl::InternalError(std::string(what) + ": " + LastOpenSslError());
}

absl::StatusOr<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslFailure("generating EC P-256 key");
  return key;
}

absl::Status CheckCommonName(std::string_view common_name) {
  if (common_name.size() > kMaxCommonName) {
    return absl::InvalidArgumentError("common name is longer than 64 characters");
  }
  return absl::OkStatus();
}

absl::Status CheckDnsName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty DNS name");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '*';
    if (!ok) return absl::InvalidArgumentError("invalid character in DNS name");
  }
  return absl::OkStatus();
}

// Creates a v3 certificate for `subject_key` with a random serial, subject CN=`common_name`
// (none if empty) and validity [not_before - kBackdate, not_before + validity]. Issuer,
// extensions and signature are the caller's.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* subject_key, std::string_view common_name,
                                       absl::Time not_before, absl::Duration validity) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpenSslFailure("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslFailure("X509_set_version");

  // 16 random bytes; top bit cleared so the INTEGER is positive, next bit set so it always
  // encodes in exactly 16 bytes and is never zero.
  WARD_ASSIGN_OR_RETURN(core::SecureBytes serial_bytes, RandomBytes(16));
  serial_bytes.data()[0] = static_cast<uint8_t>((serial_bytes.data()[0] & 0x7f) | 0x40);
  BignumPtr serial(BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
  if (serial == nullptr ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslFailure("setting serial number");
  }

  const time_t start = absl::ToTimeT(not_before - kBackdate);
  const time_t end = absl::ToTimeT(not_before + validity);
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), start) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), end) == nullptr) {
    return OpenSslFailure("setting validity");
  }

  if (!common_name.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.data()),
                                   static_cast<int>(common_name.size()), -1, 0) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("common name is not valid UTF-8 text");
    }
  }
  if (X509_set_pubkey(cert.get(), subject_key) != 1) return OpenSslFailure("X509_set_pubkey");
  return cert;
}

// Adds an extension given in OpenSSL's config syntax (fixed strings only: never user input).
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslFailure(std::string("adding extension ") + OBJ_nid2sn(nid));
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses, bool critical) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslFailure("allocating SAN list");
  for (const std::string& dns : dns_names) {
    WARD_RETURN_IF_ERROR(CheckDnsName(dns));
    GeneralNamePtr name(GENERAL_NAME_new());
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (name == nullptr || text == nullptr ||
        ASN1_STRING_set(text, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_IA5STRING_free(text);
      return OpenSslFailure("building DNS SAN");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, text);
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return OpenSslFailure("adding SAN");
    name.release();  // owned by `names` now
  }
  for (const std::string& ip : ip_addresses) {
    Asn1OctetStringPtr address(a2i_IPADDRESS(ip.c_str()));
    if (address == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid IP address in SAN: " + ip);
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    if (name == nullptr) return OpenSslFailure("GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, address.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return OpenSslFailure("adding SAN");
    name.release();
  }
  if (sk_GENERAL_NAME_num(names.get()) == 0) return absl::OkStatus();
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return OpenSslFailure("adding subjectAltName");
  }
  return absl::OkStatus();
}

absl::StatusOr<PemKeyPair> ToPem(X509* cert, EVP_PKEY* key) {
  PemKeyPair out;
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  if (cert_bio == nullptr || PEM_write_bio_X509(cert_bio.get(), cert) != 1) {
    return OpenSslFailure("writing certificate PEM");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(cert_bio.get(), &data);
  out.cert_pem.assign(data, static_cast<size_t>(size));

  // A secure-memory BIO wipes its buffer when freed.
  BioPtr key_bio(BIO_new(BIO_s_secmem()));
  if (key_bio == nullptr ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslFailure("writing private key PEM");
  }
  size = BIO_get_mem_data(key_bio.get(), &data);
  out.key_pem =
      core::SecureBytes(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size));
  return out;
}

// Never prompts for a passphrase: Ward's keys are unencrypted PEM.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::Status CheckValidity(absl::Duration validity) {
  if (validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("certificate validity must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PemKeyPair> GenerateSelfSignedCa(std::string_view common_name, absl::Time not_before,
                                                absl::Duration validity) {
  if (common_name.empty()) return absl::InvalidArgumentError("CA common name is empty");
  WARD_RETURN_IF_ERROR(CheckCommonName(common_name));
  WARD_RETURN_IF_ERROR(CheckValidity(validity));
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), common_name, not_before, validity));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return OpenSslFailure("setting issuer");
  }
  X509* c = cert.get();
  WARD_RETURN_IF_ERROR(AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE"));
  WARD_RETURN_IF_ERROR(AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  WARD_RETURN_IF_ERROR(AddExtension(c, c, NID_subject_key_identifier, "hash"));
  WARD_RETURN_IF_ERROR(AddExtension(c, c, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(c, key.get(), EVP_sha256()) <= 0) return OpenSslFailure("signing CA certificate");
  return ToPem(c, key.get());
}

absl::StatusOr<PemKeyPair> IssueServerCertificate(const PemKeyPair& ca,
                                                  std::string_view common_name,
                                                  const std::vector<std::string>& dns_names,
                                                  const std::vector<std::string>& ip_addresses,
                                                  absl::Time not_before, absl::Duration validity) {
  WARD_RETURN_IF_ERROR(CheckCommonName(common_name));
  WARD_RETURN_IF_ERROR(CheckValidity(validity));
  if (common_name.empty() && dns_names.empty() && ip_addresses.empty()) {
    return absl::InvalidArgumentError("certificate needs a common name or a subject alt name");
  }

  BioPtr cert_bio(BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size())));
  X509Ptr ca_cert(cert_bio == nullptr
                      ? nullptr
                      : PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  if (ca_cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CA certificate is not valid PEM");
  }
  BioPtr key_bio(BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size())));
  EvpPkeyPtr ca_key(key_bio == nullptr
                        ? nullptr
                        : PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (ca_key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CA private key is not valid unencrypted PEM");
  }
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CA private key does not match the CA certificate");
  }
  if (X509_check_ca(ca_cert.get()) == 0) {
    return absl::InvalidArgumentError("issuer certificate is not a CA");
  }

  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), common_name, not_before, validity));
  X509* c = cert.get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca_cert.get())) != 1) {
    return OpenSslFailure("setting issuer");
  }
  WARD_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  WARD_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  WARD_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  WARD_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_subject_key_identifier, "hash"));
  WARD_RETURN_IF_ERROR(
      AddExtension(c, ca_cert.get(), NID_authority_key_identifier, "keyid:always"));
  // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
  WARD_RETURN_IF_ERROR(AddSubjectAltNames(c, dns_names, ip_addresses, common_name.empty()));
  if (X509_sign(c, ca_key.get(), EVP_sha256()) <= 0) {
    return OpenSslFailure("signing certificate");
  }
  return ToPem(c, key.get());
}

}  // namespace ward::crypto
