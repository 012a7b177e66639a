#include "metrics/registry.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/testing/prometheus_parser.h"

namespace ward::metrics {
namespace {

using ::testing::HasSubstr;
using testing::ParsePrometheusText;

TEST(RegistryTest, CounterGaugeAndHistogramRenderAndParseBack) {
  Registry r;
  auto& requests =
      r.AddCounter("ward_http_requests_total", "HTTP requests.", {"route_class", "code"});
  auto& sealed = r.AddGauge("ward_barrier_sealed", "1 if sealed.");
  auto& latency = r.AddHistogram("ward_http_request_duration_seconds", "Latency.", {"route_class"},
                                 {0.01, 0.1, 1});
  requests.WithLabels({"kv", "200"}).Inc();
  requests.WithLabels({"kv", "200"}).Inc(2);
  requests.WithLabels({"sys", "403"}).Inc();
  sealed.WithLabels({}).Set(1);
  auto& h = latency.WithLabels({"kv"});
  h.Observe(0.005);
  h.Observe(0.05);
  h.Observe(0.05);
  h.Observe(7);

  std::string text = r.RenderPrometheus();
  auto parsed = ParsePrometheusText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_EQ(parsed->type.at("ward_http_requests_total"), "counter");
  EXPECT_EQ(parsed->type.at("ward_barrier_sealed"), "gauge");
  EXPECT_EQ(parsed->type.at("ward_http_request_duration_seconds"), "histogram");
  EXPECT_EQ(parsed->Value("ward_http_requests_total", {{"route_class", "kv"}, {"code", "200"}}), 3);
  EXPECT_EQ(parsed->Value("ward_http_requests_total", {{"route_class", "sys"}, {"code", "403"}}),
            1);
  EXPECT_EQ(parsed->Value("ward_barrier_sealed"), 1);
  EXPECT_EQ(parsed->Value("ward_http_request_duration_seconds_bucket", {{"le", "0.01"}}), 1);
  EXPECT_EQ(parsed->Value("ward_http_request_duration_seconds_bucket", {{"le", "0.1"}}), 3);
  EXPECT_EQ(parsed->Value("ward_http_request_duration_seconds_bucket", {{"le", "1"}}), 3);
  EXPECT_EQ(parsed->Value("ward_http_request_duration_seconds_bucket", {{"le", "+Inf"}}), 4);
  EXPECT_EQ(parsed->Value("ward_http_request_duration_seconds_count", {{"route_class", "kv"}}), 4);
  EXPECT_DOUBLE_EQ(*parsed->Value("ward_http_request_duration_seconds_sum"), 7.105);
  EXPECT_THAT(text, HasSubstr("# HELP ward_http_requests_total HTTP requests.\n"
                              "# TYPE ward_http_requests_total counter\n"));
}

TEST(RegistryTest, FamilyWithoutSeriesStillHasHelpAndType) {
  Registry r;
  r.AddCounter("ward_quota_rejections_total", "Rejected.");
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP ward_quota_rejections_total Rejected.\n"
            "# TYPE ward_quota_rejections_total counter\n");
}

TEST(RegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  auto& c = r.AddCounter("ward_test_total", "line1\nback\\slash", {"device"});
  c.WithLabels({"a\"b\\c\nd"}).Inc();
  std::string text = r.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# HELP ward_test_total line1\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("ward_test_total{device=\"a\\\"b\\\\c\\nd\"} 1\n"));
  auto parsed = ParsePrometheusText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->samples.at(0).labels.at("device"), "a\"b\\c\nd");
}

TEST(RegistryTest, SeriesBeyondMaxFoldIntoOverflow) {
  Registry r;
  auto& c = r.AddCounter("ward_test_total", "t", {"k"}, /*max_series=*/2);
  c.WithLabels({"a"}).Inc();
  c.WithLabels({"b"}).Inc();
  c.WithLabels({"c"}).Inc();
  c.WithLabels({"d"}).Inc();
  c.WithLabels({"a"}).Inc();
  auto parsed = ParsePrometheusText(r.RenderPrometheus());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->samples.size(), 3u);
  EXPECT_EQ(parsed->Value("ward_test_total", {{"k", "a"}}), 2);
  EXPECT_EQ(parsed->Value("ward_test_total", {{"k", std::string(kOverflowLabel)}}), 2);
  EXPECT_EQ(parsed->Value("ward_test_total", {{"k", "c"}}), std::nullopt);
}

TEST(RegistryTest, ResetDropsSeries) {
  Registry r;
  auto& c = r.AddCounter("ward_audit_records_total", "t", {"device"});
  c.WithLabels({"file/"}).Set(10);
  c.Reset();
  c.WithLabels({"other/"}).Set(3);
  auto parsed = ParsePrometheusText(r.RenderPrometheus());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Value("ward_audit_records_total", {{"device", "file/"}}), std::nullopt);
  EXPECT_EQ(parsed->Value("ward_audit_records_total", {{"device", "other/"}}), 3);
}

TEST(RegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  auto& c = r.AddCounter("ward_test_total", "t", {"k"});
  auto& h = r.AddHistogram("ward_test_seconds", "t", {}, {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        c.WithLabels({std::to_string(i % 3)}).Inc();
        h.WithLabels({}).Observe(t % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto parsed = ParsePrometheusText(r.RenderPrometheus());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  double total = 0;
  for (const auto& s : parsed->samples) {
    if (s.name == "ward_test_total") total += s.value;
  }
  EXPECT_EQ(total, 4000);
  EXPECT_EQ(parsed->Value("ward_test_seconds_bucket", {{"le", "0.5"}}), 2000);
  EXPECT_EQ(parsed->Value("ward_test_seconds_count"), 4000);
  EXPECT_DOUBLE_EQ(*parsed->Value("ward_test_seconds_sum"), 2500);
}

TEST(RegistryTest, FormatValueUsesPrometheusSpellings) {
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.0025), "0.0025");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(RegistryDeathTest, InvalidNamesAbort) {
  Registry r;
  r.AddCounter("ward_ok_total", "ok");
  EXPECT_DEATH(r.AddCounter("ward_ok_total", "dup"), "duplicate");
  EXPECT_DEATH(r.AddCounter("ward-bad", "x"), "invalid metric name");
  EXPECT_DEATH(r.AddCounter("ward_x_total", ""), "no help");
  EXPECT_DEATH(r.AddCounter("ward_y_total", "x", {"le"}), "invalid label");
  EXPECT_DEATH(r.AddHistogram("ward_z_seconds", "x", {}, {1, 0.5}), "ascending");
}

// The parser itself must reject what Ward promises never to emit.
TEST(PrometheusParserTest, RejectsBrokenExpositions) {
  EXPECT_FALSE(ParsePrometheusText("ward_a_total 1\n").ok());  // no HELP/TYPE
  EXPECT_FALSE(ParsePrometheusText("# HELP Bad x\n# TYPE Bad counter\nBad 1\n").ok());
  EXPECT_FALSE(ParsePrometheusText("# HELP ward_h x\n# TYPE ward_h histogram\n"
                                   "ward_h_bucket{le=\"1\"} 2\nward_h_bucket{le=\"+Inf\"} 1\n"
                                   "ward_h_count 1\n")
                   .ok());  // not cumulative
  EXPECT_FALSE(ParsePrometheusText("# HELP ward_h x\n# TYPE ward_h histogram\n"
                                   "ward_h_bucket{le=\"+Inf\"} 2\nward_h_count 3\n")
                   .ok());  // +Inf != count
  EXPECT_FALSE(ParsePrometheusText("# HELP ward_h x\n# TYPE ward_h histogram\n"
                                   "ward_h_bucket{le=\"1\"} 2\nward_h_count 2\n")
                   .ok());  // no +Inf
  EXPECT_TRUE(ParsePrometheusText("# HELP ward_h x\n# TYPE ward_h histogram\n"
                                  "ward_h_bucket{le=\"1\"} 2\nward_h_bucket{le=\"+Inf\"} 2\n"
                                  "ward_h_sum 1\nward_h_count 2\n")
                  .ok());
}

}  // namespace
}  // namespace ward::metrics
