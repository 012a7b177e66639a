#include "crypto/x509.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <set>

#include "crypto/openssl_handles.h"
#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

X509Ptr ParseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

EvpPkeyPtr ParseKey(const core::SecureBytes& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return EvpPkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// Verifies `leaf` against the single trust anchor `ca` at time `at` for `purpose`; returns
// the X509_V_* result (X509_V_OK on success).
int Verify(X509* ca, X509* leaf, absl::Time at, int purpose) {
  X509StorePtr store(X509_STORE_new());
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca), 1);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr), 1);
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), purpose), 1);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

std::set<std::string> SanStrings(X509* cert) {
  std::set<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                      ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const unsigned char* b = ASN1_STRING_get0_data(name->d.iPAddress);
      const int len = ASN1_STRING_length(name->d.iPAddress);
      std::string text;
      char part[8];
      if (len == 4) {
        for (int k = 0; k < 4; ++k) {
          std::snprintf(part, sizeof(part), k == 0 ? "%d" : ".%d", b[k]);
          text += part;
        }
      } else {
        for (int k = 0; k + 1 < len; k += 2) {
          std::snprintf(part, sizeof(part), k == 0 ? "%x" : ":%x", (b[k] << 8) | b[k + 1]);
          text += part;
        }
      }
      out.insert("IP:" + text);
    }
  }
  return out;
}

class X509Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = GenerateSelfSignedCa("Ward Test CA", kStart, absl::Hours(24 * 365));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
  }

  absl::StatusOr<PemKeyPair> Issue(std::vector<std::string> dns, std::vector<std::string> ips) {
    return IssueServerCertificate(ca_, "ward.test", dns, ips, kStart, absl::Hours(24));
  }

  PemKeyPair ca_;
};

TEST_F(X509Test, CaIsSelfSignedP256WithCaExtensions) {
  X509Ptr ca = ParseCert(ca_.cert_pem);
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);

  int critical = -1;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &critical, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(critical, 1);
  EXPECT_NE(bc->ca, 0);
  BASIC_CONSTRAINTS_free(bc);

  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);

  EVP_PKEY* pub = X509_get0_pubkey(ca.get());
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  char group[64] = {};
  size_t group_len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(pub, group, sizeof(group), &group_len), 1);
  EXPECT_STREQ(group, "prime256v1");

  EXPECT_EQ(ca_.key_pem.view().substr(0, 27), "-----BEGIN PRIVATE KEY-----");
  EvpPkeyPtr key = ParseKey(ca_.key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(ca.get(), key.get()), 1);
}

TEST_F(X509Test, ValidityIsBackdatedOneMinute) {
  X509Ptr ca = ParseCert(ca_.cert_pem);
  ASSERT_NE(ca, nullptr);
  time_t before_start = absl::ToTimeT(kStart - absl::Minutes(1) - absl::Seconds(1));
  time_t backdated = absl::ToTimeT(kStart - absl::Minutes(1));
  time_t end = absl::ToTimeT(kStart + absl::Hours(24 * 365));
  EXPECT_EQ(X509_cmp_time(X509_get0_notBefore(ca.get()), &before_start), 1);
  EXPECT_EQ(X509_cmp_time(X509_get0_notBefore(ca.get()), &backdated), -1) << "equal counts as -1";
  time_t after_end = end + 1;
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), &after_end), -1);
  time_t before_end = end - 1;
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), &before_end), 1);
}

TEST_F(X509Test, LeafVerifiesAgainstCaForServerAndClient) {
  auto leaf = Issue({"localhost", "ward.internal"}, {"127.0.0.1", "::1"});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  X509Ptr ca = ParseCert(ca_.cert_pem);
  X509Ptr cert = ParseCert(leaf->cert_pem);
  ASSERT_NE(cert, nullptr);
  const absl::Time during = kStart + absl::Hours(1);
  EXPECT_EQ(Verify(ca.get(), cert.get(), during, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), cert.get(), during, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), cert.get(), kStart - absl::Seconds(30), X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), cert.get(), kStart - absl::Minutes(2), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_NOT_YET_VALID);
  EXPECT_EQ(Verify(ca.get(), cert.get(), kStart + absl::Hours(25), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_HAS_EXPIRED);

  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EvpPkeyPtr key = ParseKey(leaf->key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));

  // The leaf's authority key id is the CA's subject key id.
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert.get());
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca.get());
  ASSERT_NE(aki, nullptr);
  ASSERT_NE(ski, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki, ski), 0);
}

TEST_F(X509Test, LeafCarriesRequestedSans) {
  auto leaf = Issue({"localhost", "*.ward.internal"}, {"127.0.0.1", "::1"});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  X509Ptr cert = ParseCert(leaf->cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(SanStrings(cert.get()), (std::set<std::string>{"DNS:localhost", "DNS:*.ward.internal",
                                                           "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"}));
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "api.ward.internal", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 0);
}

TEST_F(X509Test, LeafWithoutCommonNameHasCriticalSan) {
  auto leaf = IssueServerCertificate(ca_, "", {"svc.internal"}, {}, kStart, absl::Hours(1));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  X509Ptr cert = ParseCert(leaf->cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 0);
  int critical = -1;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, &critical, nullptr)));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(critical, 1);
}

TEST_F(X509Test, LeafDoesNotVerifyAgainstAnotherCa) {
  auto other = GenerateSelfSignedCa("Other CA", kStart, absl::Hours(24));
  ASSERT_TRUE(other.ok());
  auto leaf = Issue({"localhost"}, {});
  ASSERT_TRUE(leaf.ok());
  X509Ptr other_ca = ParseCert(other->cert_pem);
  X509Ptr cert = ParseCert(leaf->cert_pem);
  EXPECT_NE(Verify(other_ca.get(), cert.get(), kStart + absl::Hours(1), X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
}

TEST_F(X509Test, SerialsArePositiveSixteenBytesAndDistinct) {
  std::set<std::string> serials;
  for (int i = 0; i < 5; ++i) {
    auto leaf = Issue({"localhost"}, {});
    ASSERT_TRUE(leaf.ok());
    X509Ptr cert = ParseCert(leaf->cert_pem);
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
    BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
    ASSERT_NE(bn, nullptr);
    EXPECT_FALSE(BN_is_negative(bn.get()));
    EXPECT_EQ(BN_num_bytes(bn.get()), 16);
    char* hex = BN_bn2hex(bn.get());
    EXPECT_TRUE(serials.insert(hex).second);
    OPENSSL_free(hex);
  }
}

TEST_F(X509Test, RejectsInvalidNamesAndAddresses) {
  EXPECT_EQ(Issue({"a,DNS:evil.example"}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Issue({""}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Issue({}, {"300.1.1.1"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Issue({}, {"localhost"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueServerCertificate(ca_, std::string(65, 'a'), {}, {}, kStart, absl::Hours(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueServerCertificate(ca_, "", {}, {}, kStart, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueServerCertificate(ca_, "x", {}, {}, kStart, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GenerateSelfSignedCa("", kStart, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GenerateSelfSignedCa("ca", kStart, -absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(X509Test, RejectsBadIssuer) {
  PemKeyPair garbage{"not a cert", core::SecureBytes(std::string_view("not a key"))};
  EXPECT_EQ(IssueServerCertificate(garbage, "x", {}, {}, kStart, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto other = GenerateSelfSignedCa("Other CA", kStart, absl::Hours(24));
  ASSERT_TRUE(other.ok());
  PemKeyPair mismatched{ca_.cert_pem, other->key_pem.Copy()};
  EXPECT_EQ(IssueServerCertificate(mismatched, "x", {}, {}, kStart, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto leaf = Issue({"localhost"}, {});
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(IssueServerCertificate(*leaf, "x", {}, {}, kStart, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ward::crypto
