#pragma once

// Starts the real `ward` binary for integration tests and talks to it over HTTPS.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/http_client.h"

namespace ward::testing {

// Path of the ward binary under test (set by CMake).
std::string WardBinary();

// A running `ward server` child process. Stops it (SIGTERM, then SIGKILL) on destruction.
class WardProcess {
 public:
  // Starts `ward server --dev --dev-listen-address=127.0.0.1:0 --dev-data-dir=<data_dir>` plus
  // `extra_args`, and waits (up to 60 s) for the banner. Errors: kUnavailable if the process
  // exits or prints no banner in time (its log is included in the message).
  static absl::StatusOr<std::unique_ptr<WardProcess>> StartDev(
      const std::string& data_dir, const std::vector<std::string>& extra_args = {});

  // Starts `ward server --config <config_path>` and waits for the "listening on" line.
  static absl::StatusOr<std::unique_ptr<WardProcess>> StartWithConfig(const std::string& config_path,
                                                                      const std::string& log_path);

  ~WardProcess();

  const std::string& addr() const { return addr_; }      // https://127.0.0.1:PORT
  const std::string& ca_cert() const { return ca_cert_; }  // dev CA file ("" for config mode)
  const std::string& root_token() const { return root_token_; }
  int pid() const { return pid_; }

  // Sends SIGTERM and waits; returns the exit status (as from waitpid's WEXITSTATUS, or 128+sig).
  int Terminate();
  // Sends SIGKILL and reaps the process.
  void Kill();
  // The server's log so far (stderr).
  std::string Log() const;

  // A new HTTPS client for this server (trusting `ca_file`, default: the dev CA).
  std::unique_ptr<net::HttpClient> Client(const std::string& ca_file = "") const;

 private:
  WardProcess() = default;
  static absl::StatusOr<std::unique_ptr<WardProcess>> Spawn(const std::vector<std::string>& args,
                                                            const std::string& log_path,
                                                            bool dev);
  int pid_ = -1;
  std::string log_path_;
  std::string addr_, ca_cert_, root_token_;
};

// One HTTP exchange with a JSON body, for terse tests.
struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
};

// Sends `method` to /v1/<path> with X-Vault-Token `token` (if not empty).
Reply Call(net::HttpClient& client, const std::string& method, const std::string& path,
           const std::string& token, const std::string& body = "",
           const std::string& content_type = "application/json");

// Parses a JSON body; records a test failure (and returns an empty object) if it is not JSON.
boost::json::value Parse(const std::string& body);

// The "errors" array of a Vault error body, as strings ({"<no errors field>"} if absent).
std::vector<std::string> Errors(const Reply& r);

// Runs a shell command; returns its exit code and stdout (stderr goes to stdout too).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

// Calls `condition` every `interval` until it returns true or `limit` has passed, for state the
// server changes on its own schedule (the listener's TLS trust, log lines). Returns whether the
// condition held; the last call is made after the deadline, so a slow server is not cut short.
bool PollUntil(const std::function<bool()>& condition, absl::Duration limit,
               absl::Duration interval = absl::Milliseconds(100));

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

// Writes a self-signed EC P-256 certificate for CN=localhost with SANs IP:127.0.0.1 and
// DNS:localhost (made by the `openssl` CLI, valid one day) and its key, for a listener.
// Errors: kInternal with openssl's output.
absl::Status WriteSelfSignedServerCert(const std::string& cert_path, const std::string& key_path);

}  // namespace ward::testing
