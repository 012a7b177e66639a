// sys/metrics on a real server: Prometheus and JSON forms, ACL, unauthenticated scrapes.

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "metrics/testing/prometheus_parser.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;
using metrics::testing::Exposition;
using metrics::testing::ParsePrometheusText;

Exposition Scrape(net::HttpClient& client, const std::string& token) {
  Reply r = Call(client, "GET", "sys/metrics?format=prometheus", token);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  auto parsed = ParsePrometheusText(r.body);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << r.body;
  return parsed.ok() ? *parsed : Exposition{};
}

double ValueOr0(const Exposition& e, const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
  return e.Value(name, labels).value_or(0);
}

TEST(MetricsDevTest, CountersMoveAndAccessFollowsPolicy) {
  core::TempDir dir;
  auto server = WardProcess::StartDev(dir.Join("data"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  ASSERT_NE(client, nullptr);
  const std::string root = (*server)->root_token();

  Exposition before = Scrape(*client, root);
  ASSERT_TRUE(before.help.count("ward_http_requests_total"));
  EXPECT_EQ(before.type.at("ward_http_request_duration_seconds"), "histogram");
  EXPECT_EQ(before.Value("ward_barrier_sealed"), 0);
  EXPECT_GE(ValueOr0(before, "ward_token_count"), 1);
  EXPECT_EQ(before.Value("ward_quota_rejections_total"), 0);
  EXPECT_EQ(before.Value("ward_build_info"), 1);

  ASSERT_EQ(Call(*client, "PUT", "secret/data/m", root, R"({"data":{"a":"b"}})").status, 200);
  ASSERT_EQ(Call(*client, "GET", "secret/data/m", root).status, 200);
  ASSERT_EQ(Call(*client, "GET", "secret/data/nope", root).status, 404);
  ASSERT_EQ(Call(*client, "GET", "secret/data/m", "").status, 403);
  ASSERT_EQ(Call(*client, "GET", "sys/health", "").status, 200);

  Exposition after = Scrape(*client, root);
  auto delta = [&](const std::map<std::string, std::string>& labels) {
    return ValueOr0(after, "ward_http_requests_total", labels) -
           ValueOr0(before, "ward_http_requests_total", labels);
  };
  EXPECT_EQ(delta({{"route_class", "kv"}, {"code", "200"}}), 2);
  EXPECT_EQ(delta({{"route_class", "kv"}, {"code", "404"}}), 1);
  EXPECT_EQ(delta({{"route_class", "kv"}, {"code", "403"}}), 1);
  EXPECT_EQ(delta({{"route_class", "health"}, {"code", "200"}}), 1);
  // The first scrape itself was counted (sys, 200) once it finished.
  EXPECT_GE(ValueOr0(after, "ward_http_requests_total", {{"route_class", "sys"}, {"code", "200"}}),
            1);
  EXPECT_EQ(
      ValueOr0(after, "ward_http_request_duration_seconds_count", {{"route_class", "kv"}}) -
          ValueOr0(before, "ward_http_request_duration_seconds_count", {{"route_class", "kv"}}),
      4);
  // No raw path ever appears as a label value.
  for (const auto& s : after.samples) {
    for (const auto& [k, v] : s.labels) EXPECT_EQ(v.find("data/m"), std::string::npos) << s.name;
  }

  // JSON by default.
  Reply j = Call(*client, "GET", "sys/metrics", root);
  ASSERT_EQ(j.status, 200) << j.body;
  json::value jv = Parse(j.body);
  ASSERT_TRUE(jv.at("Counters").is_array());
  ASSERT_TRUE(jv.at("Gauges").is_array());
  ASSERT_TRUE(jv.at("Samples").is_array());
  bool saw_sealed = false;
  for (const auto& g : jv.at("Gauges").as_array()) {
    if (g.at("Name") == "ward_barrier_sealed") {
      saw_sealed = true;
      EXPECT_EQ(g.at("Value").to_number<double>(), 0);
    }
  }
  EXPECT_TRUE(saw_sealed) << j.body;
  EXPECT_EQ(Call(*client, "GET", "sys/metrics?format=xml", root).status, 400);

  // Without a token: 403. With a token whose policy lacks read on sys/metrics: 403; with it: 200.
  EXPECT_EQ(Call(*client, "GET", "sys/metrics?format=prometheus", "").status, 403);
  ASSERT_EQ(Call(*client, "PUT", "sys/policies/acl/scraper", root,
                 R"({"policy":"path \"sys/metrics\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  ASSERT_EQ(Call(*client, "PUT", "sys/policies/acl/other", root,
                 R"({"policy":"path \"secret/*\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  auto token_with = [&](const std::string& policy) {
    Reply t =
        Call(*client, "PUT", "auth/token/create", root, R"({"policies":[")" + policy + R"("]})");
    EXPECT_EQ(t.status, 200) << t.body;
    return std::string(Parse(t.body).at("auth").at("client_token").as_string());
  };
  EXPECT_EQ(Call(*client, "GET", "sys/metrics?format=prometheus", token_with("other")).status, 403);
  Scrape(*client, token_with("scraper"));
}

TEST(MetricsDevTest, AuditDeviceMetricsCountRecordsAndBatches) {
  core::TempDir dir;
  auto server = WardProcess::StartDev(dir.Join("data"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  ASSERT_NE(client, nullptr);
  const std::string root = (*server)->root_token();
  const std::string enable =
      json::serialize(json::object{{"type", "file"},
                                   {"options", json::object{{"file_path", dir.Join("audit.log")}}}});
  ASSERT_EQ(Call(*client, "PUT", "sys/audit/file", root, enable).status, 204);
  ASSERT_EQ(Call(*client, "PUT", "secret/data/m", root, R"({"data":{"a":"b"}})").status, 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Call(*client, "GET", "secret/data/m", root).status, 200);

  Exposition after = Scrape(*client, root);
  EXPECT_EQ(after.type.at("ward_audit_batches_total"), "counter");
  EXPECT_TRUE(after.help.count("ward_audit_batches_total"));
  // The write and five reads: two records each (the scrape's own records may follow).
  const double records = ValueOr0(after, "ward_audit_records_total", {{"device", "file/"}});
  const double batches = ValueOr0(after, "ward_audit_batches_total", {{"device", "file/"}});
  EXPECT_GE(records, 12);
  // One client, one request at a time: at least one batch per request (a read's two records
  // share a batch), never more batches than records.
  EXPECT_GE(batches, 6);
  EXPECT_LE(batches, records);
  EXPECT_EQ(after.Value("ward_audit_write_failures_total", {{"device", "file/"}}), 0);
  EXPECT_EQ(after.Value("ward_audit_queued_records", {{"device", "file/"}}), 0);
}

TEST(MetricsDevTest, StorageBarrierTokenAndPkiMetricsMove) {
  core::TempDir dir;
  auto server = WardProcess::StartDev(dir.Join("data"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  ASSERT_NE(client, nullptr);
  const std::string root = (*server)->root_token();

  Exposition before = Scrape(*client, root);
  for (const char* family :
       {"ward_storage_operation_duration_seconds", "ward_pki_issue_duration_seconds"}) {
    EXPECT_EQ(before.type.at(family), "histogram") << family;
  }
  for (const char* family :
       {"ward_storage_operation_errors_total", "ward_barrier_operations_total",
        "ward_barrier_operation_failures_total", "ward_pki_certificates_issued_total",
        "ward_pki_certificates_revoked_total"}) {
    EXPECT_EQ(before.type.at(family), "counter") << family;
  }
  for (const char* family : {"ward_token_count_by_auth", "ward_pki_issuer_expiry_seconds"}) {
    EXPECT_EQ(before.type.at(family), "gauge") << family;
  }
  // Unsealing read the keyring and created the token store's key: storage was used already.
  EXPECT_GT(ValueOr0(before, "ward_storage_operation_duration_seconds_count", {{"op", "get"}}), 0);
  EXPECT_GT(ValueOr0(before, "ward_barrier_operations_total", {{"op", "encrypt"}}), 0);
  EXPECT_EQ(before.Value("ward_storage_operation_errors_total", {{"op", "commit"}}), 0);
  EXPECT_EQ(before.Value("ward_barrier_operation_failures_total", {{"op", "decrypt"}}), 0);
  EXPECT_EQ(before.Value("ward_token_count_by_auth", {{"auth", "token"}}),
            before.Value("ward_token_count"));
  EXPECT_EQ(before.Value("ward_token_count_by_auth", {{"auth", "approle"}}), 0);

  ASSERT_EQ(Call(*client, "PUT", "secret/data/m", root, R"({"data":{"a":"b"}})").status, 200);
  ASSERT_EQ(Call(*client, "GET", "secret/data/m", root).status, 200);

  Exposition after_kv = Scrape(*client, root);
  auto moved = [](const Exposition& a, const Exposition& b, const std::string& name,
                  const std::map<std::string, std::string>& labels) {
    return ValueOr0(b, name, labels) - ValueOr0(a, name, labels);
  };
  EXPECT_GE(
      moved(before, after_kv, "ward_storage_operation_duration_seconds_count", {{"op", "commit"}}),
      1);
  EXPECT_GT(
      moved(before, after_kv, "ward_storage_operation_duration_seconds_sum", {{"op", "commit"}}),
      0);
  EXPECT_GE(moved(before, after_kv, "ward_barrier_operations_total", {{"op", "encrypt"}}), 1);
  EXPECT_GE(moved(before, after_kv, "ward_barrier_operations_total", {{"op", "decrypt"}}), 1);
  EXPECT_EQ(moved(before, after_kv, "ward_storage_operation_errors_total", {{"op", "commit"}}), 0);

  // PKI: a mount's requests are class "pki"; issuing and revoking move its counters.
  ASSERT_EQ(Call(*client, "POST", "sys/mounts/pki-m", root, R"({"type":"pki"})").status, 204);
  Reply ca =
      Call(*client, "POST", "pki-m/root/generate/internal", root,
           R"({"common_name":"Metrics Root","uri_sans":"spiffe://example.org","ttl":"720h"})");
  ASSERT_EQ(ca.status, 200) << ca.body;
  const std::string issuer_id(Parse(ca.body).at("data").at("issuer_id").as_string());
  ASSERT_EQ(Call(*client, "POST", "pki-m/roles/web", root,
                 R"({"allowed_uri_sans":"spiffe://example.org/*","ttl":"1h"})")
                .status,
            200);
  Reply issued =
      Call(*client, "POST", "pki-m/issue/web", root, R"({"uri_sans":"spiffe://example.org/web"})");
  ASSERT_EQ(issued.status, 200) << issued.body;
  ASSERT_EQ(
      Call(*client, "POST", "pki-m/issue/web", root, R"({"uri_sans":"spiffe://example.org/api"})")
          .status,
      200);
  const std::string serial(Parse(issued.body).at("data").at("serial_number").as_string());
  ASSERT_EQ(Call(*client, "POST", "pki-m/revoke", root, R"({"serial_number":")" + serial + R"("})")
                .status,
            200);
  ASSERT_EQ(Call(*client, "POST", "pki-m/revoke", root, R"({"serial_number":")" + serial + R"("})")
                .status,
            200);  // a repeat is not a second revocation

  Exposition after_pki = Scrape(*client, root);
  EXPECT_EQ(after_pki.Value("ward_pki_certificates_issued_total", {{"mount", "pki-m/"}}), 2);
  EXPECT_EQ(after_pki.Value("ward_pki_certificates_revoked_total", {{"mount", "pki-m/"}}), 1);
  EXPECT_EQ(ValueOr0(after_pki, "ward_pki_issue_duration_seconds_count", {{"op", "issue"}}), 2);
  EXPECT_GT(ValueOr0(after_pki, "ward_pki_issue_duration_seconds_sum", {{"op", "issue"}}), 0);
  std::optional<double> expiry = after_pki.Value("ward_pki_issuer_expiry_seconds",
                                                 {{"mount", "pki-m/"}, {"issuer", issuer_id}});
  ASSERT_TRUE(expiry.has_value());
  EXPECT_GT(*expiry, 719 * 3600.0);
  EXPECT_LE(*expiry, 720 * 3600.0);
  EXPECT_EQ(
      ValueOr0(after_pki, "ward_http_requests_total", {{"route_class", "pki"}, {"code", "200"}}),
      6);
  // Mount paths are bounded labels; no request path, serial or token appears as a label value.
  for (const auto& s : after_pki.samples) {
    for (const auto& [k, v] : s.labels) {
      EXPECT_EQ(v.find("issue/web"), std::string::npos) << s.name;
      EXPECT_EQ(v.find(serial), std::string::npos) << s.name;
      EXPECT_EQ(v.find(root), std::string::npos) << s.name;
    }
  }

  // Tokens by issuing method: an AppRole login shows up under "approle".
  ASSERT_EQ(Call(*client, "POST", "sys/auth/approle", root, R"({"type":"approle"})").status, 204);
  ASSERT_EQ(
      Call(*client, "POST", "auth/approle/role/web", root, R"({"token_policies":["x"]})").status,
      204);
  Reply role_id = Call(*client, "GET", "auth/approle/role/web/role-id", root);
  Reply secret_id = Call(*client, "POST", "auth/approle/role/web/secret-id", root);
  json::object login{{"role_id", Parse(role_id.body).at("data").at("role_id")},
                     {"secret_id", Parse(secret_id.body).at("data").at("secret_id")}};
  ASSERT_EQ(Call(*client, "POST", "auth/approle/login", "", json::serialize(login)).status, 200);
  Exposition after_login = Scrape(*client, root);
  EXPECT_EQ(after_login.Value("ward_token_count_by_auth", {{"auth", "approle"}}), 1);
  EXPECT_EQ(ValueOr0(after_login, "ward_token_count_by_auth", {{"auth", "approle"}}) +
                ValueOr0(after_login, "ward_token_count_by_auth", {{"auth", "token"}}),
            ValueOr0(after_login, "ward_token_count"));
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(MetricsConfigTest, UnauthenticatedAccessOptionAllowsScrapesWithoutToken) {
  core::TempDir dir;
  std::string cert = dir.Join("cert.pem"), key = dir.Join("key.pem");
  ASSERT_EQ(WriteSelfSignedServerCert(cert, key), absl::OkStatus());
  WriteFile(
      dir.Join("ward.yaml"),
      "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " + cert + "\n  tls_key_file: " + key +
          "\n  unauthenticated_metrics_access: true\nstorage:\n  path: " + dir.Join("data") + "\n");
  auto server = WardProcess::StartWithConfig(dir.Join("ward.yaml"), dir.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client(cert);
  ASSERT_NE(client, nullptr);

  // Uninitialised, hence sealed: the scrape still answers and says so.
  Exposition sealed = Scrape(*client, "");
  EXPECT_EQ(sealed.Value("ward_barrier_sealed"), 1);
  EXPECT_EQ(sealed.Value("ward_token_count"), 0);

  Reply init = Call(*client, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
  ASSERT_EQ(init.status, 200) << init.body;
  json::value iv = Parse(init.body);
  Reply u = Call(*client, "PUT", "sys/unseal", "",
                 R"({"key":")" + std::string(iv.at("keys").at(0).as_string()) + R"("})");
  ASSERT_EQ(u.status, 200) << u.body;

  Exposition open = Scrape(*client, "");
  EXPECT_EQ(open.Value("ward_barrier_sealed"), 0);
  EXPECT_GE(ValueOr0(open, "ward_token_count"), 1);
  EXPECT_EQ(ValueOr0(open, "ward_http_requests_total", {{"route_class", "sys"}, {"code", "200"}}),
            3);
  // The option opens sys/metrics only.
  EXPECT_EQ(Call(*client, "GET", "sys/mounts", "").status, 403);
}

}  // namespace
}  // namespace ward::testing
