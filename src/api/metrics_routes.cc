// sys/metrics and the API layer's request metrics (docs/metrics.md).

#include <map>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/http_metrics.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/time_format.h"
#include "pki/engine.h"

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
      audit_batches(registry.AddCounter("ward_audit_batches_total",
                                        "Batch writes (one write(2) each) of each enabled audit "
                                        "device since it was opened; records / batches is the "
                                        "mean batch size.",
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
                                   {"version"}, 1)),
      barrier_operations(registry.AddCounter(
          "ward_barrier_operations_total",
          "Values the encryption barrier encrypted or decrypted since the process started, by "
          "operation.",
          {"op"}, 2)),
      barrier_failures(registry.AddCounter(
          "ward_barrier_operation_failures_total",
          "Barrier encryptions or decryptions that failed (a decryption failure is a value that "
          "did not authenticate), by operation.",
          {"op"}, 2)),
      tokens_by_auth(registry.AddGauge("ward_token_count_by_auth",
                                       "Tokens held by the token store, by the type of auth "
                                       "method that issued them (0 while sealed).",
                                       {"auth"}, 8)),
      pki_issued(registry.AddCounter("ward_pki_certificates_issued_total",
                                     "Certificates each PKI mount issued or signed since it was "
                                     "loaded (unseal or mount).",
                                     {"mount"}, 64)),
      pki_revoked(registry.AddCounter("ward_pki_certificates_revoked_total",
                                      "Certificates each PKI mount revoked since it was loaded "
                                      "(unseal or mount).",
                                      {"mount"}, 64)),
      pki_issue_duration(registry.AddHistogram(
          "ward_pki_issue_duration_seconds",
          "Time to issue (key generation included) or sign one certificate, by operation.", {"op"},
          metrics::DefaultLatencyBuckets(), 2)),
      pki_issuer_expiry(registry.AddGauge("ward_pki_issuer_expiry_seconds",
                                          "Seconds until each active or published PKI issuer's "
                                          "certificate expires (negative once expired).",
                                          {"mount", "issuer"}, 256)) {
  build_info.WithLabels({std::string(version)}).Set(1);
  quota_rejections.WithLabels({});  // exported as 0 from the start
  for (const char* op : {"encrypt", "decrypt"}) {
    barrier_operations.WithLabels({op});
    barrier_failures.WithLabels({op});
  }
  for (const char* op : {"issue", "sign"}) pki_issue_duration.WithLabels({op});
}

size_t RouteClassIndex(std::string_view path, const UnsealedState* state) {
  auto starts = [path](std::string_view prefix) { return path.substr(0, prefix.size()) == prefix; };
  if (starts("sys/health") || starts("sys/seal-status")) return 0;  // health
  if (starts("sys/polic") || starts("sys/capabilities")) return 1;  // policy
  if (starts("sys/audit")) return 2;                                  // audit
  if (starts("sys/")) return 3;                                       // sys
  if (starts("auth/token/")) return 4;                                // token
  if (starts("auth/")) return 5;                                      // auth
  if (state != nullptr) {
    if (std::optional<MountMatch> mount = state->mounts->Find(path)) {
      return mount->pki != nullptr ? 6 : 7;  // pki, kv
    }
  }
  return 8;  // other
}

std::string_view RouteClass(std::string_view path, const UnsealedState* state) {
  return kRouteClasses[RouteClassIndex(path, state)];
}

std::string_view TokenAuthType(std::string_view token_path, const auth::AuthMountTable& mounts) {
  constexpr std::string_view kAuth = "auth/";
  if (token_path.substr(0, kAuth.size()) != kAuth) return "other";
  std::string_view under = token_path.substr(kAuth.size());
  if (under.substr(0, 6) == "token/") return "token";
  if (mounts.FindAppRole(under)) return "approle";
  if (mounts.FindCert(under)) return "cert";
  return "other";
}

void RecordRequest(HttpMetrics& m, std::string_view path, const UnsealedState* state, int status,
                   absl::Duration elapsed) {
  const size_t route = RouteClassIndex(path, state);
  const std::string_view route_class = kRouteClasses[route];
  metrics::Counter* requests = nullptr;
  std::atomic<metrics::Counter*>* remembered = nullptr;
  if (status >= 100 && status < 600) {
    remembered = &m.request_series[route][static_cast<size_t>(status - 100)];
    requests = remembered->load(std::memory_order_acquire);
  }
  if (requests == nullptr) {
    requests = &m.requests.WithLabels({std::string(route_class), std::to_string(status)});
    if (remembered != nullptr) remembered->store(requests, std::memory_order_release);
  }
  requests->Inc();
  metrics::Histogram* duration = m.duration_series[route].load(std::memory_order_acquire);
  if (duration == nullptr) {
    duration = &m.duration.WithLabels({std::string(route_class)});
    m.duration_series[route].store(duration, std::memory_order_release);
  }
  duration->Observe(absl::ToDoubleSeconds(elapsed));
}

void RefreshNodeMetrics(HttpMetrics& m, Core& core, const UnsealedState* state, absl::Time now) {
  m.sealed.WithLabels({}).Set(state == nullptr ? 1 : 0);
  m.tokens.WithLabels({}).Set(state == nullptr ? 0 : static_cast<double>(state->tokens->Count()));
  const barrier::OperationCounts ops = core.barrier().Counts();
  m.barrier_operations.WithLabels({"encrypt"}).Set(ops.encryptions);
  m.barrier_operations.WithLabels({"decrypt"}).Set(ops.decryptions);
  m.barrier_failures.WithLabels({"encrypt"}).Set(ops.encryption_failures);
  m.barrier_failures.WithLabels({"decrypt"}).Set(ops.decryption_failures);
  m.tokens_by_auth.Reset();
  m.audit_records.Reset();
  m.audit_batches.Reset();
  m.audit_failures.Reset();
  m.audit_queued.Reset();
  m.pki_issued.Reset();
  m.pki_revoked.Reset();
  m.pki_issuer_expiry.Reset();
  for (const char* type : {"token", "approle", "cert"}) m.tokens_by_auth.WithLabels({type}).Set(0);
  if (state == nullptr) return;

  std::map<std::string_view, double> by_auth;
  for (const auto& [path, count] : state->tokens->CountByPath()) {
    by_auth[TokenAuthType(path, *state->auth_mounts)] += static_cast<double>(count);
  }
  for (const auto& [type, count] : by_auth) {
    m.tokens_by_auth.WithLabels({std::string(type)}).Set(count);
  }

  for (const MountEntry& entry : state->mounts->List()) {
    if (entry.type != "pki") continue;
    std::optional<MountMatch> mount = state->mounts->Find(entry.path);
    if (!mount || mount->pki == nullptr) continue;  // unmounted meanwhile
    const pki::PkiEngine::Stats stats = mount->pki->GetStats();
    m.pki_issued.WithLabels({entry.path}).Set(stats.certificates_issued);
    m.pki_revoked.WithLabels({entry.path}).Set(stats.certificates_revoked);
    for (const pki::IssuerInfo& issuer : mount->pki->ListIssuers()) {
      if (issuer.state != pki::IssuerState::kActive &&
          issuer.state != pki::IssuerState::kPublished) {
        continue;  // pending: no certificate yet; retired: no longer trusted
      }
      m.pki_issuer_expiry.WithLabels({entry.path, issuer.issuer_id})
          .Set(absl::ToDoubleSeconds(issuer.not_after - now));
    }
  }

  if (state->audit == nullptr) return;
  for (const auto& device : *state->audit->Snapshot()) {
    if (device == nullptr || device->file == nullptr) continue;
    audit::FileDevice::Stats stats = device->file->GetStats();
    m.audit_records.WithLabels({device->info.path}).Set(stats.records);
    m.audit_batches.WithLabels({device->info.path}).Set(stats.batches);
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

// ---- TLS listener metrics (owner: wire) ---------------------------------------------------
// Built per scrape into `registry` from HandlerOptions::listener_counters, so the listener's
// families need no field in HttpMetrics (docs/metrics.md).
void FillListenerMetrics(metrics::Registry& registry, const ListenerCounters& c, absl::Time now) {
  auto& handshakes = registry.AddCounter(
      "ward_tls_handshakes_total",
      "TLS handshakes the listener completed, by kind: full, or resumed (a cached session or "
      "a ticket).",
      {"kind"}, 2);
  handshakes.WithLabels({"full"}).Set(c.handshakes_full);
  handshakes.WithLabels({"resumed"}).Set(c.handshakes_resumed);
  if (c.session_cache) {
    auto gauge = [&registry](std::string name, std::string help, uint64_t value) {
      registry.AddGauge(std::move(name), std::move(help), {}, 1)
          .WithLabels({})
          .Set(static_cast<double>(value));
    };
    gauge("ward_tls_session_cache_sessions",
          "TLS sessions held by the listener's session cache (tls_session_resumption: node).",
          c.session_cache_size);
    gauge("ward_tls_session_cache_capacity",
          "Most sessions the listener's session cache holds (tls_session_cache_size).",
          c.session_cache_capacity);
    auto& lookups = registry.AddCounter(
        "ward_tls_session_cache_lookups_total",
        "Sessions clients offered to the session cache, by result: hit (found) or miss (unknown, "
        "expired or dropped: a full handshake follows).",
        {"result"}, 2);
    lookups.WithLabels({"hit"}).Set(c.session_cache_hits);
    lookups.WithLabels({"miss"}).Set(c.session_cache_misses);
    registry
        .AddCounter("ward_tls_session_cache_evictions_total",
                    "Sessions the session cache dropped to stay within its capacity.", {}, 1)
        .WithLabels({})
        .Set(c.session_cache_evicted);
  }
  auto& failures = registry.AddCounter(
      "ward_tls_client_cert_failures_total",
      "TLS handshakes refused because of the client certificate, by reason: expired (or not yet "
      "valid), revoked (by a CRL), untrusted (no chain to a trusted CA) or other.",
      {"reason"}, 4);
  failures.WithLabels({"expired"}).Set(c.client_cert_expired);
  failures.WithLabels({"revoked"}).Set(c.client_cert_revoked);
  failures.WithLabels({"untrusted"}).Set(c.client_cert_untrusted);
  failures.WithLabels({"other"}).Set(c.client_cert_other);
  if (c.server_cert_not_after != absl::InfinitePast()) {
    registry
        .AddGauge("ward_tls_certificate_expiry_seconds",
                  "Seconds until the notAfter of the listener's server certificate (negative once "
                  "expired).")
        .WithLabels({})
        .Set(absl::ToDoubleSeconds(c.server_cert_not_after - now));
  }
}

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
    internal::RefreshNodeMetrics(*metrics_, core_, state.get(), clock_.Now());
    metrics::Registry listener;  // the TLS listener's families (wire)
    if (options_.listener_counters) {
      internal::FillListenerMetrics(listener, options_.listener_counters(), clock_.Now());
    }
    // The API layer's families, then the node's (storage), which Core keeps across handlers.
    if (format == "prometheus") {
      net::HttpResponse r;
      r.status = 200;
      r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.body = metrics_->registry.RenderPrometheus() + core_.metrics().RenderPrometheus() +
               listener.RenderPrometheus();
      return r;
    }
    families = metrics_->registry.Snapshot();
    for (metrics::FamilySnapshot& f : core_.metrics().Snapshot()) families.push_back(std::move(f));
    for (metrics::FamilySnapshot& f : listener.Snapshot()) families.push_back(std::move(f));
  }
  return internal::JsonResponse(200, internal::MetricsJson(families, clock_.Now()));
}

}  // namespace ward::api
