#include "server/config.h"

#include "gtest/gtest.h"

namespace ward::server {
namespace {

constexpr char kValid[] = R"(
listener:
  address: 0.0.0.0:8200
  tls_cert_file: /etc/ward/server.pem
  tls_key_file: /etc/ward/server-key.pem
  max_request_size: 1048576
  read_timeout: 10s
storage:
  path: /var/lib/ward
seal:
  type: shamir
log_level: debug
)";

TEST(ConfigTest, ParsesAValidConfig) {
  auto c = ParseConfig(kValid);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listener.address, "0.0.0.0:8200");
  EXPECT_EQ(c->listener.tls_cert_file, "/etc/ward/server.pem");
  EXPECT_EQ(c->listener.max_request_size, 1048576u);
  EXPECT_EQ(c->listener.read_timeout, absl::Seconds(10));
  EXPECT_EQ(c->storage.path, "/var/lib/ward");
  EXPECT_EQ(c->log_level, "debug");
}

// Each broken config must fail with kInvalidArgument and a message naming the field.
struct BadCase {
  const char* yaml;
  const char* field;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesTheField) {
  auto c = ParseConfig(GetParam().yaml);
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  EXPECT_NE(std::string(c.status().message()).find(GetParam().field), std::string::npos)
      << c.status();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadConfigTest,
    ::testing::Values(
        BadCase{"storage: {path: /x}\n", "listener"},
        BadCase{"listener: {tls_key_file: k}\nstorage: {path: /x}\n", "listener.tls_cert_file"},
        BadCase{"listener: {tls_cert_file: c}\nstorage: {path: /x}\n", "listener.tls_key_file"},
        BadCase{"listener: {address: nope, tls_cert_file: c, tls_key_file: k}\nstorage: {path: /x}\n",
                "listener.address"},
        BadCase{"listener: {address: 'h:70000', tls_cert_file: c, tls_key_file: k}\nstorage: {path: /x}\n",
                "listener.address"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k}\n", "storage"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k}\nstorage: {}\n", "storage.path"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, max_request_size: -1}\nstorage: {path: /x}\n",
                "listener.max_request_size"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, read_timeout: soon}\nstorage: {path: /x}\n",
                "listener.read_timeout"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k}\nstorage: {path: /x}\nseal: {type: awskms}\n",
                "seal.type"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k}\nstorage: {path: /x}\nlog_level: loud\n",
                "log_level"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_cert: c}\nstorage: {path: /x}\n",
                "listener.tls_cert"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, unauthenticated_metrics_access: yes}\n"
                "storage: {path: /x}\n",
                "listener.unauthenticated_metrics_access"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_require_client_cert: 1}\n"
                "storage: {path: /x}\n",
                "listener.tls_require_client_cert"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_require_client_cert: true}\n"
                "storage: {path: /x}\n",
                "listener.tls_client_ca_file"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_crl_file: r}\n"
                "storage: {path: /x}\n",
                "listener.tls_crl_file"},
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_client_ca_file: ''}\n"
                "storage: {path: /x}\n",
                "listener.tls_client_ca_file"},
        BadCase{"listener: [\n", "line"}));

TEST(ConfigTest, UnauthenticatedMetricsAccessDefaultsOffAndParses) {
  auto off = ParseConfig(kValid);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->listener.unauthenticated_metrics_access);
  auto on = ParseConfig(
      "listener: {tls_cert_file: c, tls_key_file: k, unauthenticated_metrics_access: true}\n"
      "storage: {path: /x}\n");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->listener.unauthenticated_metrics_access);
}

TEST(ConfigTest, ProcessHardeningDefaultsOnAndCanBeTurnedOff) {
  auto defaults = ParseConfig(kValid);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->disable_mlock);
  EXPECT_TRUE(defaults->disable_core_dumps);
  auto off = ParseConfig(std::string(kValid) + "disable_mlock: true\ndisable_core_dumps: false\n");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->disable_mlock);
  EXPECT_FALSE(off->disable_core_dumps);
  auto bad = ParseConfig(std::string(kValid) + "disable_mlock: maybe\n");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("disable_mlock"), std::string::npos);
}

TEST(ConfigTest, MutualTlsFieldsDefaultOffAndParse) {
  auto defaults = ParseConfig(kValid);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->listener.tls_client_ca_file, "");
  EXPECT_FALSE(defaults->listener.tls_require_client_cert);
  EXPECT_EQ(defaults->listener.tls_crl_file, "");
  auto c = ParseConfig(R"(
listener:
  tls_cert_file: c
  tls_key_file: k
  tls_client_ca_file: /etc/ward/clients.pem
  tls_require_client_cert: true
  tls_crl_file: /etc/ward/clients.crl
storage:
  path: /x
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listener.tls_client_ca_file, "/etc/ward/clients.pem");
  EXPECT_TRUE(c->listener.tls_require_client_cert);
  EXPECT_EQ(c->listener.tls_crl_file, "/etc/ward/clients.crl");
}

TEST(ConfigTest, SplitsIpv6HostPort) {
  auto hp = SplitHostPort("[::1]:8200", "a");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, 8200);
}

}  // namespace
}  // namespace ward::server
