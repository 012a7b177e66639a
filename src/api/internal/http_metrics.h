#pragma once

// The API layer's metrics (docs/metrics.md). Private to src/api.

#include <array>
#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/core.h"
#include "metrics/registry.h"

namespace ward::api::internal {

// The route classes of RouteClass, by RouteClassIndex.
inline constexpr std::array<std::string_view, 9> kRouteClasses = {
    "health", "policy", "audit", "sys", "token", "auth", "pki", "kv", "other"};

// The registry and its families, owned by one VaultHandler. Thread-safe: a request is recorded
// without a lock once its series exist (RecordRequest remembers them); scrapes are serialised
// by scrape_mu (they refresh the gauges that mirror node state before rendering).
struct HttpMetrics {
  explicit HttpMetrics(std::string_view version);

  metrics::Registry registry;
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Histogram>& duration;
  metrics::Family<metrics::Gauge>& sealed;
  metrics::Family<metrics::Gauge>& tokens;
  metrics::Family<metrics::Counter>& audit_records;
  metrics::Family<metrics::Counter>& audit_batches;
  metrics::Family<metrics::Counter>& audit_failures;
  metrics::Family<metrics::Gauge>& audit_queued;
  metrics::Family<metrics::Counter>& quota_rejections;
  metrics::Family<metrics::Gauge>& build_info;
  // Mirrored from barrier::Barrier::Counts() at each scrape.
  metrics::Family<metrics::Counter>& barrier_operations;
  metrics::Family<metrics::Counter>& barrier_failures;
  // Tokens by the type of the auth method that issued them; refreshed at each scrape.
  metrics::Family<metrics::Gauge>& tokens_by_auth;
  // Mirrored from each PKI mount's PkiEngine::GetStats() at each scrape.
  metrics::Family<metrics::Counter>& pki_issued;
  metrics::Family<metrics::Counter>& pki_revoked;
  // Recorded by pki_routes.cc for every successful issue or sign.
  metrics::Family<metrics::Histogram>& pki_issue_duration;
  // Seconds until each issuer's notAfter, refreshed at each scrape.
  metrics::Family<metrics::Gauge>& pki_issuer_expiry;
  absl::Mutex scrape_mu;

  // The series of `requests` by route class index and status code - 100, and of `duration` by
  // route class index, each looked up in its family once (nullptr until then): the family's
  // lookup builds a label tuple and takes its lock. Valid as long as the families: these two
  // are never Reset.
  std::array<std::array<std::atomic<metrics::Counter*>, 500>, kRouteClasses.size()>
      request_series{};
  std::array<std::atomic<metrics::Histogram*>, kRouteClasses.size()> duration_series{};
};

// The bounded class of a request path (after "/v1/"): kv, pki, token, sys, auth, policy, audit,
// health or other. Never the raw path. `state` may be null (sealed): then mount paths are
// "other".
std::string_view RouteClass(std::string_view path, const UnsealedState* state);
// RouteClass as an index into kRouteClasses.
size_t RouteClassIndex(std::string_view path, const UnsealedState* state);

// Counts one finished request.
void RecordRequest(HttpMetrics& m, std::string_view path, const UnsealedState* state, int status,
                   absl::Duration elapsed);

// The type of the auth method that issued a token whose TokenEntry::path is `token_path`:
// "token" (auth/token/...), "approle" or "cert" (a login route of such a mount), or "other"
// (e.g. a mount disabled since).
std::string_view TokenAuthType(std::string_view token_path, const auth::AuthMountTable& mounts);

// Refreshes the series that mirror node state at scrape time `now`: sealed, token counts,
// audit device stats, barrier operation counts (from `core`, also while sealed), PKI counts
// and issuer expiry. `state` is null while sealed.
void RefreshNodeMetrics(HttpMetrics& m, Core& core, const UnsealedState* state, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.scrape_mu);

}  // namespace ward::api::internal
