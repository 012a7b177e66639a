// The `ward` binary: `ward server` runs the server; every other command is a client.

#include <signal.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "server/config.h"
#include "server/server.h"

int main(int argc, char** argv) {
  // Writes to a closed socket or pipe must fail with EPIPE, not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
#ifdef NDEBUG
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a graph update per
  // lock), which costs the read path several percent. Debug builds, which run the tests, keep
  // the check; release builds skip it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"Ward: secrets, service identity and migration routing"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ward 0.1.0");

  ward::server::DevOptions dev;
  bool dev_mode = false;
  std::string config_path;
  CLI::App* server = app.add_subcommand("server", "Run a Ward server");
  server->add_flag("--dev", dev_mode, "Development mode: in-process storage, auto-unsealed, dev TLS");
  server->add_option("--config", config_path, "Path to ward.yaml (production mode)");
  server->add_option("--dev-root-token-id", dev.root_token_id, "Root token value in dev mode");
  server->add_option("--dev-listen-address", dev.listen_address, "host:port for the dev listener")
      ->capture_default_str();
  server->add_option("--dev-tls-cert-dir", dev.tls_cert_dir, "Where the dev CA and server cert go");
  server->add_option("--dev-data-dir", dev.data_dir, "Persistent dev data dir (default: temporary)");
  server->add_option("--dev-event-loops", dev.event_loops,
                     "Event loops (threads) serving connections in dev mode; default one per CPU")
      ->check(CLI::Range(1, ward::server::kMaxEventLoops));
  server->add_option("--log-level", dev.log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  int server_rc = 0;
  server->callback([&]() {
    if (dev_mode == !config_path.empty()) {
      std::cerr << "Error: give exactly one of --dev or --config FILE\n";
      server_rc = 1;
      return;
    }
    absl::Status status;
    if (dev_mode) {
      status = ward::server::RunDevServer(dev);
    } else {
      auto config = ward::server::LoadConfigFile(config_path);
      if (!config.ok()) {
        std::cerr << "Error in config " << config_path << ": " << config.status().message() << "\n";
        server_rc = 1;
        return;
      }
      status = ward::server::RunServer(*config);
    }
    if (!status.ok()) {
      std::cerr << "Error: " << status.message() << "\n";
      server_rc = 1;
    }
  });

  ward::cli::Commands commands(app);
  std::vector<std::string> args = ward::cli::NormaliseFlags(argc, argv);
  std::vector<char*> ptrs;
  for (std::string& a : args) ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return server_rc != 0 ? server_rc : commands.ExitCode();
}
