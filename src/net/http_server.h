#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/http.h"
#include "net/tls.h"

namespace ward::net {

struct HttpServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal to bind ("0.0.0.0", "::")
  uint16_t port = 8200;               // 0 = an ephemeral port; see HttpServer::port()
  // Certificate, key, client CAs, CRLs (net/tls.h). tls.ticket_keys is ignored: the server
  // keeps its own ring (SetTicketKeys).
  TlsServerOptions tls;
  size_t header_limit = 16 * 1024;       // request line + header fields; bigger -> 431
  size_t body_limit = 32 * 1024 * 1024;  // request body; bigger -> 413 {"errors":[...]}
  // Deadline for one whole request (headers and body) from its first byte: slow clients are cut.
  absl::Duration read_timeout = absl::Seconds(30);
  // Deadline for writing one response.
  absl::Duration write_timeout = absl::Seconds(30);
  // How long a keep-alive connection may wait for the first byte of its next request.
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Event loops, one thread each. 0 = one per CPU this process may run on (UsableCpus()).
  int io_threads = 0;
  // Threads that run the handler for requests not served inline (they may block: a durable
  // write waits for its group commit, so the pool bounds how many writes can share an fsync).
  // 0 = max(32, 4 * UsableCpus()). Threads waiting on a commit cost no CPU; reads served
  // inline never touch the pool (docs/benchmarks.md).
  int worker_threads = 0;
  // Serves on the event-loop thread a parsed request that can be served there: returns its
  // response, or nullopt, having done nothing, to send the request to the worker pool and the
  // main handler. Serving on the loop saves two thread hand-offs (loop -> pool -> loop) per
  // request. Serve here only what never blocks: no storage I/O, no waiting for another thread
  // (a response that must wait uses HttpResponse::hold); a blocking call stalls every
  // connection of that event loop. Called for every request, concurrently from the event-loop
  // threads: it must be thread-safe and cheap when it declines. If it throws, the client gets
  // 500, as when the main handler throws. Empty (the default): every request runs on the pool.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> inline_handler;
};

// Counters since the server was created. Each is read atomically, not all together.
struct HttpServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_active = 0;
  uint64_t tls_handshake_failures = 0;  // including handshake timeouts
  uint64_t responses = 0;               // responses written, any status
  uint64_t header_too_large = 0;        // requests answered 431
  uint64_t body_too_large = 0;          // requests answered 413
  uint64_t malformed_requests = 0;      // requests answered 400 by the parser
  uint64_t read_timeouts = 0;           // requests cut off by read_timeout
  uint64_t handler_exceptions = 0;      // handler calls that threw (answered 500)
  uint64_t handled_inline = 0;          // requests served on the event loop (inline_handler)
  uint64_t handshakes_full = 0;         // TLS handshakes completed without resumption
  uint64_t handshakes_resumed = 0;      // TLS handshakes that resumed a session (a ticket or the session cache)
  // Handshakes that failed because the client's certificate was refused, by reason (each is
  // also counted in tls_handshake_failures).
  uint64_t client_cert_expired = 0;    // expired or not yet valid
  uint64_t client_cert_revoked = 0;    // listed in a configured CRL
  uint64_t client_cert_untrusted = 0;  // no chain to a trusted client CA
  uint64_t client_cert_other = 0;      // any other verification failure (bad purpose, ...)
};

// The CPUs this process may run on (its affinity mask, as set by taskset or a cpuset), at
// least 1. Unlike std::thread::hardware_concurrency, a process confined to 2 of 64 CPUs sees 2.
int UsableCpus();

// Ward's HTTPS/1.1 server (HTTP/1.0 also accepted). One event loop (an io_context run by one
// thread) per usable CPU by default, or options.io_threads of them; each accepted connection is
// given to one loop, round-robin, and stays there: one coroutine per connection; keep-alive.
// The handler runs on a separate worker pool so it may block, except for requests
// HttpServerOptions::inline_handler marks as non-blocking, which it runs on the connection's
// loop. A response with HttpResponse::hold set is sent when released, with no thread waiting
// meanwhile.
// Every read, write and handshake has a deadline. Requests whose headers exceed header_limit
// get 431, bodies over body_limit get 413, unparseable requests 400; each of those closes the
// connection. Failures caused by clients are counted (Stats) and never stop the server.
//
// Each request gets a request id, unique within the server and UUID-shaped (RFC 9562 version 8:
// a random per-server prefix and a permuted counter, so ids do not reveal request counts but
// cost no call into the DRBG), and is logged at debug level as
// "request_id=... method=... path=... status=... ms=..." (the path without its query string).
//
// Mutual TLS: see TlsServerOptions. The client certificate chain of a connection (verified by
// the listener) is handed to the handler in HttpRequest::peer_certificates_der.
//
// Thread-safe: port(), Stats(), ReloadTls(), SetTicketKeys() and Shutdown() may be called from
// any thread, but Shutdown not from inside the handler.
class HttpServer {
 public:
  // Loads the TLS certificate and key and binds and listens on address:port, so port() is
  // known, but serves nothing until Start(). `handler` is called for every request.
  // Errors: kInvalidArgument if the options are invalid or the certificate, key, client CAs or
  //         CRLs cannot be used (the message names the file);
  //         kUnavailable if the address is already in use (retrying later may succeed);
  //         kFailedPrecondition if the address cannot be bound for another reason (not a local
  //         address, permission denied, ...).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(HttpServerOptions options,
                                                            Handler handler);

  // Shuts down with a zero deadline (see Shutdown) if that has not been done.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the ephemeral one if options.port was 0).
  uint16_t port() const;

  // How many event loops (threads) serve connections: options.io_threads, or its default.
  int event_loops() const;

  // Starts the event loop threads and accepting connections. Later calls do nothing.
  void Start();

  // Graceful stop: stops accepting, closes idle keep-alive connections, lets requests in
  // flight finish and deliver their responses (with "Connection: close") for up to `deadline`,
  // then closes every remaining connection and joins the threads. A handler still running
  // after the deadline cannot be interrupted: Shutdown waits for it and discards its response.
  // Later calls return at once. REQUIRES: not called from the handler.
  void Shutdown(absl::Duration deadline);

  HttpServerStats Stats() const;

  // Replaces the TLS certificate, key, client CAs and CRLs for connections accepted from now
  // on; connections already open keep the context they started with. Session ticket keys are
  // kept, and so is the session cache if `options.session_cache` is the one the server started
  // with, so sessions stay resumable (subject to the new context's client certificate checks).
  // On error nothing changes.
  // Errors: kInvalidArgument as TlsContext::CreateServer (the message names the file).
  absl::Status ReloadTls(TlsServerOptions options);

  // Replaces the session ticket keys: keys[0] encrypts new tickets, all of them decrypt (keep
  // the previous key for a while after rotating). Servers given the same keys resume each
  // other's sessions. Until called, the server uses one random key of its own.
  // Errors: kInvalidArgument if `keys` is empty, a key has the wrong size or two share a name.
  absl::Status SetTicketKeys(std::vector<TicketKey> keys);

 private:
  // The implementation, private to http_server.cc: it holds the Asio objects.
  struct Runtime;

  explicit HttpServer(std::unique_ptr<Runtime> runtime);

  std::unique_ptr<Runtime> runtime_;
};

}  // namespace ward::net
