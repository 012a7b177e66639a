// sys/metrics and the API layer's request metrics (docs/metrics.md).

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/http_metrics.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/time_format.h"

namespace ward::api {
namespace internal {

HttpMetrics::HttpMetrics(std::string_view version)
    : requests(registry.AddCounter("ward_http_requests_total",
                                   "HTTP API requests served, by route class and status code.",
                                   {"route_class", "code"})),
      duration(registry.AddHistogram("ward_http_request_duration_seconds",
                                     "Time to serve an HTTP API request, by route class.",
                                     {"route_class"}, metrics::DefaultLatencyBuckets())),
      sealed(registry.AddGauge("ward_barrier_sealed", "1 while the node is sealed, else 0.")),
      tokens(registry.AddGauge("ward_token_count",
                               "Tokens held by the token store (expired, unrevoked included).")),
      audit_records(registry.AddCounter("ward_audit_records_total",
                                        "Records written by each enabled audit device since it "
                                        "was opened.",
                                        {"device"}, 64)),
      audit_failures(registry.AddCounter("ward_audit_write_failures_total",
                                         "Failed batch writes of each enabled audit device since "
                                         "it was opened.",
                                         {"device"}, 64)),
      audit_queued(registry.AddGauge("ward_audit_queued_records",
                                     "Records waiting for each audit device's writer.", {"device"},
                                     64)),
      quota_rejections(registry.AddCounter("ward_quota_rejections_total",
                                           "Requests rejected by a rate-limit quota.")),
      build_info(registry.AddGauge("ward_build_info", "Always 1; labelled with the version.",
                                   {"version"}, 1)) {
  build_info.WithLabels({std::string(version)}).Set(1);
  quota_rejections.WithLabels({});  // exported as 0 from the start
}

std::string_view RouteClass(std::string_view path, const UnsealedState* state) {
  auto starts = [path](std::string_view prefix) { return path.substr(0, prefix.size()) == prefix; };
  if (starts("sys/health") || starts("sys/seal-status")) return "health";
  if (starts("sys/polic") || starts("sys/capabilities")) return "policy";
  if (starts("sys/audit")) return "audit";
  if (starts("sys/")) return "sys";
  if (starts("auth/token/")) return "token";
  if (starts("auth/")) return "auth";
  if (state != nullptr && state->mounts->Find(std::string(path))) return "kv";
  return "other";
}

void RecordRequest(HttpMetrics& m, std::string_view path, const UnsealedState* state, int status,
                   absl::Duration elapsed) {
  std::string route_class(RouteClass(path, state));
  m.requests.WithLabels({route_class, std::to_string(status)}).Inc();
  m.duration.WithLabels({route_class}).Observe(absl::ToDoubleSeconds(elapsed));
}

void RefreshNodeMetrics(HttpMetrics& m, const UnsealedState* state) {
  m.sealed.WithLabels({}).Set(state == nullptr ? 1 : 0);
  m.tokens.WithLabels({}).Set(state == nullptr ? 0 : static_cast<double>(state->tokens->Count()));
  m.audit_records.Reset();
  m.audit_failures.Reset();
  m.audit_queued.Reset();
  if (state == nullptr || state->audit == nullptr) return;
  for (const auto& device : *state->audit->Snapshot()) {
    if (device == nullptr || device->file == nullptr) continue;
    audit::FileDevice::Stats stats = device->file->GetStats();
    m.audit_records.WithLabels({device->info.path}).Set(stats.records);
    m.audit_failures.WithLabels({device->info.path}).Set(stats.failures);
    m.audit_queued.WithLabels({device->info.path}).Set(static_cast<double>(stats.queued));
  }
}

namespace {

json::object LabelsJson(const metrics::FamilySnapshot& f, const metrics::SeriesSnapshot& s) {
  json::object labels;
  for (size_t i = 0; i < f.label_names.size(); ++i) labels[f.label_names[i]] = s.label_values[i];
  return labels;
}

// Vault's default (JSON) shape: Gauges, Counters and Samples (histograms) arrays.
json::object MetricsJson(const std::vector<metrics::FamilySnapshot>& families, absl::Time now) {
  json::array gauges, counters, samples;
  for (const auto& f : families) {
    for (const auto& s : f.series) {
      json::object o{{"Name", f.name}, {"Labels", LabelsJson(f, s)}};
      switch (f.type) {
        case metrics::Type::kGauge:
          o["Value"] = s.value;
          gauges.push_back(std::move(o));
          break;
        case metrics::Type::kCounter:
          o["Count"] = s.value;
          counters.push_back(std::move(o));
          break;
        case metrics::Type::kHistogram: {
          o["Count"] = s.count;
          o["Sum"] = s.sum;
          o["Mean"] = s.count == 0 ? 0.0 : s.sum / static_cast<double>(s.count);
          json::object buckets;
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            buckets[i < f.bounds.size() ? metrics::FormatValue(f.bounds[i]) : "+Inf"] =
                s.cumulative[i];
          }
          o["Buckets"] = std::move(buckets);
          samples.push_back(std::move(o));
          break;
        }
      }
    }
  }
  return json::object{{"Timestamp", core::FormatRfc3339Nanos(now)},
                      {"Gauges", std::move(gauges)},
                      {"Counters", std::move(counters)},
                      {"Samples", std::move(samples)}};
}

}  // namespace
}  // namespace internal

net::HttpResponse VaultHandler::HandleMetrics(internal::Request& req) {
  if (req.method != "GET") return internal::ErrorResponse(405, "unsupported operation");
  std::string format = req.Query("format");
  if (!format.empty() && format != "prometheus") {
    return internal::ErrorResponse(400,
                                   absl::StrCat("unsupported metrics format \"", format, "\""));
  }
  std::shared_ptr<const UnsealedState> state = core_.State();
  std::vector<metrics::FamilySnapshot> families;
  {
    absl::MutexLock lock(&metrics_->scrape_mu);
    internal::RefreshNodeMetrics(*metrics_, state.get());
    if (format == "prometheus") {
      net::HttpResponse r;
      r.status = 200;
      r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.body = metrics_->registry.RenderPrometheus();
      return r;
    }
    families = metrics_->registry.Snapshot();
  }
  return internal::JsonResponse(200, internal::MetricsJson(families, clock_.Now()));
}

}  // namespace ward::api
