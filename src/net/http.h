#pragma once

// The HTTP request and response types shared by Ward's server, client and API layer. Plain
// data with no Boost types, so code above `net` never includes Asio or Beast.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ward::net {

// What a handler keeps about one connection from one of its requests to the next (see
// HttpRequest::connection_memo): a handler derives its own type from this. Destroyed when the
// connection ends, on the connection's event loop.
class ConnectionMemo {
 public:
  virtual ~ConnectionMemo() = default;
};

// One parsed HTTP request, as handed to a Handler.
struct HttpRequest {
  std::string method;  // as sent: "GET", "POST", "LIST", ...
  std::string target;  // raw request target including the query: "/v1/secret/data/a?version=2"
  // Header fields in arrival order; names lower-cased, values as sent. A name may repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;  // the peer's IP address as text ("127.0.0.1", "::1")
  uint16_t remote_port = 0;    // the peer's TCP port
  std::string request_id;      // a UUID-shaped id the server generated, unique per server
  // The client certificate chain from the TLS handshake, leaf first, each DER-encoded; empty if
  // the client presented none. The listener refuses a handshake whose chain does not verify
  // against its trust store (or whose leaf is revoked or expired), so a non-empty chain here has
  // been verified by the listener.
  std::vector<std::string> peer_certificates_der;
  // The handler's memo for the connection this request came on, kept from request to request
  // on it (a handler may set or replace it); nullptr for a request that came through no
  // HttpServer connection. A connection's requests are handled one after another, never at
  // once (inline or on the worker pool), so it needs no lock.
  std::unique_ptr<ConnectionMemo>* connection_memo = nullptr;

  // Returns the value of the first header named `lower_name` (which must be lower-case), or ""
  // if there is none. The view is valid while this request is alive and unchanged.
  std::string_view Header(std::string_view lower_name) const;
};

// A response produced by a Handler (server side) or received by HttpClient (client side).
struct HttpResponse {
  int status = 200;
  // Header fields to send (or as received; names lower-cased on the client side). On the
  // server, Content-Length, Connection and Transfer-Encoding are set by the server and any
  // the handler supplies are ignored.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Server side only: a response that may be sent only once some work elsewhere has finished
  // (an audited read waits for its audit records to be written: docs/audit.md), without a
  // thread waiting for it. If set, the server calls `hold(release)` once, after the handler has
  // returned, on the connection's event loop, and sends nothing until `release` is called, from
  // any thread, exactly once: `release(std::nullopt)` sends this response as it is,
  // `release(other)` sends `other` instead. If `release` has not been called `hold_timeout`
  // after `hold` was, the server sends `hold_timeout_response` and ignores the later call.
  // `hold` must not block.
  using Release = std::function<void(std::optional<HttpResponse>)>;
  std::function<void(Release)> hold = nullptr;
  std::chrono::milliseconds hold_timeout{10'000};
  std::shared_ptr<const HttpResponse> hold_timeout_response = nullptr;  // sent on timeout

  // Returns the value of the first header whose name equals `name` ignoring ASCII case, or ""
  // if there is none.
  std::string_view Header(std::string_view name) const;
};

// Serves one request. Called on a worker thread, possibly concurrently with other calls, so it
// must be thread-safe; it may block (storage fsync, key generation). Requests that
// HttpServerOptions::inline_handler serves are served on an event-loop thread instead and must
// not block (a response that must wait for other work uses HttpResponse::hold). It should not
// throw: an exception is caught by the server and answered with 500.
using Handler = std::function<HttpResponse(const HttpRequest&)>;

// Returns what the HTTP server would send for `response`: `response` itself unless it is held
// (HttpResponse::hold), in which case this calls `hold` and blocks until it is released or
// hold_timeout has passed. For code that calls a Handler outside the server (tests, fuzzers).
HttpResponse AwaitHeld(HttpResponse response);

}  // namespace ward::net
