#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "server/config.h"

namespace ward::server {

// `ward server --dev` settings (flag names in parentheses).
struct DevOptions {
  std::string root_token_id;                   // --dev-root-token-id; "" = generate
  std::string listen_address = "127.0.0.1:8200";  // --dev-listen-address
  std::string tls_cert_dir;                    // --dev-tls-cert-dir; "" = <data dir>/tls
  std::string data_dir;                        // --dev-data-dir; "" = a temporary dir, removed at exit
  std::string log_level = "info";
  int event_loops = 0;  // --dev-event-loops; 0 = one per usable CPU (listener.event_loops)
};

// Runs a dev server until SIGTERM/SIGINT: SQLite storage in the data dir, initialised with a
// single unseal key kept beside the database (dev only!), unsealed, TLS with a freshly
// generated dev CA, and the root token and export lines printed on stdout.
// Returns when the server has drained and stopped. Errors: anything that prevents starting.
absl::Status RunDevServer(const DevOptions& options);

// Runs a production server from a validated config until SIGTERM/SIGINT. The server starts
// sealed (or uninitialised); operators use `ward operator init/unseal`.
absl::Status RunServer(const Config& config);

}  // namespace ward::server
