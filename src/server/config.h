#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ward::server {

// The most event loops a listener may be given (listener.event_loops).
inline constexpr int kMaxEventLoops = 1024;

// `listener:` in ward.yaml.
struct ListenerConfig {
  std::string address = "127.0.0.1:8200";  // host:port; port 0 picks a free port
  std::string tls_cert_file;               // required: PEM server certificate (chain)
  std::string tls_key_file;                // required: PEM private key
  size_t max_request_size = 32 * 1024 * 1024;  // bodies above this get 413
  absl::Duration read_timeout = absl::Seconds(30);  // headers + body of one request
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive connections
  // From accepting a connection to the end of its TLS handshake; slower clients are cut.
  absl::Duration tls_handshake_timeout = absl::Seconds(10);
  bool unauthenticated_metrics_access = false;  // GET sys/metrics without a token
  // Mutual TLS (docs/configuration.md). With a client CA file, clients are asked for a
  // certificate, which must chain to one of its CAs if presented.
  std::string tls_client_ca_file;        // PEM bundle of CAs trusted for client certificates
  bool tls_require_client_cert = false;  // true: no certificate, no connection
  std::string tls_crl_file;              // PEM or DER CRL(s) applied to client certificates
  // While unsealed, also trust the trust bundle of every PKI mount for client certificates
  // and apply its issuers' CRLs (docs/pki.md, "Listener trust"); refreshed within seconds.
  bool tls_trust_pki_mounts = true;
  // How often the shared session ticket key (stored in the barrier) is replaced.
  absl::Duration tls_ticket_key_rotation = absl::Hours(12);
  // How TLS sessions resume (docs/configuration.md, "Session resumption"). kNode: sessions are
  // kept in this process's memory (resumable on this node until it restarts; cheapest);
  // kTickets: stateless tickets under the shared ticket keys (resumable on every node sharing
  // the storage, and across restarts).
  enum class SessionResumption { kNode, kTickets };
  SessionResumption tls_session_resumption = SessionResumption::kNode;
  // kNode: at most this many sessions are kept (about 10 KB each with a client certificate,
  // 1.4 KB without).
  size_t tls_session_cache_size = 10000;
  // Event loops (threads) serving this listener's connections; 0 = one per CPU the process
  // may run on (its affinity mask: taskset, cpusets). Set it lower where Ward shares its CPUs
  // with other busy processes (docs/configuration.md).
  int event_loops = 0;
};

// `storage:` in ward.yaml.
struct StorageConfig {
  std::string path;  // required: directory holding ward.db (created 0700 if absent)
};

// `seal:` in ward.yaml. Only Shamir sealing exists today; shares/threshold are the defaults
// `ward operator init` proposes.
struct SealConfig {
  std::string type = "shamir";
};

// One entry of `audit:` in ward.yaml: an audit device enabled on every unseal if no device is
// enabled at `path` yet (docs/audit.md, "Devices from the config file").
struct AuditDeviceConfig {
  std::string type;         // required: "file" (the only type)
  std::string path;         // required: where it is mounted, e.g. "file" (sys/audit/file)
  std::string description;  // optional
  // The device's options; for "file" only `file_path` (required, an absolute path).
  std::map<std::string, std::string> options;
};

// The whole server configuration (docs/configuration.md).
struct Config {
  ListenerConfig listener;
  StorageConfig storage;
  SealConfig seal;
  std::string log_level = "info";
  absl::Duration shutdown_grace = absl::Seconds(10);  // SIGTERM: drain in-flight requests this long
  // Process hardening (docs/security.md). true: do not mlockall, so keys may reach swap.
  bool disable_mlock = false;
  // true (default): no core files and no ptrace by other processes of the same user;
  // false: both allowed (debugging only: a core file of an unsealed server holds its keys).
  bool disable_core_dumps = true;
  // Audit devices to enable on unseal when missing (empty: none).
  std::vector<AuditDeviceConfig> audit;
};

// Parses and validates a YAML config document. Unknown keys are errors (a typo must not be
// silently ignored). Errors: kInvalidArgument with a message naming the offending field,
// e.g. "listener.tls_cert_file: required".
absl::StatusOr<Config> ParseConfig(std::string_view yaml_text);

// Reads `path` and parses it. Errors: kNotFound/kPermissionDenied reading the file, otherwise
// as ParseConfig.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Splits "host:port" ("[::1]:8200" for IPv6). Errors: kInvalidArgument naming `field`.
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view address,
                                                              std::string_view field);

}  // namespace ward::server
