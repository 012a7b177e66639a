// ward-bench: an HTTPS/1.1 load generator for side-by-side benchmarks of Ward and its anchors
// (nginx). Results and the commands that produced them live in docs/benchmarks.md.
//
// Model: T threads, each running its own io_context; N connections spread over them round
// robin, each a coroutine with one request in flight at a time (HTTP/1.1 keep-alive, or a new
// connection per request in the handshake scenarios).
//
//   closed loop (--rate 0): each connection sends its next request as soon as the previous
//     answer arrives; latency is measured from the send.
//   open loop (--rate R): each connection follows a fixed schedule of R/N requests per second
//     and latency is measured from the request's *intended* send time, so a stalled server is
//     charged for the requests it kept the generator from sending (no coordinated omission).
//     The generator's own lateness is reported apart ("woke late for a send"): for each send a
//     connection waited for, how long after its intended time the connection woke up. With it
//     and the generator's own CPU time per response (both printed, and in --json), a latency
//     can be told apart from a generator that was itself behind.
//
// Only requests that complete inside the measurement window [start + warmup, start + warmup +
// duration] are counted; with --requests N the run instead sends exactly N requests in total
// (closed loop, no warmup) and counts all of them. Errors are counted, never fatal: non-2xx
// answers, and I/O failures (connect, TLS, read, write, timeout), after which the connection is
// re-established.
//
// This is a tool, not a library: it uses Asio and Beast directly (compiled once in ward_net).

#include <openssl/ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "net/tls.h"

namespace ward::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;

// After an I/O failure a connection waits this long before reconnecting, so a dead server
// costs a bounded number of attempts rather than a busy loop.
constexpr auto kErrorBackoff = std::chrono::milliseconds(10);
constexpr uint32_t kMaxResponseHeader = 64 * 1024;
constexpr uint64_t kMaxResponseBody = 64 * 1024 * 1024;

// approle-login and pki-issue POST one fixed JSON body (--body) to a Vault path, keep-alive.
enum class Scenario {
  kKvRead,
  kKvWrite,
  kStatic,
  kHandshakeFull,
  kHandshakeResumed,
  kAppRoleLogin,
  kPkiIssue
};

// kv-write: which secret each write goes to.
enum class PathMode {
  kSame,        // every write updates --path
  kConnection,  // each connection updates its own secret, --path-<connection>
  kRequest,     // every write creates a new secret, --path-<connection>-<sequence>
  kIndex,       // kv-write and kv-read: --path-<i>, i counting requests across connections
                // from 0 (with --requests N: exactly --path-0 .. --path-<N-1>, once each)
};

absl::StatusOr<Scenario> ParseScenario(std::string_view name) {
  if (name == "kv-read") return Scenario::kKvRead;
  if (name == "kv-write") return Scenario::kKvWrite;
  if (name == "static") return Scenario::kStatic;
  if (name == "handshake-full") return Scenario::kHandshakeFull;
  if (name == "handshake-resumed") return Scenario::kHandshakeResumed;
  if (name == "approle-login") return Scenario::kAppRoleLogin;
  if (name == "pki-issue") return Scenario::kPkiIssue;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown scenario \"", core::ToAbsl(name),
      "\"; expected kv-read, kv-write, static, handshake-full, handshake-resumed, approle-login "
      "or pki-issue"));
}

bool IsHandshakeScenario(Scenario s) {
  return s == Scenario::kHandshakeFull || s == Scenario::kHandshakeResumed;
}

// Scenarios that POST --body to a Vault path.
bool IsPostScenario(Scenario s) { return s == Scenario::kAppRoleLogin || s == Scenario::kPkiIssue; }

// Everything the command line sets. Defaults in the CLI definitions in main().
struct Options {
  std::string url;
  std::string scenario_name = "kv-read";
  std::string path;
  std::string token;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;
  int connections = 8;
  int threads = 1;
  double duration_s = 5;
  double warmup_s = 1;
  double rate = 0;
  bool spin = false;  // open loop: wait for a send by yielding to the event loop, not a timer
  size_t body_size = 1024;
  std::string body;  // approle-login / pki-issue: the JSON body, or @FILE
  std::string paths = "same";
  uint64_t requests = 0;  // > 0: send exactly this many requests, then stop
  double timeout_s = 10;
  bool json = false;
};

// A latency histogram with logarithmic buckets, each power of two split into 2^kSubBits linear
// sub-buckets (as HdrHistogram does): constant memory, relative error below 2^-kSubBits (0.8%),
// values in nanoseconds up to about 2^40 (18 minutes; larger ones land in the last bucket).
//
// Not thread-safe: each thread records into its own and they are merged at the end.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t ns) {
    ++counts_[Index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
    sum_ += static_cast<double>(ns);
  }

  void Merge(const Histogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0 : sum_ / static_cast<double>(total_); }

  // The value at quantile q (0..1): the middle of the bucket holding the ceil(q * count)-th
  // smallest sample, capped at the largest sample seen. 0 if empty.
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(Middle(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // sub-buckets per power of two
  static constexpr uint64_t kLinear = 2 * kSub;              // values below this have a bucket each
  static constexpr int kMaxShift = 33;
  static constexpr size_t kBuckets = kLinear + kMaxShift * kSub;

  static size_t Index(uint64_t v) {
    if (v < kLinear) return static_cast<size_t>(v);
    int shift = std::bit_width(v) - (kSubBits + 1);
    if (shift > kMaxShift) return kBuckets - 1;
    return static_cast<size_t>(kLinear + (shift - 1) * kSub + ((v >> shift) - kSub));
  }

  static uint64_t Middle(size_t index) {
    if (index < kLinear) return index;
    const uint64_t shift = (index - kLinear) / kSub + 1;
    const uint64_t sub = (index - kLinear) % kSub + kSub;
    return (sub << shift) + ((uint64_t{1} << shift) >> 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

// What one thread measured. Only its own thread touches it until the threads are joined.
struct Stats {
  Histogram latency;
  // Open loop: how late a connection that was waiting for its next request's intended send
  // time woke up for it (timer and scheduling delay on the generator's side, in the window).
  // Latency counts from the intended time, so this lateness is part of every latency above.
  Histogram wake_lag;
  uint64_t responses = 0;  // complete responses in the window, any status
  uint64_t all_responses = 0;  // complete responses at any time (warm-up included)
  uint64_t non_2xx = 0;
  uint64_t io_errors = 0;  // connect, TLS, write, read failures and timeouts in the window
  uint64_t bytes_received = 0;
  uint64_t handshakes = 0;                   // TLS handshakes completed in the window
  uint64_t resumed = 0;                      // of which resumed a session
  std::array<uint64_t, 6> status_classes{};  // [1]: 1xx ... [5]: 5xx

  void Merge(const Stats& o) {
    latency.Merge(o.latency);
    wake_lag.Merge(o.wake_lag);
    responses += o.responses;
    all_responses += o.all_responses;
    non_2xx += o.non_2xx;
    io_errors += o.io_errors;
    bytes_received += o.bytes_received;
    handshakes += o.handshakes;
    resumed += o.resumed;
    for (size_t i = 0; i < status_classes.size(); ++i) status_classes[i] += o.status_classes[i];
  }
};

// Immutable once the threads start; shared by all of them.
struct Plan {
  Scenario scenario;
  std::string host;  // without IPv6 brackets
  std::string host_header;
  std::vector<tcp::endpoint> endpoints;
  std::shared_ptr<const net::TlsContext> tls;
  std::string target;  // request target; kv-write may append a suffix (PathMode)
  std::string token;
  std::string body;  // kv-write only
  PathMode paths = PathMode::kSame;
  // --requests: total requests to send (0: run for the time window). With it, or with
  // PathMode::kIndex, each request takes its index from `next_index` (shared by all threads).
  uint64_t requests = 0;
  std::shared_ptr<std::atomic<uint64_t>> next_index = std::make_shared<std::atomic<uint64_t>>(0);
  int connections = 1;
  Clock::time_point start;         // schedules begin here
  Clock::time_point window_begin;  // start + warmup
  Clock::time_point window_end;    // window_begin + duration
  Clock::duration interval{0};     // per connection in open loop; 0 = closed loop
  bool spin = false;               // open loop: wait for sends by yielding (Options::spin)
  Clock::duration timeout{0};      // per request (including connect and handshake)
};

struct Worker {
  asio::io_context ioc{1};
  Stats stats;
};

// Builds the request for sequence number `seq` of connection `conn`; `index` is the request's
// index across all connections (PathMode::kIndex).
http::request<http::string_body> MakeRequest(const Plan& plan, int conn, uint64_t seq,
                                             uint64_t index) {
  http::request<http::string_body> req;
  req.version(11);
  req.set(http::field::host, plan.host_header);
  req.set(http::field::user_agent, "ward-bench");
  if (!plan.token.empty()) req.set("X-Vault-Token", plan.token);
  if (plan.scenario == Scenario::kKvWrite) {
    req.method(http::verb::put);
    switch (plan.paths) {
      case PathMode::kSame:
        req.target(plan.target);
        break;
      case PathMode::kConnection:
        req.target(absl::StrCat(plan.target, "-", conn));
        break;
      case PathMode::kRequest:
        req.target(absl::StrCat(plan.target, "-", conn, "-", seq));
        break;
      case PathMode::kIndex:
        req.target(absl::StrCat(plan.target, "-", index));
        break;
    }
    req.set(http::field::content_type, "application/json");
    req.body() = plan.body;
    req.prepare_payload();
  } else if (IsPostScenario(plan.scenario)) {
    req.method(http::verb::post);
    req.target(plan.target);
    req.set(http::field::content_type, "application/json");
    req.body() = plan.body;
    req.prepare_payload();
  } else {
    req.method(http::verb::get);
    req.target(plan.paths == PathMode::kIndex ? absl::StrCat(plan.target, "-", index)
                                              : plan.target);
  }
  if (IsHandshakeScenario(plan.scenario)) req.keep_alive(false);
  return req;
}

// A 1 KB-ish KV v2 write body: {"data":{"value":"xxxx..."}} padded to exactly `size` bytes
// (or the minimum JSON if `size` is smaller).
std::string MakeBody(size_t size) {
  const std::string head = R"({"data":{"value":")";
  const std::string tail = R"("}})";
  const size_t fill = size > head.size() + tail.size() ? size - head.size() - tail.size() : 0;
  std::string body = head;
  for (size_t i = 0; i < fill; ++i) body.push_back(static_cast<char>('a' + i % 26));
  body += tail;
  return body;
}

// One connection's life: runs requests until the window closes, recording into its worker's
// Stats. Not thread-safe: lives on its worker's io_context thread only. `plan` and `worker` are
// borrowed and must outlive it.
class Connection {
 public:
  Connection(const Plan& plan, Worker& worker, int index)
      : plan_(plan),
        worker_(worker),
        index_(index),
        ssl_ctx_(AddRef(plan.tls->native_handle())),
        timer_(worker.ioc) {}

  asio::awaitable<void> Run() {
    // Spread the connections' schedules evenly over one interval.
    Clock::time_point next = plan_.start + plan_.interval * index_ / plan_.connections;
    const bool open_loop = plan_.interval.count() > 0;
    const bool counted = plan_.requests > 0;
    for (uint64_t seq = 0;; ++seq) {
      Clock::time_point intended = open_loop ? next : Clock::now();
      if (intended >= plan_.window_end || Clock::now() >= plan_.window_end) break;
      uint64_t index = seq;
      if (counted || plan_.paths == PathMode::kIndex) {
        // Every index is used once, even by a request that then fails (and is counted so).
        index = plan_.next_index->fetch_add(1, std::memory_order_relaxed);
        if (counted && index >= plan_.requests) break;
      }
      if (open_loop) {
        next += plan_.interval;
        if (Clock::now() < intended) {
          if (plan_.spin) {
            co_await SpinUntil(intended);
          } else {
            co_await Sleep(intended);
          }
          const Clock::time_point woke = Clock::now();
          if (InWindow(woke)) {
            worker_.stats.wake_lag.Record(static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(woke - intended).count()));
          }
        }
      }
      if (!stream_.has_value() || IsHandshakeScenario(plan_.scenario)) {
        if (!co_await Connect()) {
          CountIoError();
          co_await Sleep(Clock::now() + kErrorBackoff);
          continue;
        }
        // Closed-loop keep-alive: connection setup is not request latency. (In the handshake
        // scenarios it is what is measured; in open loop the schedule decides.)
        if (!open_loop && !IsHandshakeScenario(plan_.scenario)) intended = Clock::now();
      }
      std::optional<int> status = co_await Exchange(MakeRequest(plan_, index_, seq, index));
      // The response's completion (in the handshake scenarios, before the drain).
      const Clock::time_point done = IsHandshakeScenario(plan_.scenario) ? done_ : Clock::now();
      if (status.has_value()) ++worker_.stats.all_responses;
      if (!status.has_value()) {
        CountIoError();
        Drop();
        co_await Sleep(Clock::now() + kErrorBackoff);
        continue;
      }
      if (InWindow(done)) {
        Stats& s = worker_.stats;
        ++s.responses;
        s.latency.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(done - intended).count()));
        ++s.status_classes[std::clamp(*status / 100, 0, 5)];
        if (*status < 200 || *status > 299) ++s.non_2xx;
      }
    }
    Drop();
  }

 private:
  static SSL_CTX* AddRef(SSL_CTX* ctx) {
    SSL_CTX_up_ref(ctx);  // asio::ssl::context takes ownership of one reference
    return ctx;
  }

  bool InWindow(Clock::time_point t) const {
    return t >= plan_.window_begin && t <= plan_.window_end;
  }

  void CountIoError() {
    if (InWindow(Clock::now())) ++worker_.stats.io_errors;
  }

  asio::awaitable<void> Sleep(Clock::time_point until) {
    timer_.expires_at(until);
    beast::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  // Waits until `until` without a timer: yields to the event loop (which goes on serving the
  // thread's other connections and polling its sockets) until the time has come. The thread
  // then never sleeps, so no timer is armed and no wake-up is paid per request; it keeps its
  // CPU busy, which is only fair to a server that does not share that CPU (--spin).
  asio::awaitable<void> SpinUntil(Clock::time_point until) {
    while (Clock::now() < until) co_await asio::post(worker_.ioc, asio::use_awaitable);
  }

  void Drop() {
    if (!stream_.has_value()) return;
    beast::error_code ec;
    beast::get_lowest_layer(*stream_).socket().close(ec);
    stream_.reset();
  }

  // Opens a TCP connection and completes the TLS handshake (resuming the last session in the
  // handshake-resumed scenario). Returns false on any failure.
  asio::awaitable<bool> Connect() {
    Drop();
    stream_.emplace(worker_.ioc.get_executor(), ssl_ctx_);
    buffer_.clear();
    beast::tcp_stream& tcp = beast::get_lowest_layer(*stream_);
    beast::error_code ec;
    tcp.expires_after(plan_.timeout);
    co_await tcp.async_connect(plan_.endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
    tcp.socket().set_option(tcp::no_delay(true), ec);
    SSL* ssl = stream_->native_handle();
    if (!plan_.tls->SetPeerName(ssl, plan_.host).ok()) co_return false;
    if (plan_.scenario == Scenario::kHandshakeResumed && session_ != nullptr) {
      SSL_set_session(ssl, session_.get());
    }
    co_await stream_->async_handshake(asio::ssl::stream_base::client,
                                      asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      session_.reset();
      co_return false;
    }
    if (InWindow(Clock::now())) {
      ++worker_.stats.handshakes;
      if (SSL_session_reused(ssl) == 1) ++worker_.stats.resumed;
    }
    co_return true;
  }

  // Sends `req` and reads the whole response. Returns its status, or nullopt on an I/O error
  // (the connection is then unusable). Drops the connection if the server will close it.
  asio::awaitable<std::optional<int>> Exchange(http::request<http::string_body> req) {
    beast::tcp_stream& tcp = beast::get_lowest_layer(*stream_);
    beast::error_code ec;
    tcp.expires_after(plan_.timeout);
    co_await http::async_write(*stream_, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::nullopt;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxResponseHeader);
    parser.body_limit(kMaxResponseBody);
    tcp.expires_after(plan_.timeout);
    const size_t got = co_await http::async_read(*stream_, buffer_, parser,
                                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::nullopt;
    if (InWindow(Clock::now())) worker_.stats.bytes_received += got;
    const http::response<http::string_body>& res = parser.get();
    const int status = static_cast<int>(res.result_int());
    if (IsHandshakeScenario(plan_.scenario)) {
      done_ = Clock::now();
      co_await DrainUntilClose();
      // The exchange is complete: mark the connection as cleanly shut down, or OpenSSL marks
      // its session not resumable when the SSL object is freed.
      SSL_set_shutdown(stream_->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      if (plan_.scenario == Scenario::kHandshakeResumed) {
        if (SSL_SESSION* s = SSL_get1_session(stream_->native_handle()); s != nullptr) {
          session_.reset(s);
          if (SSL_SESSION_is_resumable(s) != 1) session_.reset();
        }
      }
    }
    if (!res.keep_alive()) Drop();
    co_return status;
  }

  // Reads (and discards) until the server closes the connection. TLS 1.3 session tickets are
  // post-handshake messages a server may send at any time, even after its response (Ward
  // does), so the session to resume is only known once the server has finished; and reading
  // to the end makes each connection's life complete on both sides. Errors end the drain.
  asio::awaitable<void> DrainUntilClose() {
    beast::tcp_stream& tcp = beast::get_lowest_layer(*stream_);
    beast::error_code ec;
    std::array<char, 4096> scratch;
    tcp.expires_after(plan_.timeout);
    while (!ec) {
      co_await stream_->async_read_some(asio::buffer(scratch),
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  const Plan& plan_;
  Worker& worker_;
  const int index_;
  asio::ssl::context ssl_ctx_;
  asio::steady_timer timer_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  net::SslSessionPtr session_;
  Clock::time_point done_;  // when the last response was complete (handshake scenarios)
};

// Splits https://host[:port] (no path). Fills host, host_header and the port.
absl::Status ParseUrl(const std::string& url, Plan& plan, std::string& port) {
  constexpr std::string_view kHttps = "https://";
  if (url.rfind(kHttps, 0) != 0) {
    return absl::InvalidArgumentError("--url must look like https://host[:port]");
  }
  std::string rest = url.substr(kHttps.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) {
    return absl::InvalidArgumentError("--url must look like https://host[:port], with no path");
  }
  plan.host_header = rest;
  port = "443";
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError("--url: unterminated [");
    plan.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return absl::InvalidArgumentError("--url: expected :port");
      port = rest.substr(close + 2);
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
    plan.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    plan.host = rest;
  }
  std::optional<uint64_t> n = core::ParseUint64(port);
  if (plan.host.empty() || !n.has_value() || *n == 0 || *n > 65535) {
    return absl::InvalidArgumentError("--url: bad host or port");
  }
  return absl::OkStatus();
}

// Validates the options and prepares everything the threads share.
absl::StatusOr<Plan> MakePlan(const Options& o) {
  Plan plan;
  WARD_ASSIGN_OR_RETURN(plan.scenario, ParseScenario(o.scenario_name));
  if (o.requests > 0 && o.rate > 0) {
    return absl::InvalidArgumentError("--requests runs closed loop: do not combine it with --rate");
  }
  if (o.spin && o.rate <= 0) {
    return absl::InvalidArgumentError("--spin paces an open loop: it needs --rate");
  }
  if (o.connections < 1 || o.threads < 1 || o.duration_s <= 0 || o.warmup_s < 0 || o.rate < 0 ||
      o.timeout_s <= 0) {
    return absl::InvalidArgumentError(
        "--connections and --threads must be >= 1, --duration and --timeout > 0, --warmup and "
        "--rate >= 0");
  }
  std::string port;
  WARD_RETURN_IF_ERROR(ParseUrl(o.url, plan, port));
  {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(plan.host, port, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot resolve ", plan.host, ": ", ec.message()));
    }
    for (const auto& r : results) plan.endpoints.push_back(r.endpoint());
  }
  net::ClientTlsOptions tls;
  tls.ca_file = o.ca_file;
  tls.cert_file = o.cert_file;
  tls.key_file = o.key_file;
  tls.skip_verify = o.insecure;
  WARD_ASSIGN_OR_RETURN(plan.tls, net::TlsContext::CreateClient(tls));

  const bool vault_path = plan.scenario == Scenario::kKvRead ||
                          plan.scenario == Scenario::kKvWrite || IsPostScenario(plan.scenario);
  if (vault_path) {
    if (o.path.empty() || o.path.front() == '/') {
      return absl::InvalidArgumentError(
          "kv-*, approle-login and pki-issue need --path as a Vault path without /v1/, e.g. "
          "secret/data/bench or auth/approle/login");
    }
    plan.target = "/v1/" + o.path;
  } else {
    plan.target = o.path.empty() ? "/" : o.path;
    if (plan.target.front() != '/') {
      return absl::InvalidArgumentError(
          "--path for static and handshake scenarios must start with /");
    }
  }
  for (char c : plan.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("--path must not contain spaces or control characters");
    }
  }
  plan.token = o.token;
  if (plan.scenario == Scenario::kKvWrite) plan.body = MakeBody(o.body_size);
  if (IsPostScenario(plan.scenario)) {
    if (o.body.empty()) {
      return absl::InvalidArgumentError("approle-login and pki-issue need --body (JSON or @FILE)");
    }
    plan.body = o.body;
    if (o.body.front() == '@') {
      std::ifstream in(o.body.substr(1), std::ios::binary);
      if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", o.body.substr(1)));
      std::stringstream text;
      text << in.rdbuf();
      plan.body = text.str();
    }
  }
  if (o.paths == "same") {
    plan.paths = PathMode::kSame;
  } else if (o.paths == "connection") {
    plan.paths = PathMode::kConnection;
  } else if (o.paths == "request") {
    plan.paths = PathMode::kRequest;
  } else if (o.paths == "index") {
    plan.paths = PathMode::kIndex;
  } else {
    return absl::InvalidArgumentError("--paths must be same, connection, request or index");
  }
  plan.requests = o.requests;
  plan.connections = o.connections;
  plan.spin = o.spin;
  plan.timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  if (o.rate > 0) {
    plan.interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(o.connections) / o.rate));
    if (plan.interval.count() <= 0) return absl::InvalidArgumentError("--rate is too high");
  }
  return plan;
}

std::string Ms(uint64_t ns) { return absl::StrFormat("%.3f", static_cast<double>(ns) / 1e6); }

// User plus system CPU time this process has used so far, all threads, in seconds.
double ProcessCpuSeconds() {
  rusage u{};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

// Runs the plan to completion and prints the results. Returns the process exit code.
int RunBench(const Options& o, Plan plan) {
  // Each connection needs a descriptor; raise the soft limit as far as the hard limit allows.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<Worker>());
  std::vector<std::unique_ptr<Connection>> connections;
  plan.start = Clock::now() + std::chrono::milliseconds(20);
  if (plan.requests > 0) {
    // Counted run: every response counts, however long the N requests take.
    plan.window_begin = plan.start;
    plan.window_end = Clock::time_point::max();
  } else {
    plan.window_begin = plan.start + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(o.warmup_s));
    plan.window_end = plan.window_begin + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(o.duration_s));
  }
  std::atomic<int> failures{0};
  for (int c = 0; c < o.connections; ++c) {
    Worker& w = *workers[c % o.threads];
    connections.push_back(std::make_unique<Connection>(plan, w, c));
    asio::co_spawn(w.ioc, connections.back()->Run(), [&failures](std::exception_ptr e) {
      // The edge: Asio or Beast threw something unexpected. Counted; the run goes on.
      if (e) failures.fetch_add(1);
    });
  }
  const double cpu_before = ProcessCpuSeconds();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->ioc.run(); });
  for (std::thread& t : threads) t.join();
  const Clock::time_point finished = Clock::now();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_before;

  Stats total;
  for (auto& w : workers) total.Merge(w->stats);
  // A counted run reports its elapsed time as its duration.
  const double seconds = plan.requests > 0
                             ? std::chrono::duration<double>(finished - plan.start).count()
                             : o.duration_s;
  const double throughput = static_cast<double>(total.responses) / seconds;
  const Histogram& h = total.latency;
  const Histogram& lag = total.wake_lag;
  const char* mode = o.rate <= 0 ? "closed-loop" : o.spin ? "open-loop-spin" : "open-loop";
  // The generator's own CPU time per response it received (all threads, the whole run).
  const double cpu_us_per_response =
      total.all_responses == 0 ? 0 : cpu_seconds * 1e6 / static_cast<double>(total.all_responses);

  std::cout << absl::StrFormat(
      "ward-bench %s %s%s\n"
      "  %d connections, %d threads, %s, warmup %.1f s, duration %.1f s%s\n"
      "  responses   %d (%.1f req/s, %.2f MB/s)\n"
      "  latency ms  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n"
      "  errors      non-2xx %d  io %d  unexpected %d\n",
      o.scenario_name, o.url, plan.target, o.connections, o.threads, mode,
      plan.requests > 0 ? 0.0 : o.warmup_s, seconds,
      o.rate > 0 ? absl::StrFormat(", target %.0f req/s", o.rate) : "", total.responses, throughput,
      static_cast<double>(total.bytes_received) / seconds / 1e6,
      Ms(static_cast<uint64_t>(h.mean())), Ms(h.Quantile(0.5)), Ms(h.Quantile(0.9)),
      Ms(h.Quantile(0.99)), Ms(h.Quantile(0.999)), Ms(h.max()), total.non_2xx, total.io_errors,
      failures.load());
  if (total.non_2xx > 0) {
    std::cout << absl::StrFormat("  status      1xx %d 2xx %d 3xx %d 4xx %d 5xx %d\n",
                                 total.status_classes[1], total.status_classes[2],
                                 total.status_classes[3], total.status_classes[4],
                                 total.status_classes[5]);
  }
  std::cout << absl::StrFormat("  generator   CPU %.1f us per response", cpu_us_per_response);
  if (o.rate > 0) {
    std::cout << absl::StrFormat("; woke late for a send: p50 %s  p99 %s  p99.9 %s  max %s ms",
                                 Ms(lag.Quantile(0.5)), Ms(lag.Quantile(0.99)),
                                 Ms(lag.Quantile(0.999)), Ms(lag.max()));
  }
  std::cout << "\n";
  if (IsHandshakeScenario(plan.scenario)) {
    std::cout << absl::StrFormat("  handshakes  %d (%.1f /s), resumed %d\n", total.handshakes,
                                 static_cast<double>(total.handshakes) / seconds, total.resumed);
  }
  if (o.json) {
    std::cout << absl::StrFormat(
        "{\"scenario\":\"%s\",\"url\":\"%s\",\"target\":\"%s\",\"connections\":%d,"
        "\"threads\":%d,\"mode\":\"%s\",\"rate\":%.1f,\"duration_s\":%.3f,\"responses\":%d,"
        "\"throughput\":%.1f,\"latency_ms\":{\"mean\":%s,\"p50\":%s,\"p90\":%s,\"p99\":%s,"
        "\"p999\":%s,\"max\":%s},\"non_2xx\":%d,\"io_errors\":%d,\"unexpected\":%d,"
        "\"handshakes\":%d,\"resumed\":%d,\"generator_cpu_us\":%.2f,"
        "\"wake_lag_ms\":{\"p50\":%s,\"p99\":%s,\"p999\":%s,\"max\":%s,\"count\":%d}}\n",
        o.scenario_name, o.url, plan.target, o.connections, o.threads, mode, o.rate, seconds,
        total.responses, throughput, Ms(static_cast<uint64_t>(h.mean())), Ms(h.Quantile(0.5)),
        Ms(h.Quantile(0.9)), Ms(h.Quantile(0.99)), Ms(h.Quantile(0.999)), Ms(h.max()),
        total.non_2xx, total.io_errors, failures.load(), total.handshakes, total.resumed,
        cpu_us_per_response, Ms(lag.Quantile(0.5)), Ms(lag.Quantile(0.99)),
        Ms(lag.Quantile(0.999)), Ms(lag.max()), lag.count());
  }
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ward::bench

int main(int argc, char** argv) {
  ward::bench::Options o;
  CLI::App app{"ward-bench: HTTPS/1.1 load generator for Ward and nginx (docs/benchmarks.md)"};
  app.add_option("--url", o.url, "Server address, https://host:port")->required();
  app.add_option("--scenario", o.scenario_name,
                 "kv-read | kv-write | static | handshake-full | handshake-resumed | "
                 "approle-login | pki-issue")
      ->capture_default_str();
  app.add_option("--path", o.path,
                 "kv-*: Vault path without /v1/ (secret/data/bench); others: URL path (/1k.bin)");
  app.add_option("--token", o.token, "X-Vault-Token to send (default: $WARD_TOKEN, $VAULT_TOKEN)");
  app.add_option("--ca-file", o.ca_file, "PEM CA bundle that signs the server certificate");
  app.add_option("--cert", o.cert_file, "Client certificate (PEM) for mutual TLS");
  app.add_option("--key", o.key_file, "Client private key (PEM)");
  app.add_flag("--insecure", o.insecure, "Do not verify the server certificate");
  app.add_option("-c,--connections", o.connections, "Concurrent connections")
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "Threads, one event loop each")->capture_default_str();
  app.add_option("-d,--duration", o.duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "Unmeasured seconds before the window")
      ->capture_default_str();
  app.add_option("-R,--rate", o.rate,
                 "Total requests/s on a fixed schedule (open loop); 0 = closed loop")
      ->capture_default_str();
  app.add_flag("--spin", o.spin,
               "Open loop: wait for each send by yielding to the event loop instead of a timer "
               "(no timer or wake-up per request, but the generator's threads stay busy: for a "
               "generator on CPUs of its own)");
  app.add_option("--body-size", o.body_size, "kv-write body size in bytes")->capture_default_str();
  app.add_option("--body", o.body,
                 "approle-login, pki-issue: the JSON body to POST, or @FILE to read it from");
  app.add_option("--paths", o.paths,
                 "kv-write: same (all write --path), connection (--path-<conn>) or request "
                 "(a new secret per write, --path-<conn>-<seq>); kv-write and kv-read: index "
                 "(--path-<i>, i = 0, 1, ... across connections)")
      ->capture_default_str();
  app.add_option("--requests", o.requests,
                 "Send exactly this many requests in total, then stop (closed loop; replaces "
                 "--duration and --warmup; 0: use them)")
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "Seconds allowed per request")->capture_default_str();
  app.add_flag("--json", o.json, "Also print the results as one JSON line");
  CLI11_PARSE(app, argc, argv);
  if (o.token.empty()) {
    if (const char* t = std::getenv("WARD_TOKEN"); t != nullptr)
      o.token = t;
    else if (const char* v = std::getenv("VAULT_TOKEN"); v != nullptr)
      o.token = v;
  }
  absl::StatusOr<ward::bench::Plan> plan = ward::bench::MakePlan(o);
  if (!plan.ok()) {
    std::cerr << "ward-bench: " << plan.status().message() << "\n";
    return 2;
  }
  return ward::bench::RunBench(o, *std::move(plan));
}
