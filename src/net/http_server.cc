#include "net/http_server.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/random.h"
#include "net/internal/http_syntax.h"
#include "net/tls.h"

namespace ward::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// Connections, their coroutines and timers use the event loop's concrete executor type rather
// than the type-erased asio::any_io_executor, which costs a heap-free but not free copy and
// virtual-like dispatch on every operation and completion.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
template <typename T>
using Task = asio::awaitable<T, Executor>;

// The completion token for an operation awaited by a connection coroutine, with its error
// reported in `ec` instead of thrown.
auto Await(beast::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable_t<Executor>(), ec);
}

// The BIO through which OpenSSL reads and writes a connection's socket: OpenSSL's socket BIO
// with send(MSG_NOSIGNAL) instead of write(), so that a peer gone away cannot raise SIGPIPE in
// a program that has not ignored it. The BIO's data is the descriptor; it never closes it.
int SocketBioWrite(BIO* bio, const char* data, size_t size, size_t* written) {
  BIO_clear_retry_flags(bio);
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
  return 0;
}

int SocketBioRead(BIO* bio, char* data, size_t size, size_t* read) {
  BIO_clear_retry_flags(bio);
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  const ssize_t n = ::recv(fd, data, size, 0);
  if (n > 0) {
    *read = static_cast<size_t>(n);
    return 1;
  }
  if (n == 0) {
    BIO_set_flags(bio, BIO_FLAGS_IN_EOF);  // OpenSSL asks (BIO_eof) whether the peer closed
  } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

long SocketBioCtrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

// Made once, never freed (as OpenSSL's own methods). Thread-safe.
const BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ward socket");
    if (m == nullptr) return m;
    BIO_meth_set_write_ex(m, SocketBioWrite);
    BIO_meth_set_read_ex(m, SocketBioRead);
    BIO_meth_set_ctrl(m, SocketBioCtrl);
    return m;
  }();
  return method;
}

// A server-side TLS connection: OpenSSL reads and writes the non-blocking socket itself
// (SocketBioMethod), and the event loop is only asked to wait until the socket is ready when
// OpenSSL says it must (or, for a connection waiting for its next request, before reading).
// asio::ssl::stream instead puts a memory BIO pair between OpenSSL and the socket (every record
// is copied through it), runs a composed operation per read and write, and clears OpenSSL's
// error queue before every call (ERR_clear_error frees 32 pointers each time), which is done
// here only when the queue is not empty.
// Errors are reported as asio::ssl::stream's: asio::error::eof when the peer closed (with or
// without close_notify: asio::ssl::error::stream_truncated for the latter), socket errors as
// system errors, TLS errors in asio's SSL category, asio::error::bad_descriptor once the
// socket has been closed (by a deadline or Shutdown; the SSL object is then never used again,
// as the descriptor number may already belong to another connection).
// Not thread-safe: used on the connection's event loop only.
class TlsStream {
 public:
  // Takes `socket` (connected) and prepares a server-side TLS connection with `ctx`.
  TlsStream(Socket socket, SSL_CTX* ctx) : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {}
  ~TlsStream() { SSL_free(ssl_); }
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Attaches OpenSSL to the socket. Errors (in `ec`): out of memory, or a socket error.
  void Init(beast::error_code& ec) {
    if (ssl_ == nullptr) {
      ec = asio::error::no_memory;
      return;
    }
    socket_.non_blocking(true, ec);
    if (ec) return;
    const BIO_METHOD* method = SocketBioMethod();
    BIO* bio = method == nullptr ? nullptr : BIO_new(method);
    if (bio == nullptr) {
      ERR_clear_error();
      ec = asio::error::no_memory;
      return;
    }
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(socket_.native_handle())));
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);  // owned by ssl_ from here
    SSL_set_accept_state(ssl_);
    // As asio::ssl::stream: a write may return once some records are out, and idle
    // connections do not keep their record buffers.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                           SSL_MODE_RELEASE_BUFFERS);
    // Read what the socket has (up to a record buffer) in one recv, not a record header and
    // then its body in two.
    SSL_set_read_ahead(ssl_, 1);
  }

  Socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_; }

  Task<void> Handshake(beast::error_code& ec) {
    for (;;) {
      if (!Usable(ec)) co_return;
      const int ret = SSL_do_handshake(ssl_);
      if (ret == 1) co_return;
      if (!co_await WaitFor(ret, errno, ec)) co_return;
    }
  }

  // Waits until the peer has sent something, unless OpenSSL already holds unread bytes. For a
  // connection waiting for its next request, which has usually not been sent yet: a read
  // would fail (EAGAIN) before the wait anyway.
  Task<void> WaitUntilReadable(beast::error_code& ec) {
    if (SSL_has_pending(ssl_) == 1) co_return;
    if (!socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      co_return;
    }
    co_await socket_.async_wait(Socket::wait_read, Await(ec));
  }

  // Reads some application data into `buffer`; returns how much (0 with `ec` set on error).
  Task<size_t> ReadSome(asio::mutable_buffer buffer, beast::error_code& ec) {
    if (buffer.size() == 0) co_return 0;
    for (;;) {
      if (!Usable(ec)) co_return 0;
      size_t n = 0;
      const int ret = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
      if (ret == 1) co_return n;
      if (!co_await WaitFor(ret, errno, ec)) co_return 0;
    }
  }

  // Writes all of `data`, in as few records as OpenSSL makes of it.
  Task<void> Write(asio::const_buffer data, beast::error_code& ec) {
    const char* next = static_cast<const char*>(data.data());
    size_t left = data.size();
    while (left > 0) {
      if (!Usable(ec)) co_return;
      size_t n = 0;
      const int ret = SSL_write_ex(ssl_, next, left, &n);
      if (ret == 1) {
        next += n;
        left -= n;
        continue;
      }
      if (!co_await WaitFor(ret, errno, ec)) co_return;
    }
  }

  // Sends close_notify and waits for the peer's (as asio::ssl::stream::async_shutdown).
  Task<void> Shutdown(beast::error_code& ec) {
    bool sent = false;
    for (;;) {
      if (!Usable(ec)) co_return;
      const int ret = SSL_shutdown(ssl_);
      if (ret == 1) co_return;
      if (ret == 0) {
        if (!sent) {  // ours is out: call again to read the peer's
          sent = true;
          continue;
        }
        co_await socket_.async_wait(Socket::wait_read, Await(ec));
        if (ec) co_return;
        continue;
      }
      if (!co_await WaitFor(ret, errno, ec)) co_return;
    }
  }

 private:
  // Whether the socket is still open (else sets `ec`), with OpenSSL's error queue emptied for
  // the call that follows (SSL_get_error needs that).
  bool Usable(beast::error_code& ec) {
    if (!socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      return false;
    }
    if (ERR_peek_error() != 0) ERR_clear_error();
    return true;
  }

  // After an SSL call returned `ret` (failure), with `sys_error` the errno it left: waits until
  // the socket is ready for what OpenSSL wants and returns true, or sets `ec` and returns false.
  Task<bool> WaitFor(int ret, int sys_error, beast::error_code& ec) {
    const int ssl_error = SSL_get_error(ssl_, ret);
    switch (ssl_error) {
      case SSL_ERROR_WANT_READ:
        co_await socket_.async_wait(Socket::wait_read, Await(ec));
        co_return !ec;
      case SSL_ERROR_WANT_WRITE:
        co_await socket_.async_wait(Socket::wait_write, Await(ec));
        co_return !ec;
      case SSL_ERROR_ZERO_RETURN:
        ec = asio::error::eof;
        break;
      case SSL_ERROR_SYSCALL:
        ec = sys_error != 0 ? beast::error_code(sys_error, asio::error::get_system_category())
                            : beast::error_code(asio::error::eof);
        break;
      default: {
        const unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          ec = asio::ssl::error::stream_truncated;
        } else if (e != 0) {
          ec = beast::error_code(static_cast<int>(e), asio::error::get_ssl_category());
        } else {
          ec = beast::error_code(ssl_error, asio::error::get_ssl_category());
        }
        break;
      }
    }
    ERR_clear_error();
    co_return false;
  }

  Socket socket_;
  SSL* const ssl_;
};
using Stream = TlsStream;

// How much to read at once while waiting for the first byte of a request.
constexpr size_t kReadChunk = 16 * 1024;
// A response up to this size (head and body) is copied into one buffer and so sent with one
// SSL_write (a response under 16 KiB: one TLS record, one send); a bigger body is sent from
// where it is, after the head.
constexpr size_t kCoalesceLimit = 64 * 1024;
// Pause after a failed accept (e.g. out of file descriptors) before trying again.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);
// Handler threads by default: enough for that many durable writes to wait on one group commit.
constexpr int kMinWorkerThreads = 32;
// How long to wait for the peer's close_notify after we sent ours.
constexpr auto kTlsCloseTimeout = std::chrono::seconds(2);

constexpr char kJson[] = "application/json";
constexpr char kBodyTooLarge[] = R"({"errors":["http: request body too large"]})";
constexpr char kHeaderTooLarge[] = R"({"errors":["http: request header too large"]})";
constexpr char kMalformed[] = R"({"errors":["http: malformed request"]})";
constexpr char kInternalError[] = R"({"errors":["internal error"]})";

auto ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// What a connection does after one request.
enum class Next { kNextRequest, kClose, kDrop };

std::string AddressText(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

// Headers the server itself controls; a handler's copies are dropped.
bool IsFramingHeader(std::string_view name) {
  return absl::EqualsIgnoreCase(core::ToAbsl(name), "content-length") ||
         absl::EqualsIgnoreCase(core::ToAbsl(name), "transfer-encoding") ||
         absl::EqualsIgnoreCase(core::ToAbsl(name), "connection");
}

HttpResponse JsonError(int status, std::string_view body) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", kJson);
  response.body = std::string(body);
  return response;
}

// Writes the head of `response` (status line and header fields, through the
// empty line) into `out`, replacing its contents: always Content-Length (except where HTTP
// forbids a body), Connection per `keep_alive` (as Beast's message::keep_alive would set it for
// `version`), and the handler's fields in their order, minus the framing ones and any that are
// not valid HTTP. Returns whether the body is to be sent (not for HEAD, 204 or 304).
// An invalid status is replaced by a 500 JSON error in `response`.
// The last decimal digit of `n`.
char Digit(unsigned n) { return static_cast<char>('0' + n % 10); }

bool SerializeHead(HttpResponse& response, unsigned version, bool keep_alive, bool head,
                   std::string_view request_id, std::string& out) {
  if (response.status < 200 || response.status > 999) {
    spdlog::error("request_id={} handler returned an invalid status {}", request_id,
                  response.status);
    response = JsonError(500, kInternalError);
  }
  const auto status = static_cast<unsigned>(response.status);
  const http::status known = http::int_to_status(status);
  const beast::string_view reason =
      known == http::status::unknown ? beast::string_view("Unknown") : http::obsolete_reason(known);
  out.clear();
  // The version is the request's; the status has three digits here.
  char start[] = "HTTP/1.1 200 ";
  start[5] = Digit(version / 10);
  start[7] = Digit(version);
  start[9] = Digit(status / 100);
  start[10] = Digit(status / 10);
  start[11] = Digit(status);
  out.append(start, sizeof(start) - 1);
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (IsFramingHeader(name)) continue;
    if (!internal::IsHttpToken(name) || !internal::IsHttpFieldValue(value)) {
      spdlog::error("request_id={} handler returned an invalid header field; dropped", request_id);
      continue;
    }
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
  }
  if (version < 11) {
    if (keep_alive) out.append("Connection: keep-alive\r\n");
  } else if (!keep_alive) {
    out.append("Connection: close\r\n");
  }
  const bool body_forbidden = response.status == 204 || response.status == 304;
  if (!body_forbidden) {
    out.append("Content-Length: ");
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), response.body.size());
    out.append(digits, end);
    out.append("\r\n");
  }
  out.append("\r\n");
  return !body_forbidden && !head;
}

std::string Text(beast::string_view s) { return std::string(s.data(), s.size()); }

// The request target without its query string, for logs: a query may carry secrets (tokens,
// wrapped values).
std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// Reads until `buffer` holds the whole request header (or more than `limit` bytes, which the
// parser then refuses as too large), so that the raw bytes can be checked for what Beast would
// accept silently: a folded header line (obs-fold) sets `ec` to http::error::bad_value.
Task<void> ReadWholeHeader(Stream& stream, beast::flat_buffer& buffer, size_t limit,
                           beast::error_code& ec) {
  size_t scanned = 0;
  for (;;) {
    const std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    const size_t end = internal::HeaderEnd(data, scanned);
    if (end != std::string_view::npos) {
      if (internal::HasObsFold(data.substr(0, end))) ec = http::error::bad_value;
      co_return;
    }
    if (data.size() > limit) co_return;
    scanned = data.size();
    const size_t n = co_await stream.ReadSome(buffer.prepare(kReadChunk), ec);
    if (ec) co_return;
    buffer.commit(n);
  }
}

// Reads into `parser` until it has the whole header (`header_only`) or message, as
// http::async_read_header and http::async_read would, with the same errors.
Task<void> ReadMessage(Stream& stream, beast::flat_buffer& buffer,
                       http::request_parser<http::string_body>& parser, bool header_only,
                       beast::error_code& ec) {
  if (!header_only) parser.eager(true);
  for (;;) {
    if (header_only ? parser.is_header_done() : parser.is_done()) co_return;
    if (buffer.size() > 0) {
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (!ec && used > 0) continue;
      if (ec && ec != http::error::need_more) co_return;
      ec = {};  // the parser needs more than `buffer` holds
    }
    const size_t size = beast::read_size(buffer, 65536);
    if (size == 0) {
      ec = http::error::buffer_overflow;
      co_return;
    }
    const size_t n = co_await stream.ReadSome(buffer.prepare(size), ec);
    buffer.commit(n);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) {
        ec = http::error::end_of_stream;
        co_return;
      }
      ec = {};
      parser.put_eof(ec);  // partial_message unless the message ends at the end of stream
      co_return;
    }
    if (ec) co_return;
  }
}

// Refuses request framing that Beast accepts but that could make Ward and an intermediary
// disagree on where a request ends: a Transfer-Encoding other than exactly "chunked" (Beast
// would read no body and parse the body as the next request).
beast::error_code CheckFraming(const http::request_parser<http::string_body>& parser) {
  for (const auto& field : parser.get()) {
    if (field.name() == http::field::transfer_encoding &&
        !absl::EqualsIgnoreCase(core::ToAbsl(Text(field.value())), "chunked")) {
      return http::error::bad_transfer_encoding;
    }
  }
  return {};
}

// Parses the request header that ReadWholeHeader has put in `buffer` without another read (and
// so without the completion that http::async_read_header would post). Sets `ec` as
// async_read_header would. Returns false if the parser wants more bytes than `buffer` holds,
// for the caller to continue with async_read_header.
bool ParseBufferedHeader(http::request_parser<http::string_body>& parser,
                         beast::flat_buffer& buffer, beast::error_code& ec) {
  while (!parser.is_header_done()) {
    const size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      return false;
    }
    if (ec) return true;
    if (used == 0) return false;
  }
  return true;
}

constexpr char kHexDigits[] = "0123456789abcdef";

// A keyed permutation of [0, 2^62): a 4-round Feistel network on two 31-bit halves, so distinct
// inputs give distinct outputs whatever the round function. Not cryptographic: it only keeps
// request ids from reading as a request counter.
uint64_t Permute62(uint64_t x, const std::array<uint64_t, 4>& keys) {
  constexpr uint64_t kMask31 = (uint64_t{1} << 31) - 1;
  uint64_t left = (x >> 31) & kMask31;
  uint64_t right = x & kMask31;
  for (const uint64_t key : keys) {
    uint64_t f = (right ^ key) * 0x9E3779B97F4A7C15u;
    f ^= f >> 29;
    const uint64_t next = left ^ (f & kMask31);
    left = right;
    right = next;
  }
  return (left << 31) | right;
}

// The server's request ids: "pppppppp-pppp-8ppp-Vccc-cccccccccccc", an RFC 9562 version 8
// (custom) UUID where p is 60 random bits drawn once per server, V carries the variant bits and
// c is a 62-bit counter through Permute62. Unique for 2^62 requests; costs one relaxed atomic
// increment instead of a DRBG call per request (RandomUuid was ~10% of a KV read).
class RequestIds {
 public:
  // Draws the prefix and the permutation keys. Call before Next. Errors: as crypto::RandomBytes.
  absl::Status Seed() {
    WARD_ASSIGN_OR_RETURN(core::SecureBytes bytes, crypto::RandomBytes(8 + 8 * keys_.size()));
    uint64_t p = 0;
    for (size_t i = 0; i < 8; ++i) p = (p << 8) | bytes.data()[i];
    std::memcpy(keys_.data(), bytes.data() + 8, 8 * keys_.size());
    char hex[16];
    for (int i = 0; i < 16; ++i) hex[i] = kHexDigits[(p >> (60 - 4 * i)) & 0xf];
    std::memcpy(prefix_, hex, 8);
    prefix_[8] = '-';
    std::memcpy(prefix_ + 9, hex + 8, 4);
    prefix_[13] = '-';
    prefix_[14] = '8';
    std::memcpy(prefix_ + 15, hex + 12, 3);
    prefix_[18] = '-';
    return absl::OkStatus();
  }

  // The next id. Thread-safe.
  std::string Next() {
    constexpr uint64_t kMask62 = (uint64_t{1} << 62) - 1;
    const uint64_t c = Permute62(next_.fetch_add(1, std::memory_order_relaxed) & kMask62, keys_);
    std::string id(36, '-');
    std::memcpy(id.data(), prefix_, sizeof(prefix_));
    id[19] = kHexDigits[0x8 | (c >> 60)];
    for (int i = 0; i < 3; ++i) id[20 + i] = kHexDigits[(c >> (56 - 4 * i)) & 0xf];
    for (int i = 0; i < 12; ++i) id[24 + i] = kHexDigits[(c >> (44 - 4 * i)) & 0xf];
    return id;
  }

 private:
  char prefix_[19] = {};  // "pppppppp-pppp-8ppp-"
  std::array<uint64_t, 4> keys_{};
  std::atomic<uint64_t> next_{0};
};

}  // namespace

struct HttpServer::Runtime {
  // What Shutdown needs to reach a connection. The session coroutine owns the stream; this
  // only points at it while it is alive.
  //
  // It also keeps the connection's deadline. Moving a deadline costs no timer operation: one
  // timer per connection wakes up at the earliest at `tick` (no longer than any timeout the
  // server sets) after it was armed, and either closes the socket (the deadline has passed) or
  // waits again until the deadline or another tick, whichever comes first. A deadline set at
  // time t is at least t + tick away (except kTlsCloseTimeout, which re-arms the timer), so the
  // timer never wakes up late. A keep-alive request thus costs no timer operation, where a
  // beast::basic_stream costs a timer wait and a cancellation per read and per write.
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(Executor loop, Clock::duration tick_length)
        : executor(loop), tick(tick_length), timer_(loop) {}

    // Gives the I/O that follows until the next call `timeout` to complete: when it has
    // passed, the socket is closed (its pending operations fail) and timed_out is set.
    void ExpireAfter(Clock::duration timeout) {
      const Clock::time_point now = Clock::now();
      deadline_ =
          timeout < Clock::time_point::max() - now ? now + timeout : Clock::time_point::max();
      timed_out = false;
      if (armed_ <= deadline_) return;  // the timer wakes up first and waits again
      Arm(std::min(deadline_, now + tick));
    }
    // No deadline until the next ExpireAfter (while a handler or a hold runs).
    void ClearDeadline() { deadline_ = Clock::time_point::max(); }
    // The session has ended: no more timer, nothing to close, nothing to remember.
    void Stop() {
      socket = nullptr;
      memo.reset();
      deadline_ = Clock::time_point::max();
      armed_ = Clock::time_point::max();
      ++wait_generation_;
      timer_.cancel();
    }

    // The connection's event loop: one thread runs it, so its handlers never run concurrently.
    const Executor executor;
    const Clock::duration tick;
    // The rest is accessed only on `executor`.
    Socket* socket = nullptr;  // while the session has one
    // True while waiting for the first byte of a request (or during the TLS handshake or the
    // closing handshake): Shutdown may close the connection then without losing a request.
    bool idle = true;
    bool timed_out = false;  // the deadline set by the last ExpireAfter passed
    std::unique_ptr<ConnectionMemo> memo;  // HttpRequest::connection_memo, while the session runs

   private:
    void Arm(Clock::time_point when) {
      armed_ = when;
      timer_.expires_at(when);  // cancels a pending wait, whose handler sees a stale generation
      timer_.async_wait([self = shared_from_this(), generation = ++wait_generation_](
                            const beast::error_code&) { self->OnTimer(generation); });
    }
    void OnTimer(uint64_t generation) {
      if (generation != wait_generation_) return;  // cancelled: re-armed or stopped
      armed_ = Clock::time_point::max();
      if (socket == nullptr || deadline_ == Clock::time_point::max()) return;
      const Clock::time_point now = Clock::now();
      if (now >= deadline_) {
        timed_out = true;
        deadline_ = Clock::time_point::max();
        beast::error_code ec;
        socket->close(ec);
        return;
      }
      Arm(std::min(deadline_, now + tick));
    }

    Clock::time_point deadline_ = Clock::time_point::max();
    Clock::time_point armed_ = Clock::time_point::max();  // when the pending wait ends; max: none
    uint64_t wait_generation_ = 0;
    Timer timer_;
  };

  // Unregisters a connection when its session coroutine ends (or its frame is destroyed).
  class Registration {
   public:
    Registration(Runtime& runtime, uint64_t id) : runtime_(runtime), id_(id) {}
    ~Registration() { runtime_.Unregister(id_); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    Runtime& runtime_;
    const uint64_t id_;
  };

  struct Counters {
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_active{0};
    std::atomic<uint64_t> tls_handshake_failures{0};
    std::atomic<uint64_t> responses{0};
    std::atomic<uint64_t> header_too_large{0};
    std::atomic<uint64_t> body_too_large{0};
    std::atomic<uint64_t> malformed_requests{0};
    std::atomic<uint64_t> read_timeouts{0};
    std::atomic<uint64_t> handler_exceptions{0};
    std::atomic<uint64_t> handled_inline{0};
    std::atomic<uint64_t> handshakes_full{0};
    std::atomic<uint64_t> handshakes_resumed{0};
    std::atomic<uint64_t> client_cert_expired{0};
    std::atomic<uint64_t> client_cert_revoked{0};
    std::atomic<uint64_t> client_cert_untrusted{0};
    std::atomic<uint64_t> client_cert_other{0};
  };

  // One TLS context and its Asio wrapper. A connection holds the one that was current when it
  // was accepted until it ends, so ReloadTls never disturbs open connections.
  struct TlsGeneration {
    explicit TlsGeneration(std::shared_ptr<const TlsContext> context)
        : tls(std::move(context)), ssl_ctx(AddRef(tls->native_handle())) {}
    const std::shared_ptr<const TlsContext> tls;
    asio::ssl::context ssl_ctx;
  };

  Runtime(HttpServerOptions opts, Handler h, std::shared_ptr<const TlsContext> tls_context,
          std::shared_ptr<TicketKeyRing> ring,
          int io_thread_count, int worker_thread_count)
      : options(std::move(opts)),
        handler(std::move(h)),
        ticket_keys(std::move(ring)),
        loops(MakeLoops(io_thread_count)),
        acceptor(loops.front()->ioc),
        workers(static_cast<size_t>(worker_thread_count)),
        tls_generation(std::make_shared<TlsGeneration>(std::move(tls_context))) {}

  ~Runtime() { Shutdown(absl::ZeroDuration()); }

  // One event loop: an io_context run by exactly one thread, kept running while it has no
  // connection by `work` (released by Shutdown).
  struct Loop {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  };
  static std::vector<std::unique_ptr<Loop>> MakeLoops(int count) {
    std::vector<std::unique_ptr<Loop>> made;
    for (int i = 0; i < count; ++i) made.push_back(std::make_unique<Loop>());
    return made;
  }

  static SSL_CTX* AddRef(SSL_CTX* ctx) {
    SSL_CTX_up_ref(ctx);  // asio::ssl::context takes ownership of one reference
    return ctx;
  }

  absl::Status Listen(const tcp::endpoint& endpoint);
  void Start();
  void Shutdown(absl::Duration deadline);
  HttpServerStats Stats() const;

  asio::awaitable<void> AcceptLoop();
  Task<void> Session(std::shared_ptr<Connection> conn, uint64_t id, Socket socket);
  Task<void> Serve(Connection& conn, Socket socket);
  // `out` is the connection's output buffer; `peer_certificates` is lent to the request and
  // given back.
  Task<Next> ServeRequest(Connection& conn, Stream& stream, beast::flat_buffer& buffer,
                          std::string& out, const std::string& remote_address, uint16_t remote_port,
                          std::vector<std::string>& peer_certificates);
  // Counts a handshake failure caused by the client certificate (SSL_get_verify_result).
  void CountClientCertFailure(long x509_error);
  absl::Status ReloadTls(TlsServerOptions tls_options);
  // Sends the response head in `out` and then, if `send_body`, `body`, under write_timeout.
  // Returns whether all of it was written.
  Task<bool> Write(Connection& conn, Stream& stream, std::string& out, bool send_body,
                   std::string_view body);
  HttpResponse Invoke(const HttpRequest& request);
  // options.inline_handler's answer for `request`: nullopt if there is none or it declines,
  // a 500 if it throws.
  std::optional<HttpResponse> InvokeInline(const HttpRequest& request);
  // The response for a request the parser rejected, or nullopt if nothing should be sent
  // (the peer went away or was too slow). Counts the outcome.
  std::optional<HttpResponse> Rejection(const beast::error_code& ec);

  std::shared_ptr<Connection> Register(Executor executor, uint64_t& id);
  void Unregister(uint64_t id);
  // Closes every registered connection, or only the idle ones.
  void CloseConnections(bool idle_only);
  void RunLoop(asio::io_context& ioc);
  // Waits for `hold` to release a response (HttpResponse::hold); returns what to send.
  Task<HttpResponse> AwaitHold(HttpResponse response);

  const HttpServerOptions options;
  const Handler handler;
  const std::shared_ptr<TicketKeyRing> ticket_keys;  // shared by every TLS generation
  // Whether a held response's release may still post to a loop (AwaitHold); closed for good
  // by Shutdown after the loops have stopped.
  struct ReleaseGate {
    absl::Mutex mu;
    bool open ABSL_GUARDED_BY(mu) = true;
  };
  const std::shared_ptr<ReleaseGate> release_gate = std::make_shared<ReleaseGate>();
  uint16_t bound_port = 0;  // set by Listen
  Counters counters;
  RequestIds request_ids;  // seeded by Create before Start
  // The shortest timeout a request may be given (see Connection).
  const Clock::duration tick =
      std::min({ToChrono(options.read_timeout), ToChrono(options.write_timeout),
                ToChrono(options.idle_timeout), ToChrono(options.handshake_timeout)});
  std::atomic<bool> stopping{false};  // set (under mu) when Shutdown begins

  // Declared before the Asio objects so that they outlive any session frame those destroy.
  mutable absl::Mutex mu;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  uint64_t next_id ABSL_GUARDED_BY(mu) = 0;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections ABSL_GUARDED_BY(mu);

  // One per usable CPU by default. Each connection lives on one loop for its whole life (assigned
  // round-robin as accepted), so a request that is served inline never changes threads.
  std::vector<std::unique_ptr<Loop>> loops;
  size_t next_loop = 0;    // the acceptor's loop only
  tcp::acceptor acceptor;  // runs on loops[0]; used only there once started
  asio::thread_pool workers;
  std::vector<std::thread> io_threads;  // written by Start, joined by Shutdown
  // The TLS context for new connections (ReloadTls replaces it).
  std::shared_ptr<TlsGeneration> tls_generation ABSL_GUARDED_BY(mu);
};

absl::Status HttpServer::Runtime::Listen(const tcp::endpoint& endpoint) {
  const std::string where = absl::StrCat(AddressText(endpoint.address()), ":", endpoint.port());
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec == asio::error::address_in_use) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", where, ": ", ec.message()));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", where, ": ", ec.message()));
  }
  const tcp::endpoint local = acceptor.local_endpoint(ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the bound address of ", where, ": ", ec.message()));
  }
  bound_port = local.port();
  return absl::OkStatus();
}

void HttpServer::Runtime::Start() {
  absl::MutexLock lock(&mu);
  if (started || shut_down) return;
  started = true;
  asio::co_spawn(acceptor.get_executor(), AcceptLoop(), [](std::exception_ptr e) {
    if (e) spdlog::error("http accept loop ended by an exception");
  });
  for (auto& loop : loops) {
    io_threads.emplace_back([this, ioc = &loop->ioc] { RunLoop(*ioc); });
  }
}

void HttpServer::Runtime::RunLoop(asio::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // Sessions catch their own exceptions; this is a last line of defence.
      spdlog::error("http event loop: unexpected exception: {}", e.what());
    }
  }
}

void HttpServer::Runtime::Shutdown(absl::Duration deadline) {
  bool was_started;
  {
    absl::MutexLock lock(&mu);
    if (shut_down) return;
    shut_down = true;
    was_started = started;
    stopping.store(true);
  }
  if (was_started) {
    asio::post(acceptor.get_executor(), [this] {
      beast::error_code ec;
      acceptor.close(ec);
    });
  } else {
    beast::error_code ec;
    acceptor.close(ec);
  }
  CloseConnections(/*idle_only=*/true);
  bool drained;
  {
    absl::MutexLock lock(&mu);
    drained =
        mu.AwaitWithTimeout(absl::Condition(
                                +[](std::unordered_map<uint64_t, std::shared_ptr<Connection>>* c) {
                                  return c->empty();
                                },
                                &connections),
                            std::max(deadline, absl::ZeroDuration()));
  }
  if (!drained) CloseConnections(/*idle_only=*/false);
  // The event loops end once every session has ended, which for a session waiting on its
  // handler means once the handler returns; the worker pool keeps running until then.
  for (auto& loop : loops) loop->work.reset();
  for (std::thread& t : io_threads) t.join();
  io_threads.clear();
  workers.join();
  absl::MutexLock lock(&release_gate->mu);
  release_gate->open = false;
}

HttpServerStats HttpServer::Runtime::Stats() const {
  HttpServerStats s;
  s.connections_accepted = counters.connections_accepted.load();
  s.connections_active = counters.connections_active.load();
  s.tls_handshake_failures = counters.tls_handshake_failures.load();
  s.responses = counters.responses.load();
  s.header_too_large = counters.header_too_large.load();
  s.body_too_large = counters.body_too_large.load();
  s.malformed_requests = counters.malformed_requests.load();
  s.read_timeouts = counters.read_timeouts.load();
  s.handler_exceptions = counters.handler_exceptions.load();
  s.handled_inline = counters.handled_inline.load();
  s.handshakes_full = counters.handshakes_full.load();
  s.handshakes_resumed = counters.handshakes_resumed.load();
  s.client_cert_expired = counters.client_cert_expired.load();
  s.client_cert_revoked = counters.client_cert_revoked.load();
  s.client_cert_untrusted = counters.client_cert_untrusted.load();
  s.client_cert_other = counters.client_cert_other.load();
  return s;
}

void HttpServer::Runtime::CountClientCertFailure(long x509_error) {
  switch (ClassifyVerifyError(x509_error)) {
    case ClientCertFailure::kNone:
      return;
    case ClientCertFailure::kExpired:
      counters.client_cert_expired.fetch_add(1);
      return;
    case ClientCertFailure::kRevoked:
      counters.client_cert_revoked.fetch_add(1);
      return;
    case ClientCertFailure::kUntrusted:
      counters.client_cert_untrusted.fetch_add(1);
      return;
    case ClientCertFailure::kOther:
      counters.client_cert_other.fetch_add(1);
      return;
  }
}

absl::Status HttpServer::Runtime::ReloadTls(TlsServerOptions tls_options) {
  tls_options.ticket_keys = ticket_keys;
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const TlsContext> tls,
                        TlsContext::CreateServer(tls_options));
  auto generation = std::make_shared<TlsGeneration>(std::move(tls));
  std::shared_ptr<TlsGeneration> old;
  {
    absl::MutexLock lock(&mu);
    old = std::exchange(tls_generation, std::move(generation));
  }
  // `old` is freed here unless connections still hold it; outside the lock either way.
  return absl::OkStatus();
}

std::shared_ptr<HttpServer::Runtime::Connection> HttpServer::Runtime::Register(Executor executor,
                                                                               uint64_t& id) {
  absl::MutexLock lock(&mu);
  if (stopping.load()) return nullptr;
  id = next_id++;
  auto conn = std::make_shared<Connection>(executor, tick);
  connections.emplace(id, conn);
  counters.connections_accepted.fetch_add(1);
  counters.connections_active.fetch_add(1);
  return conn;
}

void HttpServer::Runtime::Unregister(uint64_t id) {
  absl::MutexLock lock(&mu);
  connections.erase(id);
  counters.connections_active.fetch_sub(1);
}

void HttpServer::Runtime::CloseConnections(bool idle_only) {
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    absl::MutexLock lock(&mu);
    for (const auto& [id, conn] : connections) snapshot.push_back(conn);
  }
  for (auto& conn : snapshot) {
    asio::post(conn->executor, [conn, idle_only] {
      if (conn->socket != nullptr && (conn->idle || !idle_only)) {
        beast::error_code ec;
        conn->socket->close(ec);
      }
    });
  }
}

asio::awaitable<void> HttpServer::Runtime::AcceptLoop() {
  asio::steady_timer retry(acceptor.get_executor());
  while (acceptor.is_open()) {
    const Executor loop = loops[next_loop++ % loops.size()]->ioc.get_executor();
    beast::error_code ec;
    Socket socket =
        co_await acceptor.async_accept(loop, asio::redirect_error(asio::use_awaitable, ec));
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) break;
    if (ec) {
      // Out of descriptors or memory, or the peer gave up before we accepted: keep serving.
      spdlog::warn("http accept failed: {}", ec.message());
      retry.expires_after(kAcceptRetryDelay);
      co_await retry.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Responses are written whole; without TCP_NODELAY, Nagle's algorithm and the peer's
    // delayed ACK hold back the last segment of a handshake or response by ~40 ms.
    socket.set_option(tcp::no_delay(true), ec);
    uint64_t id = 0;
    std::shared_ptr<Connection> conn = Register(loop, id);
    if (conn == nullptr) break;  // shutting down; the socket closes as it goes out of scope
    asio::co_spawn(loop, Session(std::move(conn), id, std::move(socket)),
                   [](std::exception_ptr) {});
  }
}

Task<void> HttpServer::Runtime::Session(std::shared_ptr<Connection> conn, uint64_t id,
                                        Socket socket) {
  Registration registration(*this, id);
  try {
    co_await Serve(*conn, std::move(socket));
  } catch (const std::exception& e) {
    // The edge of the connection: whatever a library threw ends this connection only.
    spdlog::warn("http connection ended by an exception: {}", e.what());
  }
}

Task<void> HttpServer::Runtime::Serve(Connection& conn, Socket socket) {
  if (stopping.load()) co_return;
  beast::error_code ec;
  std::string remote_address;
  uint16_t remote_port = 0;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (!ec) {
    remote_address = AddressText(remote.address());
    remote_port = remote.port();
  }
  std::shared_ptr<TlsGeneration> generation;
  {
    absl::MutexLock lock(&mu);
    generation = tls_generation;
  }
  Stream stream(std::move(socket), generation->ssl_ctx.native_handle());
  Socket& tcp = stream.socket();
  conn.socket = &tcp;
  // Stop the timer and clear the pointer before `stream` dies, even when unwinding.
  struct Unpublish {
    Connection& conn;
    ~Unpublish() { conn.Stop(); }
  } unpublish{conn};

  conn.ExpireAfter(ToChrono(options.handshake_timeout));
  stream.Init(ec);
  if (!ec) co_await stream.Handshake(ec);
  if (ec) {
    counters.tls_handshake_failures.fetch_add(1);
    CountClientCertFailure(SSL_get_verify_result(stream.native_handle()));
    spdlog::debug("http TLS handshake with {}:{} failed: {}", remote_address, remote_port,
                  conn.timed_out ? "timed out" : ec.message());
    tcp.close(ec);
    co_return;
  }
  SSL* ssl = stream.native_handle();
  (SSL_session_reused(ssl) == 1 ? counters.handshakes_resumed : counters.handshakes_full)
      .fetch_add(1);
  // Verified by the handshake; the same for every request on this connection.
  std::vector<std::string> peer_certificates = PeerCertificatesDer(ssl);

  beast::flat_buffer buffer;
  std::string out;  // the response being written; its capacity is kept for the next one
  Next next = Next::kDrop;
  for (;;) {
    conn.idle = true;
    if (stopping.load()) break;
    if (buffer.size() == 0) {
      conn.ExpireAfter(ToChrono(options.idle_timeout));
      co_await stream.WaitUntilReadable(ec);
      if (ec) break;
      const size_t n = co_await stream.ReadSome(buffer.prepare(kReadChunk), ec);
      if (ec) break;  // idle timeout, peer closed, or Shutdown closed an idle connection
      buffer.commit(n);
    }
    conn.idle = false;
    next = co_await ServeRequest(conn, stream, buffer, out, remote_address, remote_port,
                                 peer_certificates);
    if (next != Next::kNextRequest) break;
  }
  conn.idle = true;
  if (next == Next::kClose && !stopping.load()) {
    // Send close_notify and give the peer a moment to read the response and answer.
    conn.ExpireAfter(kTlsCloseTimeout);
    co_await stream.Shutdown(ec);
  }
  tcp.close(ec);
}

Task<Next> HttpServer::Runtime::ServeRequest(Connection& conn, Stream& stream,
                                             beast::flat_buffer& buffer, std::string& out,
                                             const std::string& remote_address,
                                             uint16_t remote_port,
                                             std::vector<std::string>& peer_certificates) {
  const Clock::time_point start = Clock::now();
  beast::error_code ec;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(options.header_limit, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(static_cast<uint64_t>(options.body_limit));

  // One deadline for the whole request, headers and body.
  conn.ExpireAfter(ToChrono(options.read_timeout));
  co_await ReadWholeHeader(stream, buffer, options.header_limit, ec);
  if (!ec && !ParseBufferedHeader(parser, buffer, ec)) {
    co_await ReadMessage(stream, buffer, parser, /*header_only=*/true, ec);
  }
  if (!ec) ec = CheckFraming(parser);
  if (!ec && !parser.is_done() && parser.get().version() == 11 &&
      absl::EqualsIgnoreCase(core::ToAbsl(Text(parser.get()[http::field::expect])),
                             "100-continue")) {
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    co_await stream.Write(asio::buffer(kContinue, sizeof(kContinue) - 1), ec);
  }
  if (!ec && !parser.is_done()) {
    co_await ReadMessage(stream, buffer, parser, /*header_only=*/false, ec);
  }
  if (ec && conn.timed_out) ec = beast::error::timeout;

  std::string request_id = request_ids.Next();

  if (ec) {
    std::optional<HttpResponse> rejection = Rejection(ec);
    if (!rejection.has_value()) co_return Next::kDrop;
    const int status = rejection->status;
    // The method and path are known if the headers parsed (a body that was too large).
    std::string method = "-";
    std::string path = "-";
    if (parser.is_header_done()) {
      method = Text(parser.get().method_string());
      path = PathOf(Text(parser.get().target()));
    }
    const bool send_body =
        SerializeHead(*rejection, 11, /*keep_alive=*/false, /*head=*/false, request_id, out);
    const bool written = co_await Write(conn, stream, out, send_body, rejection->body);
    const std::chrono::duration<double, std::milli> ms = Clock::now() - start;
    spdlog::debug("request_id={} method={} path={} status={} ms={:.3f} remote={}", request_id,
                  method, path, status, ms.count(), remote_address);
    co_return written ? Next::kClose : Next::kDrop;
  }

  http::request<http::string_body>& req = parser.get();
  HttpRequest request;
  request.method = Text(req.method_string());
  request.target = Text(req.target());
  request.headers.reserve(static_cast<size_t>(std::distance(req.begin(), req.end())));
  for (const auto& field : req) {
    auto& [name, value] =
        request.headers.emplace_back(Text(field.name_string()), Text(field.value()));
    absl::AsciiStrToLower(&name);
  }
  request.body = std::move(req.body());
  request.remote_address = remote_address;
  request.remote_port = remote_port;
  request.request_id = std::move(request_id);
  request.connection_memo = &conn.memo;
  // Lent for the handler call and taken back after it, rather than copied per request.
  request.peer_certificates_der = std::move(peer_certificates);
  struct GiveBack {
    std::vector<std::string>& to;
    HttpRequest& from;
    ~GiveBack() { to = std::move(from.peer_certificates_der); }
  } give_back{peer_certificates, request};
  const unsigned version = req.version();
  const bool head = req.method() == http::verb::head;
  const bool client_keep_alive = req.keep_alive();

  // A request the application marked as non-blocking is served right here on the event loop.
  // Any other handler call may block, so it runs on the worker pool; this coroutine resumes on
  // the connection's loop when it returns. Neither has a deadline (nor has a held response).
  HttpResponse response;
  if (std::optional<HttpResponse> served = InvokeInline(request)) {
    counters.handled_inline.fetch_add(1, std::memory_order_relaxed);
    response = std::move(*served);
  } else {
    conn.ClearDeadline();
    response = co_await asio::co_spawn(
        workers,
        [this, &request]() -> asio::awaitable<HttpResponse, asio::thread_pool::executor_type> {
          co_return Invoke(request);
        },
        asio::use_awaitable_t<Executor>());
  }
  if (response.hold) {
    conn.ClearDeadline();
    response = co_await AwaitHold(std::move(response));
  }

  const bool keep_alive = client_keep_alive && !stopping.load();
  const int status = response.status;
  const bool send_body =
      SerializeHead(response, version, keep_alive, head, request.request_id, out);
  const bool written = co_await Write(conn, stream, out, send_body, response.body);
  const std::chrono::duration<double, std::milli> ms = Clock::now() - start;
  spdlog::debug("request_id={} method={} path={} status={} ms={:.3f} remote={}", request.request_id,
                request.method, PathOf(request.target), status, ms.count(), remote_address);
  if (!written) co_return Next::kDrop;
  co_return keep_alive ? Next::kNextRequest : Next::kClose;
}

Task<bool> HttpServer::Runtime::Write(Connection& conn, Stream& stream, std::string& out,
                                      bool send_body, std::string_view body) {
  conn.ExpireAfter(ToChrono(options.write_timeout));
  beast::error_code ec;
  if (send_body && out.size() + body.size() <= kCoalesceLimit) {
    out.append(body);  // one TLS record, one sendmsg
    send_body = false;
  }
  co_await stream.Write(asio::buffer(out), ec);
  if (!ec && send_body) co_await stream.Write(asio::buffer(body.data(), body.size()), ec);
  if (out.capacity() > kCoalesceLimit) std::string().swap(out);  // do not keep a big one
  if (ec) co_return false;
  counters.responses.fetch_add(1, std::memory_order_relaxed);
  co_return true;
}

Task<HttpResponse> HttpServer::Runtime::AwaitHold(HttpResponse response) {
  // Shared with `release`, which may run on any thread, after this coroutine has given up and
  // even after the server is gone. It holds plain data only (so it may be destroyed anywhere)
  // and is read and written on the connection's loop alone: `release` just posts there.
  struct Wait {
    Timer* timer = nullptr;  // this coroutine's, while it waits
    bool done = false;       // released, or timed out
    std::optional<HttpResponse> replacement;
  };
  const Executor ex = co_await asio::this_coro::executor;
  Timer timer(ex, response.hold_timeout);
  auto wait = std::make_shared<Wait>();
  wait->timer = &timer;
  struct Unpublish {
    Wait& wait;
    ~Unpublish() { wait.timer = nullptr; }
  } unpublish{*wait};
  // Posts only while the gate is open: Shutdown closes it once the loops have stopped, before
  // they are destroyed.
  HttpResponse::Release release = [wait, ex, gate = release_gate](
                                      std::optional<HttpResponse> replacement) {
    absl::MutexLock lock(&gate->mu);
    if (!gate->open) return;
    asio::post(ex, [wait, replacement = std::move(replacement)]() mutable {
      if (wait->done) return;
      wait->done = true;
      wait->replacement = std::move(replacement);
      if (wait->timer != nullptr) wait->timer->cancel();
    });
  };
  std::function<void(HttpResponse::Release)> hold = std::move(response.hold);
  response.hold = nullptr;
  try {
    hold(std::move(release));
  } catch (const std::exception& e) {
    spdlog::error("http response hold threw: {}", e.what());
    wait->done = true;
    counters.handler_exceptions.fetch_add(1);
    co_return JsonError(500, kInternalError);
  }
  beast::error_code ec;
  co_await timer.async_wait(Await(ec));
  if (!wait->done) {  // the deadline passed first
    wait->done = true;
    if (response.hold_timeout_response != nullptr) co_return *response.hold_timeout_response;
    co_return JsonError(500, kInternalError);
  }
  if (wait->replacement.has_value()) co_return std::move(*wait->replacement);
  co_return response;
}

HttpResponse HttpServer::Runtime::Invoke(const HttpRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("request_id={} handler threw: {}", request.request_id, e.what());
  } catch (...) {
    spdlog::error("request_id={} handler threw a non-standard exception", request.request_id);
  }
  counters.handler_exceptions.fetch_add(1);
  return JsonError(500, kInternalError);
}

std::optional<HttpResponse> HttpServer::Runtime::InvokeInline(const HttpRequest& request) {
  if (!options.inline_handler) return std::nullopt;
  try {
    return options.inline_handler(request);
  } catch (const std::exception& e) {
    spdlog::error("request_id={} inline handler threw: {}", request.request_id, e.what());
  } catch (...) {
    spdlog::error("request_id={} inline handler threw a non-standard exception",
                  request.request_id);
  }
  counters.handler_exceptions.fetch_add(1);
  return JsonError(500, kInternalError);
}

std::optional<HttpResponse> HttpServer::Runtime::Rejection(const beast::error_code& ec) {
  if (ec == http::error::header_limit) {
    counters.header_too_large.fetch_add(1);
    return JsonError(431, kHeaderTooLarge);
  }
  if (ec == http::error::body_limit) {
    counters.body_too_large.fetch_add(1);
    return JsonError(413, kBodyTooLarge);
  }
  if (ec == beast::error::timeout) {
    counters.read_timeouts.fetch_add(1);
    return std::nullopt;
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return std::nullopt;  // the peer closed mid-request
  }
  if (ec.category() == beast::error_code(http::error::bad_method).category()) {
    counters.malformed_requests.fetch_add(1);
    return JsonError(400, kMalformed);
  }
  return std::nullopt;  // a transport or TLS error: nobody to answer
}

HttpServer::HttpServer(std::unique_ptr<Runtime> runtime) : runtime_(std::move(runtime)) {}

HttpServer::~HttpServer() { runtime_->Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                               Handler handler) {
  if (handler == nullptr) return absl::InvalidArgumentError("http server: no handler");
  if (options.header_limit == 0 || options.body_limit == 0) {
    return absl::InvalidArgumentError("http server: header and body limits must be positive");
  }
  if (options.read_timeout <= absl::ZeroDuration() ||
      options.write_timeout <= absl::ZeroDuration() ||
      options.idle_timeout <= absl::ZeroDuration() ||
      options.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http server: timeouts must be positive");
  }
  if (options.io_threads < 0 || options.worker_threads < 0) {
    return absl::InvalidArgumentError("http server: thread counts must not be negative");
  }
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("http server: \"", options.address, "\" is not an IP address"));
  }
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<TicketKeyRing> ring, TicketKeyRing::Create());
  options.tls.ticket_keys = ring;
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const TlsContext> tls,
                        TlsContext::CreateServer(options.tls));
  const int cores = UsableCpus();
  const int io_threads = options.io_threads > 0 ? options.io_threads : cores;
  const int worker_threads =
      options.worker_threads > 0 ? options.worker_threads : std::max(kMinWorkerThreads, 4 * cores);
  const uint16_t port = options.port;
  auto runtime = std::make_unique<Runtime>(std::move(options), std::move(handler), std::move(tls),
                                           std::move(ring),
                                           io_threads, worker_threads);
  WARD_RETURN_IF_ERROR(runtime->request_ids.Seed());
  WARD_RETURN_IF_ERROR(runtime->Listen(tcp::endpoint(address, port)));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(runtime)));
}

uint16_t HttpServer::port() const { return runtime_->bound_port; }

int HttpServer::event_loops() const { return static_cast<int>(runtime_->loops.size()); }

int UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void HttpServer::Start() { runtime_->Start(); }

void HttpServer::Shutdown(absl::Duration deadline) { runtime_->Shutdown(deadline); }

HttpServerStats HttpServer::Stats() const { return runtime_->Stats(); }

absl::Status HttpServer::ReloadTls(TlsServerOptions options) {
  return runtime_->ReloadTls(std::move(options));
}

absl::Status HttpServer::SetTicketKeys(std::vector<TicketKey> keys) {
  return runtime_->ticket_keys->Set(std::move(keys));
}

}  // namespace ward::net
