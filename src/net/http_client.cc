#include "net/http_client.h"
#include "net/internal/http_syntax.h"

#include <poll.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "net/tls.h"

namespace ward::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxResponseBody = 64 * 1024 * 1024;
constexpr uint32_t kMaxResponseHeader = 64 * 1024;
// Extra time the event loop gets past the deadline before an exchange is abandoned (only a
// stuck name resolution, which has no deadline of its own, needs it).
constexpr auto kAbandonGrace = std::chrono::seconds(1);

struct Endpoint {
  std::string host;  // without IPv6 brackets
  std::string port;  // decimal
  uint16_t port_number = 0;
  std::string host_header;  // the authority as written in the address
};

absl::StatusOr<Endpoint> ParseAddress(std::string_view address) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid server address \"", core::ToAbsl(address), "\": ", core::ToAbsl(why)));
  };
  constexpr std::string_view kHttps = "https://";
  if (absl::StartsWithIgnoreCase(core::ToAbsl(address), "http://")) {
    return invalid("Ward speaks HTTPS only; use https://");
  }
  if (!absl::StartsWithIgnoreCase(core::ToAbsl(address), core::ToAbsl(kHttps))) {
    return invalid("expected https://host[:port]");
  }
  std::string_view rest = address.substr(kHttps.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return invalid("no host");
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return invalid("expected https://host[:port] with no path, query or user");
  }
  Endpoint endpoint;
  endpoint.host_header = std::string(rest);
  std::string_view port_text;
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return invalid("unterminated IPv6 literal");
    endpoint.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("expected ':' after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return invalid("empty port");
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      endpoint.host = std::string(rest);
    } else {
      endpoint.host = std::string(rest.substr(0, colon));
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return invalid("empty port");
    }
  }
  if (endpoint.host.empty()) return invalid("no host");
  if (port_text.empty()) {
    endpoint.port = "443";
    endpoint.port_number = 443;
  } else {
    std::optional<uint64_t> port = core::ParseUint64(port_text);
    if (!port.has_value() || *port == 0 || *port > 65535) return invalid("bad port");
    endpoint.port = std::to_string(*port);
    endpoint.port_number = static_cast<uint16_t>(*port);
  }
  return endpoint;
}

bool IsTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') return false;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool IsRetryableMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "LIST";
}

std::string Text(beast::string_view s) { return std::string(s.data(), s.size()); }

absl::Status ExchangeError(std::string_view step, const beast::error_code& ec,
                           std::string_view detail = {}) {
  const std::string why = detail.empty() ? ec.message() : std::string(detail);
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(core::ToAbsl(step), ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat(core::ToAbsl(step), ": ", why));
}

// The result of one attempt at a request.
struct Outcome {
  absl::Status status;
  HttpResponse response;
  // The attempt failed on a reused connection before any byte of a response arrived: the
  // server most likely closed the connection while it was idle.
  bool retryable = false;
};

}  // namespace

// The newest resumable TLS session to an endpoint, shared by a pool's connections.
struct SharedSession {
  absl::Mutex mu;
  SslSessionPtr session ABSL_GUARDED_BY(mu);

  // A new reference to the session, or null.
  SslSessionPtr Get() {
    absl::MutexLock lock(&mu);
    if (session == nullptr) return nullptr;
    SSL_SESSION_up_ref(session.get());
    return SslSessionPtr(session.get());
  }
  void Set(SSL_SESSION* s) {
    SSL_SESSION_up_ref(s);
    absl::MutexLock lock(&mu);
    session.reset(s);
  }
  void Clear() {
    absl::MutexLock lock(&mu);
    session.reset();
  }
};

struct HttpClient::Transport {
  Transport(HttpClientOptions opts, Endpoint ep, std::shared_ptr<const TlsContext> tls_context,
            std::shared_ptr<SharedSession> shared_session = nullptr)
      : options(std::move(opts)),
        endpoint(std::move(ep)),
        where(endpoint.host_header),
        tls(std::move(tls_context)),
        ssl_ctx(AddRef(tls->native_handle())),
        shared(std::move(shared_session)) {}

  static SSL_CTX* AddRef(SSL_CTX* ctx) {
    SSL_CTX_up_ref(ctx);  // asio::ssl::context takes ownership of one reference
    return ctx;
  }

  // Whether the kept connection can no longer carry a request: the server closed it (EOF or
  // close_notify waiting), reset it, or sent bytes nobody asked for.
  bool IsStale() {
    if (!stream.has_value()) return false;
    if (buffer.size() > 0) return true;
    pollfd fd{};
    fd.fd = beast::get_lowest_layer(*stream).socket().native_handle();
    fd.events = POLLIN;
    return ::poll(&fd, 1, 0) != 0;
  }

  // Forgets the kept connection. After a failure its TLS session is no longer offered;
  // `clean` (the exchange ended normally: the server said close, or closed an idle
  // connection) keeps it resumable, since OpenSSL otherwise invalidates the session of a
  // connection freed without a TLS shutdown.
  void Drop(bool clean = false) {
    if (clean && stream.has_value()) {
      SSL_set_shutdown(stream->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    stream.reset();
    buffer.clear();
  }

  Outcome Run(const http::request<http::string_body>& req, bool head, Clock::time_point deadline);
  asio::awaitable<Outcome> Exchange(const http::request<http::string_body>& req, bool head,
                                    Clock::time_point deadline);
  asio::awaitable<absl::Status> Connect(Clock::time_point deadline);

  const HttpClientOptions options;
  const Endpoint endpoint;
  const std::string where;  // host:port for messages
  const std::shared_ptr<const TlsContext> tls;
  asio::io_context ioc{1};
  asio::ssl::context ssl_ctx;
  std::optional<tcp::resolver> resolver;
  std::optional<Stream> stream;  // the kept connection, if any
  beast::flat_buffer buffer;     // bytes read from `stream` and not yet parsed
  SslSessionPtr session;         // the last resumable TLS session, offered on reconnect
  std::shared_ptr<SharedSession> shared;  // a pool's session cache, or null
  int connections_opened = 0;
  int tls_resumptions = 0;
};

asio::awaitable<absl::Status> HttpClient::Transport::Connect(Clock::time_point deadline) {
  beast::error_code ec;
  tcp::resolver::results_type endpoints;
  const asio::ip::address literal = asio::ip::make_address(endpoint.host, ec);
  const bool is_literal = !ec;
  if (!is_literal) {
    resolver.emplace(ioc);
    endpoints = co_await resolver->async_resolve(endpoint.host, endpoint.port,
                                                 asio::redirect_error(asio::use_awaitable, ec));
    resolver.reset();
    if (ec) co_return ExchangeError(absl::StrCat("resolve ", endpoint.host), ec);
  }

  stream.emplace(ioc.get_executor(), ssl_ctx);
  buffer.clear();
  beast::tcp_stream& tcp = beast::get_lowest_layer(*stream);
  tcp.expires_at(deadline);
  if (is_literal) {
    co_await tcp.async_connect(tcp::endpoint(literal, endpoint.port_number),
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {
    co_await tcp.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    Drop();
    co_return ExchangeError(absl::StrCat("connect to ", where), ec);
  }
  ++connections_opened;

  SSL* ssl = stream->native_handle();
  if (absl::Status s = tls->SetPeerName(ssl, endpoint.host); !s.ok()) {
    Drop();
    co_return s;
  }
  if (session == nullptr && shared != nullptr) session = shared->Get();
  if (session != nullptr) SSL_set_session(ssl, session.get());
  co_await stream->async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::string detail;
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      detail = absl::StrCat("certificate verify failed: ", X509_verify_cert_error_string(verify));
    }
    Drop();
    session.reset();
    if (shared != nullptr) shared->Clear();
    co_return ExchangeError(absl::StrCat("TLS handshake with ", where), ec, detail);
  }
  if (SSL_session_reused(ssl) == 1) ++tls_resumptions;
  co_return absl::OkStatus();
}

asio::awaitable<Outcome> HttpClient::Transport::Exchange(
    const http::request<http::string_body>& req, bool head, Clock::time_point deadline) {
  Outcome out;
  const bool reused = stream.has_value();
  if (!reused) {
    out.status = co_await Connect(deadline);
    if (!out.status.ok()) co_return out;
  }
  beast::tcp_stream& tcp = beast::get_lowest_layer(*stream);
  beast::error_code ec;

  tcp.expires_at(deadline);
  co_await http::async_write(*stream, req, asio::redirect_error(asio::use_awaitable, ec));
  // A server may answer before it has read the whole request (413 for a body over its limit)
  // and close; the write then fails, but the answer is already waiting to be read.
  const beast::error_code write_ec = ec;
  if (write_ec == beast::error::timeout) {
    Drop();
    out.status = ExchangeError(absl::StrCat("send request to ", where), write_ec);
    co_return out;
  }

  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeader);
  parser.body_limit(kMaxResponseBody);
  parser.skip(head);  // a response to HEAD has headers only, whatever Content-Length says
  tcp.expires_at(deadline);
  ec = {};
  co_await http::async_read(*stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec && write_ec) {
    Drop();
    out.status = ExchangeError(absl::StrCat("send request to ", where), write_ec);
    out.retryable = reused;
    co_return out;
  }
  if (ec) {
    const bool got_some = parser.got_some();
    Drop();
    out.status = ExchangeError(absl::StrCat("read response from ", where), ec);
    out.retryable = reused && !got_some && ec != beast::error::timeout;
    co_return out;
  }

  http::response<http::string_body>& res = parser.get();
  out.response.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.response.headers.emplace_back(
        absl::AsciiStrToLower(core::ToAbsl(Text(field.name_string()))), Text(field.value()));
  }
  out.response.body = std::move(res.body());
  if (SSL_SESSION* s = SSL_get1_session(stream->native_handle()); s != nullptr) {
    session.reset(s);
    if (SSL_SESSION_is_resumable(s) != 1) {
      session.reset();
    } else if (shared != nullptr) {
      shared->Set(s);
    }
  }
  if (write_ec) {
    Drop();  // the request never fully went out: the connection is done
  } else if (!res.keep_alive()) {
    Drop(/*clean=*/true);
  }
  co_return out;
}

Outcome HttpClient::Transport::Run(const http::request<http::string_body>& req, bool head,
                                   Clock::time_point deadline) {
  std::optional<Outcome> result;
  asio::co_spawn(ioc, Exchange(req, head, deadline),
                 [&result](std::exception_ptr e, Outcome outcome) {
                   if (e) {
                     // The edge: a library threw. The connection's state is unknown.
                     outcome = Outcome{};
                     outcome.status = absl::UnavailableError("http client: unexpected exception");
                   }
                   result = std::move(outcome);
                 });
  ioc.restart();
  ioc.run_until(deadline + kAbandonGrace);
  if (!result.has_value()) {
    // Only a name resolution can still be pending: cancel it and let the coroutine finish.
    if (resolver.has_value()) resolver->cancel();
    if (stream.has_value()) beast::get_lowest_layer(*stream).close();
    ioc.restart();
    ioc.run();
    result = Outcome{};
    result->status = absl::DeadlineExceededError(absl::StrCat("request to ", where, ": timed out"));
  }
  if (!result->status.ok()) Drop();
  return std::move(*result);
}

HttpClient::HttpClient(std::unique_ptr<Transport> transport) : transport_(std::move(transport)) {}

HttpClient::~HttpClient() = default;

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(HttpClientOptions options) {
  WARD_ASSIGN_OR_RETURN(Endpoint endpoint, ParseAddress(options.address));
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http client: the timeout must be positive");
  }
  ClientTlsOptions tls_options;
  tls_options.ca_file = options.ca_file;
  tls_options.cert_file = options.client_cert_file;
  tls_options.key_file = options.client_key_file;
  tls_options.skip_verify = options.tls_skip_verify;
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const TlsContext> tls,
                        TlsContext::CreateClient(tls_options));
  return std::unique_ptr<HttpClient>(new HttpClient(
      std::make_unique<Transport>(std::move(options), std::move(endpoint), std::move(tls))));
}

absl::StatusOr<HttpResponse> HttpClient::Send(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  if (!internal::IsHttpToken(method)) return absl::InvalidArgumentError("http client: invalid method");
  if (!IsTarget(target)) {
    return absl::InvalidArgumentError(
        "http client: the target must start with '/' and hold no spaces or control characters");
  }
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  bool has_host = false;
  bool has_user_agent = false;
  for (const auto& [name, value] : headers) {
    if (!internal::IsHttpToken(name) || !internal::IsHttpFieldValue(value)) {
      return absl::InvalidArgumentError("http client: invalid header field");
    }
    if (absl::EqualsIgnoreCase(name, "content-length") ||
        absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      return absl::InvalidArgumentError(
          absl::StrCat("http client: ", name, " is set by the client"));
    }
    has_host = has_host || absl::EqualsIgnoreCase(name, "host");
    has_user_agent = has_user_agent || absl::EqualsIgnoreCase(name, "user-agent");
    req.insert(name, value);
  }
  if (!has_host) req.set(http::field::host, transport_->endpoint.host_header);
  if (!has_user_agent) req.set(http::field::user_agent, "ward");
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.content_length(body.size());
  }
  req.body() = std::string(body);
  const bool head = method == "HEAD";

  const Clock::time_point deadline =
      Clock::now() + absl::ToChronoNanoseconds(transport_->options.timeout);
  if (transport_->IsStale()) transport_->Drop(/*clean=*/true);
  Outcome outcome = transport_->Run(req, head, deadline);
  if (!outcome.status.ok() && outcome.retryable && IsRetryableMethod(method) &&
      Clock::now() < deadline) {
    outcome = transport_->Run(req, head, deadline);
  }
  if (!outcome.status.ok()) return outcome.status;
  return std::move(outcome.response);
}

int HttpClient::connections_opened() const { return transport_->connections_opened; }

int HttpClient::tls_resumptions() const { return transport_->tls_resumptions; }

struct HttpClientPool::State {
  HttpClientOptions options;
  Endpoint endpoint;
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<SharedSession> sessions = std::make_shared<SharedSession>();
  size_t max_idle = 0;
  mutable absl::Mutex mu;
  std::vector<std::unique_ptr<HttpClient>> idle ABSL_GUARDED_BY(mu);
  std::atomic<int> opened{0};
  std::atomic<int> resumed{0};
};

HttpClientPool::HttpClientPool(std::unique_ptr<State> state) : state_(std::move(state)) {}

HttpClientPool::~HttpClientPool() = default;

absl::StatusOr<std::unique_ptr<HttpClientPool>> HttpClientPool::Create(HttpClientOptions options,
                                                                       size_t max_idle) {
  if (max_idle == 0) return absl::InvalidArgumentError("http client pool: max_idle must be > 0");
  // Validates everything HttpClient::Create does, once.
  WARD_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> first, HttpClient::Create(options));
  auto state = std::make_unique<State>();
  state->endpoint = first->transport_->endpoint;
  state->tls = first->transport_->tls;
  state->options = std::move(options);
  state->max_idle = max_idle;
  return std::unique_ptr<HttpClientPool>(new HttpClientPool(std::move(state)));
}

std::unique_ptr<HttpClient> HttpClientPool::Borrow() {
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->idle.empty()) {
      std::unique_ptr<HttpClient> client = std::move(state_->idle.back());
      state_->idle.pop_back();
      return client;
    }
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::make_unique<HttpClient::Transport>(
      state_->options, state_->endpoint, state_->tls, state_->sessions)));
}

void HttpClientPool::Return(std::unique_ptr<HttpClient> client) {
  const bool open = client->transport_->stream.has_value();
  absl::MutexLock lock(&state_->mu);
  if (open && state_->idle.size() < state_->max_idle) {
    state_->idle.push_back(std::move(client));
  }
}

absl::StatusOr<HttpResponse> HttpClientPool::Send(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  std::unique_ptr<HttpClient> client = Borrow();
  const int opened_before = client->connections_opened();
  const int resumed_before = client->tls_resumptions();
  absl::StatusOr<HttpResponse> response = client->Send(method, target, headers, body);
  state_->opened += client->connections_opened() - opened_before;
  state_->resumed += client->tls_resumptions() - resumed_before;
  Return(std::move(client));
  return response;
}

size_t HttpClientPool::idle() const {
  absl::MutexLock lock(&state_->mu);
  return state_->idle.size();
}

int HttpClientPool::connections_opened() const { return state_->opened.load(); }

int HttpClientPool::tls_resumptions() const { return state_->resumed.load(); }

}  // namespace ward::net
