#pragma once

// The API layer's metrics (docs/metrics.md). Private to src/api.

#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/core.h"
#include "metrics/registry.h"

namespace ward::api::internal {

// The registry and its families, owned by one VaultHandler. Thread-safe: recording is lock-free
// once a series exists; scrapes are serialised by scrape_mu (they refresh the gauges that
// mirror node state before rendering).
struct HttpMetrics {
  explicit HttpMetrics(std::string_view version);

  metrics::Registry registry;
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Histogram>& duration;
  metrics::Family<metrics::Gauge>& sealed;
  metrics::Family<metrics::Gauge>& tokens;
  metrics::Family<metrics::Counter>& audit_records;
  metrics::Family<metrics::Counter>& audit_failures;
  metrics::Family<metrics::Gauge>& audit_queued;
  metrics::Family<metrics::Counter>& quota_rejections;
  metrics::Family<metrics::Gauge>& build_info;
  absl::Mutex scrape_mu;
};

// The bounded class of a request path (after "/v1/"): kv, token, sys, auth, policy, audit,
// health or other. Never the raw path. `state` may be null (sealed): then mount paths are
// "other".
std::string_view RouteClass(std::string_view path, const UnsealedState* state);

// Counts one finished request.
void RecordRequest(HttpMetrics& m, std::string_view path, const UnsealedState* state, int status,
                   absl::Duration elapsed);

// Refreshes the gauges and audit counters that mirror node state (sealed, token count, audit
// device stats). `state` is null while sealed.
void RefreshNodeMetrics(HttpMetrics& m, const UnsealedState* state)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.scrape_mu);

}  // namespace ward::api::internal
