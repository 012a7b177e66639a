// CollectPkiTrust: the PKI trust the listener installs, and a fingerprint that moves exactly
// when that trust does (so the listener never rebuilds its TLS context needlessly).

#include "api/pki_trust.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "barrier/testing/unsealed_barrier.h"
#include "boost/json.hpp"
#include "core/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "pki/role.h"
#include "storage/memory_backend.h"

namespace ward::api {
namespace {

size_t Count(const std::string& haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class PkiTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto barrier = barrier::testing::NewUnsealedBarrier(backend_, clock_,
                                                        core::SecureBytes(std::string(32, 'k')));
    ASSERT_TRUE(barrier.ok()) << barrier.status();
    barrier_ = std::move(*barrier);
    auto mounts = MountTable::Create(*barrier_, clock_);
    ASSERT_TRUE(mounts.ok()) << mounts.status();
    state_.mounts = std::move(*mounts);
  }

  // Mounts PKI at `path` with a root and role "web"; returns the engine.
  std::shared_ptr<pki::PkiEngine> MountPki(const std::string& path) {
    EXPECT_TRUE(state_.mounts->Mount(path, "pki", "", {}).ok());
    std::optional<MountMatch> m = state_.mounts->Find(path + "/x");
    EXPECT_TRUE(m.has_value() && m->pki != nullptr);
    if (!m || m->pki == nullptr) return nullptr;
    pki::RootRequest root;
    root.common_name = "Root of " + path;
    root.trust_domain = "example.org";
    EXPECT_TRUE(m->pki->GenerateRoot(root).ok());
    auto role = pki::ParseRole(
        "web", boost::json::object{{"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*"}},
        nullptr);
    EXPECT_TRUE(role.ok()) << role.status();
    if (role.ok()) {
      EXPECT_TRUE(m->pki->WriteRole(*role).ok());
    }
    return m->pki;
  }

  core::FakeClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Barrier> barrier_;
  UnsealedState state_;
};

TEST_F(PkiTrustTest, NoPkiMountMeansNoTrustAndAStableFingerprint) {
  PkiTrust trust = CollectPkiTrust(state_);  // only the default KV mount
  EXPECT_EQ(trust.ca_pem, "");
  EXPECT_EQ(trust.crl_pem, "");
  EXPECT_EQ(trust.fingerprint.size(), 64u);
  EXPECT_EQ(CollectPkiTrust(state_).fingerprint, trust.fingerprint);
}

TEST_F(PkiTrustTest, CollectsBundlesAndCrlsOfEveryMount) {
  MountPki("pki");
  MountPki("pki-team");
  PkiTrust trust = CollectPkiTrust(state_);
  EXPECT_EQ(Count(trust.ca_pem, "-----BEGIN CERTIFICATE-----"), 2u);
  EXPECT_EQ(Count(trust.crl_pem, "-----BEGIN X509 CRL-----"), 2u);
}

TEST_F(PkiTrustTest, FingerprintMovesOnRevocationAndNewIssuersButNotOnIssuance) {
  std::shared_ptr<pki::PkiEngine> engine = MountPki("pki");
  ASSERT_NE(engine, nullptr);
  const std::string before = CollectPkiTrust(state_).fingerprint;

  pki::IssueRequest req;
  req.uri_sans = {"spiffe://example.org/ns/prod/sa/web"};
  auto issued = engine->Issue("web", req);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(CollectPkiTrust(state_).fingerprint, before);  // nothing to reload

  ASSERT_TRUE(engine->Revoke(issued->serial_number).ok());
  const std::string revoked = CollectPkiTrust(state_).fingerprint;
  EXPECT_NE(revoked, before);

  pki::RootRequest next;
  next.common_name = "Next root";
  ASSERT_TRUE(engine->PrepareNext(next).ok());
  PkiTrust rotated = CollectPkiTrust(state_);
  EXPECT_NE(rotated.fingerprint, revoked);
  EXPECT_EQ(Count(rotated.ca_pem, "-----BEGIN CERTIFICATE-----"), 2u);

  ASSERT_TRUE(state_.mounts->Unmount("pki").ok());
  EXPECT_EQ(CollectPkiTrust(state_).ca_pem, "");
}

}  // namespace
}  // namespace ward::api
