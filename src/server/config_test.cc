#include "server/config.h"

#include "absl/strings/str_cat.h"
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
  tls_handshake_timeout: 3s
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
  EXPECT_EQ(c->listener.tls_handshake_timeout, absl::Seconds(3));
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
        BadCase{"listener: {tls_cert_file: c, tls_key_file: k, tls_handshake_timeout: -1s}\n"
                "storage: {path: /x}\n",
                "listener.tls_handshake_timeout"},
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

TEST(ConfigTest, PkiTrustAndTicketRotationDefaultAndParse) {
  auto defaults = ParseConfig(kValid);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_TRUE(defaults->listener.tls_trust_pki_mounts);
  EXPECT_EQ(defaults->listener.tls_ticket_key_rotation, absl::Hours(12));
  auto c = ParseConfig(
      "listener: {tls_cert_file: c, tls_key_file: k, tls_trust_pki_mounts: false,\n"
      "           tls_ticket_key_rotation: 1h}\nstorage: {path: /x}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->listener.tls_trust_pki_mounts);
  EXPECT_EQ(c->listener.tls_ticket_key_rotation, absl::Hours(1));
  for (const char* bad : {"tls_trust_pki_mounts: yes", "tls_ticket_key_rotation: 30s",
                          "tls_ticket_key_rotation: soon"}) {
    auto r = ParseConfig(absl::StrCat("listener: {tls_cert_file: c, tls_key_file: k, ", bad,
                                      "}\nstorage: {path: /x}\n"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(r.status().message()).find(std::string(bad).substr(0, 12)),
              std::string::npos)
        << r.status();
  }
}

TEST(ConfigTest, SessionResumptionDefaultsAndParse) {
  auto defaults = ParseConfig(kValid);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->listener.tls_session_resumption, ListenerConfig::SessionResumption::kNode);
  EXPECT_EQ(defaults->listener.tls_session_cache_size, 10000u);
  auto c = ParseConfig(
      "listener: {tls_cert_file: c, tls_key_file: k, tls_session_resumption: tickets,\n"
      "           tls_session_cache_size: 500}\nstorage: {path: /x}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listener.tls_session_resumption, ListenerConfig::SessionResumption::kTickets);
  EXPECT_EQ(c->listener.tls_session_cache_size, 500u);
  auto node = ParseConfig(
      "listener: {tls_cert_file: c, tls_key_file: k, tls_session_resumption: node}\n"
      "storage: {path: /x}\n");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->listener.tls_session_resumption, ListenerConfig::SessionResumption::kNode);
  for (const char* bad : {"tls_session_resumption: cache", "tls_session_resumption: \"\"",
                          "tls_session_cache_size: 0", "tls_session_cache_size: -3",
                          "tls_session_cache_size: lots"}) {
    auto r = ParseConfig(absl::StrCat("listener: {tls_cert_file: c, tls_key_file: k, ", bad,
                                      "}\nstorage: {path: /x}\n"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(r.status().message()).find(std::string(bad).substr(0, 16)),
              std::string::npos)
        << r.status();
  }
}

TEST(ConfigTest, EventLoopsDefaultAndParse) {
  auto defaults = ParseConfig(kValid);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->listener.event_loops, 0);  // one per usable CPU
  for (auto [text, want] : {std::pair{"1", 1}, std::pair{"6", 6}, std::pair{"1024", 1024}}) {
    auto c = ParseConfig(absl::StrCat("listener: {tls_cert_file: c, tls_key_file: k, event_loops: ",
                                      text, "}\nstorage: {path: /x}\n"));
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->listener.event_loops, want);
  }
  for (const char* bad : {"0", "-2", "1025", "two", "\"\"", "1.5"}) {
    auto r = ParseConfig(absl::StrCat("listener: {tls_cert_file: c, tls_key_file: k, event_loops: ",
                                      bad, "}\nstorage: {path: /x}\n"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message(),
              "listener.event_loops: must be an integer from 1 to 1024 (omit it for one per CPU)")
        << bad;
  }
}

TEST(ConfigTest, AuditDevicesParse) {
  auto none = ParseConfig(kValid);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->audit.empty());
  auto c = ParseConfig(std::string(kValid) + R"(
audit:
  - type: file
    path: /file/
    description: main trail
    options:
      file_path: /var/log/ward/audit.log
  - type: file
    path: backup
    options: {file_path: /mnt/audit/ward.log}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->audit.size(), 2u);
  EXPECT_EQ(c->audit[0].type, "file");
  EXPECT_EQ(c->audit[0].path, "file");  // normalised like sys/audit/<path>
  EXPECT_EQ(c->audit[0].description, "main trail");
  EXPECT_EQ(c->audit[0].options.at("file_path"), "/var/log/ward/audit.log");
  EXPECT_EQ(c->audit[1].path, "backup");
  EXPECT_EQ(c->audit[1].description, "");
  EXPECT_EQ(c->audit[1].options.at("file_path"), "/mnt/audit/ward.log");
}

TEST(ConfigTest, BadAuditDevicesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"audit: {type: file}", "audit: must be a list"},
      {"audit: [{path: f, options: {file_path: /a}}]", "audit[0].type: required"},
      {"audit: [{type: syslog, path: f, options: {file_path: /a}}]", "audit[0].type: only"},
      {"audit: [{type: file, options: {file_path: /a}}]", "audit[0].path: required"},
      {"audit: [{type: file, path: /, options: {file_path: /a}}]", "audit[0].path: required"},
      {"audit: [{type: file, path: f}]", "audit[0].options.file_path: required"},
      {"audit: [{type: file, path: f, options: {}}]", "audit[0].options.file_path: required"},
      {"audit: [{type: file, path: f, options: {file_path: ''}}]",
       "audit[0].options.file_path: required"},
      {"audit: [{type: file, path: f, options: {file_path: stdout}}]",
       "audit[0].options.file_path: must be a file path"},
      {"audit: [{type: file, path: f, options: {file_path: rel.log}}]",
       "audit[0].options.file_path: must be an absolute path"},
      {"audit: [{type: file, path: f, options: {file_path: /a, hmac_accessor: false}}]",
       "audit[0].options.hmac_accessor: unknown field"},
      {"audit: [{type: file, path: f, local: true, options: {file_path: /a}}]",
       "audit[0].local: unknown field"},
      {"audit: [{type: file, path: f, options: [a]}]", "audit[0].options: must be a mapping"},
      {"audit: [{type: file, path: f, options: {file_path: /a}},\n"
       "        {type: file, path: f/, options: {file_path: /b}}]",
       "audit[1].path: \"f\" is already used by audit[0]"},
      {"audit: [{type: file, path: f, options: {file_path: /a}},\n"
       "        {type: file, path: g, options: {file_path: /a}}]",
       "audit[1].options.file_path: already used by audit[0]"},
  };
  for (const auto& [yaml, message] : cases) {
    auto c = ParseConfig(absl::StrCat(kValid, yaml, "\n"));
    ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_NE(std::string(c.status().message()).find(message), std::string::npos)
        << yaml << " -> " << c.status();
  }
}

TEST(ConfigTest, SplitsIpv6HostPort) {
  auto hp = SplitHostPort("[::1]:8200", "a");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, 8200);
}

}  // namespace
}  // namespace ward::server
