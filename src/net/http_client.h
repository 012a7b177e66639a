#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/http.h"

namespace ward::net {

struct HttpClientOptions {
  std::string address;           // "https://host[:port]"; the port defaults to 443
  std::string ca_file;           // trusted CAs (PEM); "" = the system trust store
  std::string client_cert_file;  // optional client certificate chain (PEM) for mutual TLS
  std::string client_key_file;   // its key (PEM); required if and only if the cert is set
  bool tls_skip_verify = false;  // do not verify the server certificate (development only)
  absl::Duration timeout = absl::Seconds(60);  // deadline for one whole Send
};

// A small synchronous HTTPS/1.1 client for the CLI and tests. It keeps one keep-alive
// connection to the server (resuming the TLS session when it reconnects) and reconnects when
// the server has closed it. The server certificate must chain to ca_file and name the host
// of `address` (DNS or IP SAN) unless tls_skip_verify.
//
// Not thread-safe: use one client per thread.
class HttpClient {
 public:
  // Parses the address and loads the TLS material; does not connect yet.
  // Errors: kInvalidArgument if the address is not "https://host[:port]" (plain http:// is
  // refused: Ward speaks TLS only), or a CA, certificate or key file cannot be loaded (the
  // message names the file), or the timeout is not positive.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);

  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and returns the response, whatever its status. Response header names
  // are lower-cased. Host, User-Agent (unless given) and Content-Length are added. A GET,
  // HEAD, OPTIONS or LIST that fails on a reused connection before any response byte arrives
  // is retried once on a new connection.
  // Errors: kInvalidArgument if the method, target or a header is not valid HTTP (e.g. holds
  //         CR/LF, or the target does not start with '/');
  //         kUnavailable if resolving, connecting, the TLS handshake (including certificate
  //         verification) or the exchange fails; the message says which step and why;
  //         kDeadlineExceeded if the whole exchange takes longer than options.timeout.
  absl::StatusOr<HttpResponse> Send(std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body);

  // The number of TCP connections this client has opened, and how many of their TLS
  // handshakes resumed an earlier session (for tests and diagnostics).
  int connections_opened() const;
  int tls_resumptions() const;

 private:
  friend class HttpClientPool;
  // The implementation, private to http_client.cc: it holds the Asio objects.
  struct Transport;
  explicit HttpClient(std::unique_ptr<Transport> transport);

  std::unique_ptr<Transport> transport_;
};

// A thread-safe pool of keep-alive connections to one endpoint, for code that calls Ward (or
// another HTTPS server) from many threads. Each Send borrows an idle connection (or opens a new
// one), and returns it afterwards if the server kept it open; at most `max_idle` wait idle.
// All connections share one TLS context and one session cache, so a new connection resumes
// the session another one negotiated (one full handshake per endpoint, not per connection).
//
// Thread-safe: Send may run concurrently; each call uses its own connection.
class HttpClientPool {
 public:
  // Errors: as HttpClient::Create; kInvalidArgument if max_idle is 0.
  static absl::StatusOr<std::unique_ptr<HttpClientPool>> Create(HttpClientOptions options,
                                                                size_t max_idle = 16);
  ~HttpClientPool();

  // As HttpClient::Send, on a pooled connection.
  absl::StatusOr<HttpResponse> Send(std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body);

  // Connections waiting idle now; connections opened and TLS resumptions over the pool's
  // lifetime (for tests and diagnostics).
  size_t idle() const;
  int connections_opened() const;
  int tls_resumptions() const;

 private:
  struct State;
  explicit HttpClientPool(std::unique_ptr<State> state);
  std::unique_ptr<HttpClient> Borrow();
  void Return(std::unique_ptr<HttpClient> client);

  std::unique_ptr<State> state_;
};

}  // namespace ward::net
