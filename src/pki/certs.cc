#include "pki/certs.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/random.h"

namespace ward::pki {
namespace {

namespace json = boost::json;
using crypto::BignumPtr;
using crypto::BioPtr;
using crypto::EvpPkeyCtxPtr;
using crypto::EvpPkeyPtr;
using crypto::GeneralNamePtr;
using crypto::GeneralNamesPtr;
using crypto::X509ExtensionPtr;
using crypto::X509Ptr;

constexpr size_t kMaxCommonName = 64;  // ub-common-name, RFC 5280
constexpr size_t kMaxSpiffeId = 2048;
constexpr size_t kMaxTrustDomain = 255;

using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, crypto::Deleter<&ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, crypto::Deleter<&ASN1_TIME_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, crypto::Deleter<&X509_REVOKED_free>>;
using ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION),
                    decltype([](auto* s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); })>;

absl::Status OpenSslFailure(std::string_view what) {
  return absl::InternalError(std::string(what) + ": " + crypto::LastOpenSslError());
}

// Never prompts for a passphrase: an encrypted key simply fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

BioPtr ReadBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

absl::Time FromAsn1Time(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromUnixSeconds(timegm(&tm));
}

absl::Status CheckDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return absl::InvalidArgumentError("invalid DNS name \"" + std::string(name) + "\"");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '*';
    if (!ok) return absl::InvalidArgumentError("invalid DNS name \"" + std::string(name) + "\"");
  }
  return absl::OkStatus();
}

absl::Status CheckUri(std::string_view uri) {
  if (uri.empty() || uri.size() > kMaxSpiffeId || uri.find("://") == std::string_view::npos) {
    return absl::InvalidArgumentError("invalid URI \"" + std::string(uri) + "\"");
  }
  for (char c : uri) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError("invalid URI \"" + std::string(uri) + "\"");
    }
  }
  return absl::OkStatus();
}

absl::Status PushIa5Name(GENERAL_NAMES* names, int type, std::string_view value) {
  GeneralNamePtr name(GENERAL_NAME_new());
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  if (name == nullptr || text == nullptr ||
      ASN1_STRING_set(text, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_IA5STRING_free(text);
    return OpenSslFailure("building subjectAltName entry");
  }
  GENERAL_NAME_set0_value(name.get(), type, text);
  if (sk_GENERAL_NAME_push(names, name.get()) == 0) return OpenSslFailure("adding SAN");
  name.release();  // owned by `names` now
  return absl::OkStatus();
}

// The subjectAltName value for the given names (null if there are none).
absl::StatusOr<GeneralNamesPtr> MakeSans(const std::vector<std::string>& dns,
                                         const std::vector<std::string>& ips,
                                         const std::vector<std::string>& uris) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslFailure("allocating SAN list");
  for (const std::string& d : dns) {
    WARD_RETURN_IF_ERROR(CheckDnsName(d));
    WARD_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_DNS, d));
  }
  for (const std::string& ip : ips) {
    crypto::Asn1OctetStringPtr address(a2i_IPADDRESS(ip.c_str()));
    if (address == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid IP address \"" + ip + "\"");
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    if (name == nullptr) return OpenSslFailure("GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, address.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return OpenSslFailure("adding SAN");
    name.release();
  }
  for (const std::string& u : uris) {
    WARD_RETURN_IF_ERROR(CheckUri(u));
    WARD_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_URI, u));
  }
  if (sk_GENERAL_NAME_num(names.get()) == 0) return GeneralNamesPtr();
  return names;
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

absl::Status SetCommonName(X509_NAME* subject, std::string_view common_name) {
  if (common_name.empty()) return absl::OkStatus();
  if (common_name.size() > kMaxCommonName) {
    return absl::InvalidArgumentError("common_name is longer than 64 characters");
  }
  if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("common_name is not valid UTF-8 text");
  }
  return absl::OkStatus();
}

std::string Asn1String(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string IpText(const ASN1_OCTET_STRING* ip) {
  const unsigned char* b = ASN1_STRING_get0_data(ip);
  const int len = ASN1_STRING_length(ip);
  char buf[64];
  if (len == 4) {
    std::snprintf(buf, sizeof(buf), "%d.%d.%d.%d", b[0], b[1], b[2], b[3]);
    return buf;
  }
  if (len == 16) {
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET6, b, text, sizeof(text)) == nullptr) return "";
    return text;
  }
  return "";
}

void CollectSans(const GENERAL_NAMES* sans, Names& out) {
  if (sans == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    switch (name->type) {
      case GEN_DNS:
        out.dns_sans.push_back(Asn1String(name->d.dNSName));
        break;
      case GEN_IPADD:
        out.ip_sans.push_back(IpText(name->d.iPAddress));
        break;
      case GEN_URI:
        out.uri_sans.push_back(Asn1String(name->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        out.email_sans.push_back(Asn1String(name->d.rfc822Name));
        break;
      default:
        break;
    }
  }
}

std::string CommonNameOf(const X509_NAME* subject) {
  if (subject == nullptr) return "";
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, index);
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

// DER prefixes of the fixed-size encodings written below (RFC 5480, RFC 5915, RFC 5208): the
// algorithm identifier of an EC P-256 key, and the PKCS#8 PrivateKeyInfo of one up to its
// 32-byte private scalar.
constexpr unsigned char kP256Pkcs8Prefix[] = {0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06,
                                              0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                                              0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                                              0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20};
// Between the private scalar and the 65-byte uncompressed public point: [1] BIT STRING.
constexpr unsigned char kP256Pkcs8PublicKeyTag[] = {0xa1, 0x44, 0x03, 0x42, 0x00};
constexpr size_t kP256PointSize = 65;
constexpr size_t kP256ScalarSize = 32;

bool IsP256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  bool p256 = EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1 &&
              std::string_view(group) == "prime256v1";
  ERR_clear_error();
  return p256;
}

// Sets the certificate's SubjectPublicKeyInfo. X509_set_pubkey hands an OpenSSL 3 key to the
// encoder framework and decodes the result again: about 2.5 million instructions a call
// (callgrind), more than key generation and signing together. For EC P-256 (uncompressed) and
// Ed25519 the encoding is fixed, so it is set directly from the raw public key; other keys go
// through X509_set_pubkey. The certificate then caches no EVP_PKEY: X509_get0_pubkey(cert)
// fails on it (until it is re-parsed), so only certificates that are just encoded use this.
// Returns false on an OpenSSL failure.
bool SetLeafPublicKey(X509* cert, EVP_PKEY* key) {
  unsigned char raw[kP256PointSize];
  size_t len = 0;
  int algorithm = NID_undef;
  int parameter_type = V_ASN1_UNDEF;
  void* parameter = nullptr;
  if (IsP256(key) &&
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, raw, sizeof(raw),
                                      &len) == 1 &&
      len == kP256PointSize && raw[0] == 0x04) {
    algorithm = NID_X9_62_id_ecPublicKey;
    parameter_type = V_ASN1_OBJECT;
    parameter = OBJ_nid2obj(NID_X9_62_prime256v1);
  } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 &&
             EVP_PKEY_get_raw_public_key(key, raw, &len) == 1 && len == 32) {
    algorithm = NID_ED25519;
  } else {
    ERR_clear_error();
    return X509_set_pubkey(cert, key) == 1;
  }
  auto* owned = static_cast<unsigned char*>(OPENSSL_memdup(raw, len));
  if (owned == nullptr) return false;
  if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(algorithm), parameter_type,
                             parameter, owned, static_cast<int>(len)) != 1) {
    OPENSSL_free(owned);
    return false;
  }
  return true;
}

// Writes an EC P-256 private key as the PKCS#8 "PRIVATE KEY" PEM block PEM_write_bio_PrivateKey
// writes (byte for byte, checked by a test), without the encoder framework, which costs about
// 0.8 million instructions a call (callgrind). Returns false, writing nothing, for other keys.
// Errors: kInternal on an OpenSSL failure.
absl::StatusOr<bool> WriteP256Pkcs8Pem(BIO* bio, EVP_PKEY* key) {
  if (!IsP256(key)) return false;
  unsigned char der[sizeof(kP256Pkcs8Prefix) + kP256ScalarSize + sizeof(kP256Pkcs8PublicKeyTag) +
                    kP256PointSize];
  unsigned char* p = der;
  std::memcpy(p, kP256Pkcs8Prefix, sizeof(kP256Pkcs8Prefix));
  p += sizeof(kP256Pkcs8Prefix);
  BIGNUM* scalar = nullptr;
  bool ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &scalar) == 1 &&
            BN_bn2binpad(scalar, p, kP256ScalarSize) == static_cast<int>(kP256ScalarSize);
  BN_clear_free(scalar);
  p += kP256ScalarSize;
  std::memcpy(p, kP256Pkcs8PublicKeyTag, sizeof(kP256Pkcs8PublicKeyTag));
  p += sizeof(kP256Pkcs8PublicKeyTag);
  size_t len = 0;
  ok = ok &&
       EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, p, kP256PointSize,
                                       &len) == 1 &&
       len == kP256PointSize && p[0] == 0x04;
  ok = ok && PEM_write_bio(bio, "PRIVATE KEY", "", der, sizeof(der)) > 0;
  OPENSSL_cleanse(der, sizeof(der));
  if (!ok) return OpenSslFailure("writing private key PEM");
  return true;
}

absl::StatusOr<Asn1IntegerPtr> RandomSerial() {
  // Top bit cleared so the INTEGER is positive, next bit set so it is never zero and always
  // encodes in exactly 16 bytes.
  WARD_ASSIGN_OR_RETURN(core::SecureBytes bytes, crypto::RandomBytes(16));
  bytes.data()[0] = static_cast<uint8_t>((bytes.data()[0] & 0x7f) | 0x40);
  BignumPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  Asn1IntegerPtr serial(bn == nullptr ? nullptr : BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr) return OpenSslFailure("making serial number");
  return serial;
}

std::string BnBase64Url(const BIGNUM* bn, int pad_to) {
  std::string bytes(static_cast<size_t>(std::max(pad_to, BN_num_bytes(bn))), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  std::string out;
  absl::WebSafeBase64Escape(core::ToAbsl(bytes), &out);
  return out;
}

absl::StatusOr<std::string> BnParamBase64Url(EVP_PKEY* key, const char* param, int pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) return OpenSslFailure("reading key");
  BignumPtr bn(raw);
  return BnBase64Url(bn.get(), pad_to);
}

}  // namespace

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEc:
      return "ec";
    case KeyType::kEd25519:
      return "ed25519";
    case KeyType::kRsa:
      return "rsa";
  }
  return "ec";
}

absl::StatusOr<KeySpec> ParseKeySpec(std::string_view key_type, int key_bits) {
  if (key_type == "ec") {
    if (key_bits != 0 && key_bits != 256) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported key_bits ", key_bits, " for key_type ec (only 256)"));
    }
    return KeySpec{KeyType::kEc, 256};
  }
  if (key_type == "ed25519") {
    if (key_bits != 0) {
      return absl::InvalidArgumentError("key_bits must be 0 for key_type ed25519");
    }
    return KeySpec{KeyType::kEd25519, 0};
  }
  if (key_type == "rsa") {
    if (key_bits == 0) key_bits = 2048;
    if (key_bits != 2048 && key_bits != 3072) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported key_bits ", key_bits, " for key_type rsa (2048 or 3072)"));
    }
    return KeySpec{KeyType::kRsa, key_bits};
  }
  return absl::InvalidArgumentError("unknown key_type \"" + std::string(key_type) +
                                    "\" (ec, ed25519 or rsa)");
}

absl::StatusOr<KeySpec> KeySpecOf(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
      return KeySpec{KeyType::kEd25519, 0};
    case EVP_PKEY_RSA:
      return KeySpec{KeyType::kRsa, EVP_PKEY_get_bits(key)};
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1 ||
          std::string_view(group) != "prime256v1") {
        ERR_clear_error();
        return absl::InvalidArgumentError("unsupported EC curve (only P-256)");
      }
      return KeySpec{KeyType::kEc, 256};
    }
    default:
      return absl::InvalidArgumentError("unsupported key algorithm (ec, ed25519 or rsa)");
  }
}

absl::StatusOr<EvpPkeyPtr> GenerateKey(const KeySpec& spec) {
  EvpPkeyPtr key;
  switch (spec.type) {
    case KeyType::kEc: {
      // EVP_PKEY_Q_keygen fetches the algorithm and builds a context on every call: 40% of a
      // P-256 key generation (callgrind). A context is not thread-safe, so each thread keeps
      // one, set up on first use and reused for every key (each generate call makes a new key).
      thread_local const EvpPkeyCtxPtr ctx = [] {
        EvpPkeyCtxPtr c(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
        char group[] = "P-256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
            OSSL_PARAM_construct_end()};
        if (c == nullptr || EVP_PKEY_keygen_init(c.get()) != 1 ||
            EVP_PKEY_CTX_set_params(c.get(), params) != 1) {
          c.reset();  // this thread falls back to EVP_PKEY_Q_keygen
        }
        return c;
      }();
      EVP_PKEY* generated = nullptr;
      if (ctx != nullptr && EVP_PKEY_generate(ctx.get(), &generated) == 1) key.reset(generated);
      if (ctx == nullptr) key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
      break;
    }
    case KeyType::kEd25519:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      break;
    case KeyType::kRsa:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(spec.bits)));
      break;
  }
  if (key == nullptr) return OpenSslFailure("generating key");
  return key;
}

absl::StatusOr<core::SecureBytes> PrivateKeyToPem(EVP_PKEY* key) {
  // A secure-memory BIO wipes its buffer when freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr) return OpenSslFailure("writing private key PEM");
  WARD_ASSIGN_OR_RETURN(bool written, WriteP256Pkcs8Pem(bio.get(), key));
  if (!written &&
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslFailure("writing private key PEM");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return core::SecureBytes(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size));
}

absl::StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  EvpPkeyPtr key(bio == nullptr
                     ? nullptr
                     : PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("no unencrypted PEM private key found");
  }
  return key;
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificatesPem(std::string_view pem) {
  std::vector<X509Ptr> out;
  BioPtr bio = ReadBio(pem);
  if (bio == nullptr) return OpenSslFailure("BIO_new_mem_buf");
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      ERR_clear_error();
      break;
    }
    std::string block_name(name);
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (block_name == "CERTIFICATE" || block_name == "X509 CERTIFICATE") {
      const unsigned char* p = data;
      X509Ptr cert(d2i_X509(nullptr, &p, len));
      OPENSSL_free(data);
      if (cert == nullptr) {
        ERR_clear_error();
        return absl::InvalidArgumentError("a PEM certificate does not parse");
      }
      out.push_back(std::move(cert));
    } else {
      OPENSSL_cleanse(data, static_cast<size_t>(len));  // may be a private key
      OPENSSL_free(data);
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("no PEM certificate found");
  return out;
}

absl::StatusOr<X509Ptr> ParseCertificatePem(std::string_view pem) {
  WARD_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificatesPem(pem));
  return std::move(certs.front());
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslFailure("writing certificate PEM");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CertificateToDer(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return OpenSslFailure("encoding certificate");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> PemToDer(std::string_view cert_pem) {
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificatePem(cert_pem));
  return CertificateToDer(cert.get());
}

absl::StatusOr<core::SecureBytes> PemBlockToDer(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (bio == nullptr || PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("no PEM block");
  }
  core::SecureBytes der(
      std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(len)));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_clear_free(data, static_cast<size_t>(len));  // may be a private key
  return der;
}

X509Ptr CopyCertificate(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string SerialColonHex(const X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (bn == nullptr) return "";
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
  std::string out;
  char hex[4];
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(hex, sizeof(hex), "%02x", static_cast<unsigned char>(bytes[i]));
    if (i > 0) out += ':';
    out += hex;
  }
  return out;
}

absl::StatusOr<std::string> NormalizeSerial(std::string_view serial) {
  std::string hex;
  for (char c : serial) {
    if (c == ':' || c == '-') continue;
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError("invalid serial number \"" + std::string(serial) + "\"");
    }
    hex += c;
  }
  if (hex.empty() || hex.size() > 80) {
    return absl::InvalidArgumentError("invalid serial number \"" + std::string(serial) + "\"");
  }
  if (hex.size() % 2 == 1) hex.insert(hex.begin(), '0');
  // Drop leading zero bytes, as SerialColonHex prints the minimal form.
  while (hex.size() > 2 && hex.compare(0, 2, "00") == 0) hex.erase(0, 2);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out += ':';
    out.append(hex, i, 2);
  }
  return out;
}

absl::Time NotBefore(const X509* cert) { return FromAsn1Time(X509_get0_notBefore(cert)); }
absl::Time NotAfter(const X509* cert) { return FromAsn1Time(X509_get0_notAfter(cert)); }

bool KeyMatchesCertificate(X509* cert, EVP_PKEY* key) {
  bool ok = X509_check_private_key(cert, key) == 1;
  ERR_clear_error();
  return ok;
}

bool SamePublicKey(EVP_PKEY* a, EVP_PKEY* b) { return EVP_PKEY_eq(a, b) == 1; }

Names NamesOf(X509* cert) {
  Names out;
  out.common_name = CommonNameOf(X509_get_subject_name(cert));
  GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  CollectSans(sans.get(), out);
  return out;
}

absl::StatusOr<X509Ptr> BuildCertificate(const CertificateTemplate& tmpl, EVP_PKEY* subject_key,
                                         X509* issuer, EVP_PKEY* signing_key) {
  if (tmpl.not_after <= tmpl.not_before) {
    return absl::InvalidArgumentError("certificate validity must be positive");
  }
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpenSslFailure("X509_new");
  X509* c = cert.get();
  if (X509_set_version(c, X509_VERSION_3) != 1) return OpenSslFailure("X509_set_version");
  WARD_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, RandomSerial());
  if (X509_set_serialNumber(c, serial.get()) != 1) return OpenSslFailure("setting serial");
  if (ASN1_TIME_set(X509_getm_notBefore(c), absl::ToTimeT(tmpl.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(c), absl::ToTimeT(tmpl.not_after)) == nullptr) {
    return OpenSslFailure("setting validity");
  }
  WARD_RETURN_IF_ERROR(SetCommonName(X509_get_subject_name(c), tmpl.common_name));
  // A CA certificate is kept as an object (its key is read back from it); a leaf is only
  // encoded, so it may skip the cached key (SetLeafPublicKey).
  if (tmpl.is_ca ? X509_set_pubkey(c, subject_key) != 1 : !SetLeafPublicKey(c, subject_key)) {
    return OpenSslFailure("X509_set_pubkey");
  }
  X509* issuer_cert = issuer == nullptr ? c : issuer;
  if (X509_set_issuer_name(c, X509_get_subject_name(issuer_cert)) != 1) {
    return OpenSslFailure("setting issuer");
  }

  if (tmpl.is_ca) {
    std::string bc = "critical,CA:TRUE";
    if (tmpl.path_len >= 0) bc += ",pathlen:" + std::to_string(tmpl.path_len);
    WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_basic_constraints, bc.c_str()));
    WARD_RETURN_IF_ERROR(
        AddExtension(c, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_basic_constraints, "critical,CA:FALSE"));
    const bool rsa = EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA;
    WARD_RETURN_IF_ERROR(AddExtension(
        c, issuer_cert, NID_key_usage,
        rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"));
    if (tmpl.server_auth && tmpl.client_auth) {
      WARD_RETURN_IF_ERROR(
          AddExtension(c, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth"));
    } else if (tmpl.server_auth) {
      WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_ext_key_usage, "serverAuth"));
    } else if (tmpl.client_auth) {
      WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_ext_key_usage, "clientAuth"));
    }
  }
  WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_subject_key_identifier, "hash"));
  WARD_RETURN_IF_ERROR(AddExtension(c, issuer_cert, NID_authority_key_identifier, "keyid:always"));
  WARD_ASSIGN_OR_RETURN(GeneralNamesPtr sans, MakeSans(tmpl.dns_sans, tmpl.ip_sans, tmpl.uri_sans));
  if (sans != nullptr) {
    // RFC 5280 4.2.1.6 and X509-SVID: with an empty subject the SAN extension is critical.
    if (X509_add1_ext_i2d(c, NID_subject_alt_name, sans.get(), tmpl.common_name.empty() ? 1 : 0,
                          X509V3_ADD_DEFAULT) != 1) {
      return OpenSslFailure("adding subjectAltName");
    }
  }
  if (X509_sign(c, signing_key, DigestFor(signing_key)) <= 0) {
    return OpenSslFailure("signing certificate");
  }
  return cert;
}

absl::StatusOr<Csr> ParseCsr(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  X509ReqPtr req(bio == nullptr ? nullptr
                                : PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (req == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr is not a valid PEM certificate request");
  }
  Csr out;
  out.public_key.reset(X509_REQ_get_pubkey(req.get()));
  if (out.public_key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr has no usable public key");
  }
  if (X509_REQ_verify(req.get(), out.public_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr signature does not verify");
  }
  out.names.common_name = CommonNameOf(X509_REQ_get_subject_name(req.get()));
  ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  if (exts != nullptr) {
    GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
        X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
    CollectSans(sans.get(), out.names);
  }
  ERR_clear_error();
  return out;
}

absl::StatusOr<std::string> BuildCsr(EVP_PKEY* key, std::string_view common_name,
                                     const std::vector<std::string>& uri_sans) {
  X509ReqPtr req(X509_REQ_new());
  if (req == nullptr) return OpenSslFailure("X509_REQ_new");
  if (X509_REQ_set_version(req.get(), 0) != 1) return OpenSslFailure("X509_REQ_set_version");
  crypto::X509NamePtr subject(X509_NAME_new());
  if (subject == nullptr) return OpenSslFailure("X509_NAME_new");
  WARD_RETURN_IF_ERROR(SetCommonName(subject.get(), common_name));
  if (X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key) != 1) {
    return OpenSslFailure("building CSR");
  }
  WARD_ASSIGN_OR_RETURN(GeneralNamesPtr sans, MakeSans({}, {}, uri_sans));
  if (sans != nullptr) {
    ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext =
        X509V3_EXT_i2d(NID_subject_alt_name, common_name.empty() ? 1 : 0, sans.get());
    if (exts == nullptr || ext == nullptr || sk_X509_EXTENSION_push(exts.get(), ext) == 0) {
      X509_EXTENSION_free(ext);
      return OpenSslFailure("adding CSR extensions");
    }
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
      return OpenSslFailure("adding CSR extensions");
    }
  }
  if (X509_REQ_sign(req.get(), key, DigestFor(key)) <= 0) return OpenSslFailure("signing CSR");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslFailure("writing CSR PEM");
  }
  return BioContents(bio.get());
}

absl::StatusOr<X509CrlPtr> BuildCrl(X509* issuer, EVP_PKEY* issuer_key,
                                    const std::vector<RevokedSerial>& revoked,
                                    absl::Time this_update, absl::Time next_update,
                                    uint64_t number) {
  X509CrlPtr crl(X509_CRL_new());
  if (crl == nullptr) return OpenSslFailure("X509_CRL_new");
  X509_CRL* c = crl.get();
  Asn1TimePtr last(ASN1_TIME_set(nullptr, absl::ToTimeT(this_update)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, absl::ToTimeT(next_update)));
  if (X509_CRL_set_version(c, X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer)) != 1 || last == nullptr ||
      next == nullptr || X509_CRL_set1_lastUpdate(c, last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(c, next.get()) != 1) {
    return OpenSslFailure("building CRL");
  }
  for (const RevokedSerial& r : revoked) {
    std::string hex;
    for (char ch : r.serial) {
      if (ch != ':') hex += ch;
    }
    BIGNUM* raw = nullptr;
    if (hex.empty() || BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
      BN_free(raw);
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid serial number \"" + r.serial + "\"");
    }
    BignumPtr bn(raw);
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    Asn1TimePtr when(ASN1_TIME_set(nullptr, absl::ToTimeT(r.revocation_time)));
    X509RevokedPtr entry(X509_REVOKED_new());
    if (serial == nullptr || when == nullptr || entry == nullptr ||
        X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), when.get()) != 1 ||
        X509_CRL_add0_revoked(c, entry.get()) != 1) {
      return OpenSslFailure("adding CRL entry");
    }
    entry.release();  // owned by the CRL now
  }
  X509_CRL_sort(c);
  BignumPtr number_bn(BN_new());
  if (number_bn == nullptr || BN_set_word(number_bn.get(), number) != 1) {
    return OpenSslFailure("CRL number");
  }
  Asn1IntegerPtr crl_number(BN_to_ASN1_INTEGER(number_bn.get(), nullptr));
  if (crl_number == nullptr ||
      X509_CRL_add1_ext_i2d(c, NID_crl_number, crl_number.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslFailure("adding cRLNumber");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, nullptr, nullptr, c, 0);
  X509ExtensionPtr aki(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (aki == nullptr || X509_CRL_add_ext(c, aki.get(), -1) != 1) {
    return OpenSslFailure("adding CRL authorityKeyIdentifier");
  }
  if (X509_CRL_sign(c, issuer_key, DigestFor(issuer_key)) <= 0) {
    return OpenSslFailure("signing CRL");
  }
  return crl;
}

absl::StatusOr<std::string> CrlToDer(X509_CRL* crl) {
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl, &der);
  if (len <= 0) return OpenSslFailure("encoding CRL");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> CrlToPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
    return OpenSslFailure("writing CRL PEM");
  }
  return BioContents(bio.get());
}

absl::Status ValidateSpiffeId(std::string_view uri, bool leaf) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid SPIFFE ID \"", core::ToAbsl(uri), "\": ", core::ToAbsl(why)));
  };
  constexpr std::string_view kScheme = "spiffe://";
  if (uri.size() > kMaxSpiffeId) return bad("longer than 2048 bytes");
  if (uri.substr(0, kScheme.size()) != kScheme) return bad("scheme must be spiffe://");
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (td.empty()) return bad("empty trust domain");
  if (td.size() > kMaxTrustDomain) return bad("trust domain longer than 255 bytes");
  for (char c : td) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) {
      return bad("trust domain may hold only [a-z0-9.-_]");
    }
  }
  if (leaf && path.empty()) return bad("an SVID needs a non-root path");
  if (!leaf && !path.empty()) return bad("a CA's SPIFFE ID must have no path");
  // path: ("/" segment)+
  size_t i = 0;
  while (i < path.size()) {
    size_t next = path.find('/', i + 1);
    std::string_view segment =
        path.substr(i + 1, next == std::string_view::npos ? std::string_view::npos : next - i - 1);
    if (segment.empty()) return bad("empty path segment or trailing '/'");
    if (segment == "." || segment == "..") return bad("'.' or '..' path segment");
    for (char c : segment) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_')) {
        return bad("path segments may hold only [a-zA-Z0-9.-_]");
      }
    }
    if (next == std::string_view::npos) break;
    i = next;
  }
  return absl::OkStatus();
}

std::string TrustDomainOf(std::string_view spiffe_id) {
  constexpr std::string_view kScheme = "spiffe://";
  if (spiffe_id.substr(0, kScheme.size()) != kScheme) return "";
  std::string_view rest = spiffe_id.substr(kScheme.size());
  return std::string(rest.substr(0, rest.find('/')));
}

absl::StatusOr<std::string> SpiffeJwk(X509* ca_cert) {
  EVP_PKEY* key = X509_get0_pubkey(ca_cert);
  if (key == nullptr) return OpenSslFailure("reading CA public key");
  json::object jwk;
  jwk["use"] = "x509-svid";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      WARD_RETURN_IF_ERROR(KeySpecOf(key).status());
      jwk["kty"] = "EC";
      jwk["crv"] = "P-256";
      WARD_ASSIGN_OR_RETURN(std::string x, BnParamBase64Url(key, OSSL_PKEY_PARAM_EC_PUB_X, 32));
      WARD_ASSIGN_OR_RETURN(std::string y, BnParamBase64Url(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
      jwk["x"] = x;
      jwk["y"] = y;
      break;
    }
    case EVP_PKEY_RSA: {
      jwk["kty"] = "RSA";
      WARD_ASSIGN_OR_RETURN(std::string n, BnParamBase64Url(key, OSSL_PKEY_PARAM_RSA_N, 0));
      WARD_ASSIGN_OR_RETURN(std::string e, BnParamBase64Url(key, OSSL_PKEY_PARAM_RSA_E, 0));
      jwk["n"] = n;
      jwk["e"] = e;
      break;
    }
    case EVP_PKEY_ED25519: {
      unsigned char raw[32];
      size_t len = sizeof(raw);
      if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1) return OpenSslFailure("Ed25519 key");
      std::string x;
      absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(raw), len), &x);
      jwk["kty"] = "OKP";
      jwk["crv"] = "Ed25519";
      jwk["x"] = x;
      break;
    }
    default:
      return absl::InvalidArgumentError("unsupported CA key algorithm for a JWK");
  }
  WARD_ASSIGN_OR_RETURN(std::string der, CertificateToDer(ca_cert));
  json::array x5c;
  x5c.emplace_back(absl::Base64Escape(core::ToAbsl(der)));
  jwk["x5c"] = std::move(x5c);
  return json::serialize(jwk);
}

}  // namespace ward::pki
