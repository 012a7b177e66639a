// Network abuse against the real `ward server` binary: slow and idle clients, oversized and
// malformed requests, request smuggling shapes, path traversal, invalid UTF-8, token guessing,
// and the process hardening a production server applies at start. Raw TLS sockets send the
// byte sequences an HTTP client library refuses to produce. docs/security.md maps each
// protection to the test here that proves it.
//
// The timing bounds are deliberately loose (a sanitizer build on two shared cores must pass):
// they separate "served at once" from "stuck behind the attack", nothing finer.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;

// The fixture server's listener.read_timeout.
constexpr absl::Duration kReadTimeout = absl::Seconds(2);
// The fixture server's listener.max_request_size.
constexpr size_t kMaxRequestSize = 64 * 1024;
// A bound for "answered at once" that a sanitizer build on a loaded machine still meets.
constexpr absl::Duration kPromptly = absl::Seconds(1);
// The fixture server's listener.tls_handshake_timeout: long, so that connections which never
// start a handshake stay open for the whole idle-connection test even on a loaded machine
// (accepting 10,000 connections under sanitizers can take many seconds).
constexpr absl::Duration kHandshakeTimeout = absl::Seconds(90);
// How long the idle-connection test waits for all of them to be accepted.
constexpr absl::Duration kAcceptWindow = absl::Seconds(60);

absl::Duration Since(SteadyClock::time_point start) {
  return absl::FromChrono(SteadyClock::now() - start);
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A client TLS connection over a raw socket: sends exactly the bytes it is given. The server's
// certificate is not verified: these tests are about what the server does with the bytes.
class RawTls {
 public:
  // Connects to 127.0.0.1:`port` from the local address `source` and completes a TLS
  // handshake. Returns nullptr (and records a failure) if that fails.
  static std::unique_ptr<RawTls> Connect(uint16_t port, const std::string& source = "127.0.0.1") {
    static SSL_CTX* const ctx = [] {
      SSL_CTX* c = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      return c;
    }();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ADD_FAILURE() << "socket: " << std::strerror(errno);
      return nullptr;
    }
    std::unique_ptr<RawTls> conn(new RawTls(fd));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
      ADD_FAILURE() << "connect from " << source << ": " << std::strerror(errno);
      return nullptr;
    }
    ERR_clear_error();
    conn->ssl_ = SSL_new(ctx);
    SSL_set_fd(conn->ssl_, fd);
    if (SSL_connect(conn->ssl_) != 1) {
      ADD_FAILURE() << "TLS handshake failed";
      return nullptr;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return conn;
  }

  ~RawTls() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
  }

  int fd() const { return fd_; }
  bool closed() const { return closed_; }

  // Sends all of `bytes`. Returns false if the connection failed or the peer closed it.
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      // SSL_get_error reads this thread's error queue: clear what another connection left.
      ERR_clear_error();
      const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
      if (n > 0) {
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
        closed_ = true;
        return false;
      }
      pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
      if (::poll(&p, 1, 10000) <= 0) return false;
    }
    return true;
  }

  // Returns what arrives within `timeout`, stopping early once the peer closes (closed()).
  std::string Read(absl::Duration timeout) {
    std::string out;
    const absl::Time deadline = absl::Now() + timeout;
    char buf[16384];
    while (!closed_) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        closed_ = true;  // close_notify, EOF or reset
        break;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) == 0) break;
    }
    return out;
  }

  // Reads until the peer closes the connection or `timeout` passes.
  std::string ReadUntilClose(absl::Duration timeout = absl::Seconds(10)) { return Read(timeout); }

 private:
  explicit RawTls(int fd) : fd_(fd) {}
  int fd_;
  SSL* ssl_ = nullptr;
  bool closed_ = false;
};

struct RawResponse {
  int status = 0;
  std::string head;  // status line and header fields
  std::string body;

  // The value of header `name` (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const {
    std::istringstream lines(head);
    std::string line;
    while (std::getline(lines, line)) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      if (absl::EqualsIgnoreCase(line.substr(0, colon), core::ToAbsl(name))) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return "";
  }
};

// Splits `raw` into the responses it holds (Ward frames every body with Content-Length). A
// trailing fragment that is not a whole response is returned as one with status -1.
std::vector<RawResponse> ParseResponses(std::string_view raw) {
  std::vector<RawResponse> out;
  while (!raw.empty()) {
    RawResponse r;
    const size_t end = raw.find("\r\n\r\n");
    int status = 0;
    if (end == std::string_view::npos || !absl::StartsWith(core::ToAbsl(raw), "HTTP/1.") ||
        raw.size() < 12 || !absl::SimpleAtoi(core::ToAbsl(raw.substr(9, 3)), &status)) {
      r.status = -1;
      r.head = std::string(raw);
      out.push_back(std::move(r));
      break;
    }
    r.status = status;
    r.head = std::string(raw.substr(0, end));
    raw.remove_prefix(end + 4);
    size_t length = 0;
    if (std::string cl = r.Header("content-length");
        !cl.empty() && !absl::SimpleAtoi(cl, &length)) {
      r.status = -1;
    }
    length = std::min(length, raw.size());
    r.body = std::string(raw.substr(0, length));
    raw.remove_prefix(length);
    out.push_back(std::move(r));
  }
  return out;
}

// The "errors" array of a Vault error body, or {"<not a Vault error>"}.
std::vector<std::string> ErrorsOf(const std::string& body) {
  return Errors(Reply{0, body, "application/json"});
}

// Sends `request` on a fresh connection from `source` and returns every response the server
// writes before it closes the connection (or 10 s pass).
struct Exchange {
  std::vector<RawResponse> responses;
  bool closed = false;
};
Exchange SendRaw(uint16_t port, std::string_view request, const std::string& source = "127.0.0.1") {
  Exchange ex;
  auto conn = RawTls::Connect(port, source);
  if (conn == nullptr) return ex;
  conn->Send(request);
  ex.responses = ParseResponses(conn->ReadUntilClose());
  ex.closed = conn->closed();
  return ex;
}

// A request line plus Host and the given extra header lines (each ending in CRLF).
std::string Request(std::string_view method, std::string_view target, std::string_view headers = "",
                    std::string_view body = "") {
  return absl::StrCat(core::ToAbsl(method), " ", core::ToAbsl(target),
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\n", core::ToAbsl(headers), "\r\n",
                      core::ToAbsl(body));
}

// One line of /proc/<pid>/limits, e.g. "Max core file size        0     0     bytes".
std::vector<std::string> LimitsLine(int pid, std::string_view name) {
  std::istringstream lines(ReadFile(absl::StrCat("/proc/", pid, "/limits")));
  std::string line;
  while (std::getline(lines, line)) {
    if (!absl::StartsWith(line, core::ToAbsl(name))) continue;
    std::istringstream fields(line.substr(name.size()));
    std::vector<std::string> out;
    for (std::string f; fields >> f;) out.push_back(f);
    return out;  // {soft, hard, units}
  }
  return {};
}

// The VmLck value of /proc/<pid>/status in kB (-1 if absent).
int64_t LockedKb(int pid) {
  std::istringstream lines(ReadFile(absl::StrCat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(lines, line)) {
    if (!absl::StartsWith(line, "VmLck:")) continue;
    int64_t kb = -1;
    std::istringstream(line.substr(6)) >> kb;
    return kb;
  }
  return -1;
}

// Whether a process of the same user, without CAP_SYS_PTRACE in effect, may ptrace `pid`:
// 0 = yes, 1 = EPERM, 2 = another error. A process that cleared PR_SET_DUMPABLE refuses it.
int PtraceProbe(pid_t pid) {
  const pid_t child = ::fork();
  if (child == 0) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2] = {};
    if (::syscall(SYS_capget, &header, caps) != 0) ::_exit(2);
    caps[CAP_SYS_PTRACE / 32].effective &= ~(1u << (CAP_SYS_PTRACE % 32));
    if (::syscall(SYS_capset, &header, caps) != 0) ::_exit(2);
    if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0) ::_exit(0);  // exiting detaches
    ::_exit(errno == EPERM ? 1 : 2);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

// The ptrace probe against an ordinary (dumpable) process of ours: shows the probe itself works
// here, so a refusal from the server means the server is not dumpable.
int PtraceProbeOfDumpableProcess() {
  const pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::pause();
    ::_exit(0);
  }
  const int result = PtraceProbe(sleeper);
  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
  return result;
}

class AbuseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Writing to a connection the server has cut must fail with EPIPE, not kill the test.
    ::signal(SIGPIPE, SIG_IGN);
    dir_ = new core::TempDir();
    const std::string cert = dir_->Join("cert.pem");
    const std::string key = dir_->Join("key.pem");
    ASSERT_EQ(WriteSelfSignedServerCert(cert, key), absl::OkStatus());
    cert_ = new std::string(cert);
    WriteFile(dir_->Join("ward.yaml"),
              absl::StrCat("listener:\n  address: 127.0.0.1:0\n  tls_cert_file: ", cert,
                           "\n  tls_key_file: ", key, "\n  max_request_size: ", kMaxRequestSize,
                           "\n  read_timeout: ", absl::ToInt64Seconds(kReadTimeout),
                           "s\n  tls_handshake_timeout: ", absl::ToInt64Seconds(kHandshakeTimeout),
                           "s\nstorage:\n  path: ", dir_->Join("data"), "\nlog_level: debug\n"));

    // Start the server with a low soft limit on open files, as many systems default to: it
    // must raise its own soft limit to the hard one (ProcessIsHardened checks, and the 10,000
    // idle connections below need it). This process then raises its own for the same test.
    rlimit files{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
    rlimit low = files;
    low.rlim_cur = std::min<rlim_t>(1024, files.rlim_max);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    auto server = WardProcess::StartWithConfig(dir_->Join("ward.yaml"), dir_->Join("server.log"));
    files.rlim_cur = files.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &files), 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();

    auto client = server_->Client(cert);
    ASSERT_NE(client, nullptr);
    Reply init =
        Call(*client, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
    ASSERT_EQ(init.status, 200) << init.body;
    json::value iv = Parse(init.body);
    root_ = new std::string(iv.at("root_token").as_string());
    Reply unseal =
        Call(*client, "PUT", "sys/unseal", "",
             absl::StrCat(R"({"key":")", std::string(iv.at("keys").at(0).as_string()), R"("})"));
    ASSERT_EQ(unseal.status, 200) << unseal.body;
    const std::string& addr = server_->addr();
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(addr.substr(addr.rfind(':') + 1), &port)) << addr;
    port_ = static_cast<uint16_t>(port);
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete root_;
    delete cert_;
    delete dir_;
  }

  void SetUp() override { ASSERT_NE(server_, nullptr); }

  std::unique_ptr<net::HttpClient> Client() const { return server_->Client(*cert_); }
  const std::string& root() const { return *root_; }
  std::string RootHeader() const { return absl::StrCat("X-Vault-Token: ", root(), "\r\n"); }

  // Asserts the server still serves a normal client promptly, and is still unsealed (no abuse
  // case may have reached sys/seal). Returns how long the health request took.
  absl::Duration ExpectServing() {
    auto client = Client();
    EXPECT_NE(client, nullptr);
    if (client == nullptr) return absl::InfiniteDuration();
    const SteadyClock::time_point start = SteadyClock::now();
    Reply health = Call(*client, "GET", "sys/health", "");
    const absl::Duration took = Since(start);
    EXPECT_EQ(health.status, 200) << health.body;
    EXPECT_LT(took, kPromptly);
    Reply status = Call(*client, "GET", "sys/seal-status", "");
    EXPECT_EQ(status.status, 200);
    EXPECT_EQ(Parse(status.body).at("sealed"), false) << "an abuse case sealed the server";
    Reply read = Call(*client, "GET", "secret/data/abuse/canary", root());
    EXPECT_TRUE(read.status == 200 || read.status == 404) << read.status << " " << read.body;
    return took;
  }

  static inline core::TempDir* dir_ = nullptr;
  static inline WardProcess* server_ = nullptr;
  static inline std::string* root_ = nullptr;
  static inline std::string* cert_ = nullptr;
  static inline uint16_t port_ = 0;
};

TEST_F(AbuseTest, ProcessIsHardened) {
  const int pid = server_->pid();
  // Open files: the soft limit was raised to the hard one (it started at 1024).
  std::vector<std::string> files = LimitsLine(pid, "Max open files");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], files[1]);
  // No core files: soft and hard limits are 0 (this environment's hard limit is not).
  EXPECT_EQ(LimitsLine(pid, "Max core file size"), (std::vector<std::string>{"0", "0", "bytes"}));
  // Not dumpable: a same-user process without CAP_SYS_PTRACE cannot attach.
  ASSERT_EQ(PtraceProbeOfDumpableProcess(), 0) << "the ptrace probe does not work here";
  EXPECT_EQ(PtraceProbe(pid), 1);
  // Memory locked, or a warning saying why not (no CAP_IPC_LOCK, sanitizer build).
  const std::string log = server_->Log();
  EXPECT_TRUE(LockedKb(pid) > 0 || absl::StrContains(log, "event=mlock_unavailable"))
      << "VmLck " << LockedKb(pid) << " kB and no warning";
}

TEST(AbuseHardeningOptOutTest, ConfigTurnsCoreDumpProtectionAndMlockOff) {
  core::TempDir dir;
  const std::string cert = dir.Join("cert.pem");
  const std::string key = dir.Join("key.pem");
  CommandResult gen = RunCommand(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
      ShellQuote(key) + " -out " + ShellQuote(cert));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  WriteFile(dir.Join("ward.yaml"),
            absl::StrCat("listener:\n  address: 127.0.0.1:0\n  tls_cert_file: ", cert,
                         "\n  tls_key_file: ", key, "\nstorage:\n  path: ", dir.Join("data"),
                         "\ndisable_mlock: true\ndisable_core_dumps: false\n"));
  auto server = WardProcess::StartWithConfig(dir.Join("ward.yaml"), dir.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  const int pid = (*server)->pid();
  rlimit core{};
  ASSERT_EQ(::getrlimit(RLIMIT_CORE, &core), 0);
  std::vector<std::string> limits = LimitsLine(pid, "Max core file size");
  ASSERT_EQ(limits.size(), 3u);
  // Inherited from this process, not forced to 0.
  EXPECT_EQ(limits[1],
            core.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(core.rlim_max));
  ASSERT_EQ(PtraceProbeOfDumpableProcess(), 0) << "the ptrace probe does not work here";
  EXPECT_EQ(PtraceProbe(pid), 0);
  EXPECT_EQ(LockedKb(pid), 0);
  EXPECT_FALSE(absl::StrContains((*server)->Log(), "event=mlock_unavailable"));
}

TEST_F(AbuseTest, SlowHeadersAreCutByReadTimeoutWhileOthersAreServed) {
  // Slowloris: several clients each send one byte of a request per second.
  constexpr int kSlowClients = 20;
  const std::string request =
      Request("GET", "/v1/sys/health", "X-Padding: " + std::string(64, 'p') + "\r\n");
  struct Slow {
    std::unique_ptr<RawTls> conn;
    size_t sent = 0;
    SteadyClock::time_point first_byte;
    std::optional<absl::Duration> closed_after;
  };
  std::vector<Slow> slow(kSlowClients);
  for (Slow& s : slow) {
    s.conn = RawTls::Connect(port_);
    ASSERT_NE(s.conn, nullptr);
  }
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    const SteadyClock::time_point give_up = SteadyClock::now() + std::chrono::seconds(15);
    while (SteadyClock::now() < give_up) {
      bool any_open = false;
      for (Slow& s : slow) {
        if (s.closed_after) continue;
        any_open = true;
        if (s.sent < request.size() && s.conn->Send(std::string_view(request).substr(s.sent, 1))) {
          // The server's read_timeout runs from the first byte of a request.
          if (s.sent++ == 0) s.first_byte = SteadyClock::now();
        }
        // Pace: about one byte per second per client, and notice the server closing.
        s.conn->Read(absl::Milliseconds(1000 / kSlowClients));
        if (s.conn->closed()) s.closed_after = Since(s.first_byte);
      }
      if (!any_open) break;
    }
    done = true;
  });
  // Meanwhile normal clients are served promptly, again and again.
  int served = 0;
  while (!done) {
    ExpectServing();
    ++served;
  }
  trickler.join();
  EXPECT_GT(served, 0);
  for (const Slow& s : slow) {
    ASSERT_TRUE(s.closed_after.has_value()) << "a slow client was never cut off";
    EXPECT_LT(s.sent, request.size()) << "the slow request completed before the cut";
    EXPECT_GE(*s.closed_after, kReadTimeout - absl::Milliseconds(500));
    EXPECT_LT(*s.closed_after, kReadTimeout + absl::Seconds(4));
  }
  ExpectServing();
}

TEST_F(AbuseTest, SlowBodyIsCutByReadTimeout) {
  auto conn = RawTls::Connect(port_);
  ASSERT_NE(conn, nullptr);
  const SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(conn->Send(
      Request("PUT", "/v1/secret/data/abuse/slow-body", RootHeader() + "Content-Length: 100\r\n")));
  int sent = 0;
  while (!conn->closed() && Since(start) < absl::Seconds(15)) {
    if (conn->Send("x")) ++sent;
    conn->Read(absl::Seconds(1));
  }
  ASSERT_TRUE(conn->closed());
  EXPECT_LT(sent, 100);
  EXPECT_GE(Since(start), kReadTimeout - absl::Milliseconds(500));
  EXPECT_LT(Since(start), kReadTimeout + absl::Seconds(4));
  // The half-sent secret was never written.
  auto client = Client();
  EXPECT_EQ(Call(*client, "GET", "secret/data/abuse/slow-body", root()).status, 404);
  ExpectServing();
}

TEST_F(AbuseTest, TenThousandIdleConnectionsDoNotStarveANormalRequest) {
  constexpr int kIdle = 10000;
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  ASSERT_GE(files.rlim_cur, static_cast<rlim_t>(kIdle + 200)) << "open-file limit too low here";

  // Plain TCP connections that never start their TLS handshake: the cheapest way to hold a
  // server's descriptors. They stay until kHandshakeTimeout closes them.
  std::vector<int> fds;
  fds.reserve(kIdle);
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int fd : fds) ::close(fd);
    }
  } close_all{fds};
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port_);
  ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  const SteadyClock::time_point start = SteadyClock::now();
  for (int i = 0; i < kIdle; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << "socket " << i << ": " << std::strerror(errno);
    fds.push_back(fd);
    const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote));
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << "connect " << i << ": " << std::strerror(errno);
  }
  // Wait until every connection is established and the server holds them all.
  std::vector<pollfd> pending;
  for (int fd : fds) pending.push_back({fd, POLLOUT, 0});
  while (!pending.empty() && Since(start) < kAcceptWindow) {
    ::poll(pending.data(), pending.size(), 100);
    std::vector<pollfd> still;
    for (const pollfd& p : pending) {
      if (p.revents & (POLLERR | POLLHUP)) FAIL() << "an idle connection failed";
      if (!(p.revents & POLLOUT)) still.push_back({p.fd, POLLOUT, 0});
    }
    pending.swap(still);
  }
  ASSERT_TRUE(pending.empty()) << pending.size() << " connections not established";
  const std::string fd_dir = absl::StrCat("/proc/", server_->pid(), "/fd");
  size_t server_fds = 0;
  while (Since(start) < kAcceptWindow) {
    server_fds = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
      ++server_fds;
    }
    if (server_fds >= static_cast<size_t>(kIdle)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling another process
  }
  EXPECT_GE(server_fds, static_cast<size_t>(kIdle)) << "the server did not accept them all";

  // A normal client (new connection, full handshake) is still answered promptly.
  auto client = Client();
  ASSERT_NE(client, nullptr);
  SteadyClock::time_point t = SteadyClock::now();
  Reply write = Call(*client, "PUT", "secret/data/abuse/idle", root(), R"({"data":{"v":"1"}})");
  EXPECT_EQ(write.status, 200) << write.body;
  EXPECT_LT(Since(t), kPromptly);
  t = SteadyClock::now();
  EXPECT_EQ(Call(*client, "GET", "secret/data/abuse/idle", root()).status, 200);
  EXPECT_LT(Since(t), kPromptly);
  EXPECT_LT(Since(start), kHandshakeTimeout) << "measured after the idle connections expired";

  for (int fd : fds) ::close(fd);
  fds.clear();
  // Once the server has let go of them, it is back to normal.
  const SteadyClock::time_point closed = SteadyClock::now();
  while (Since(closed) < kAcceptWindow) {
    server_fds = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
      ++server_fds;
    }
    if (server_fds < 1000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling another process
  }
  EXPECT_LT(server_fds, 1000u) << "the server kept the closed connections";
  ExpectServing();
}

TEST_F(AbuseTest, OversizedHeaderGets431AndTheConnectionCloses) {
  // The default header limit is 16 KiB.
  Exchange ex = SendRaw(
      port_, Request("GET", "/v1/sys/health", "X-Big: " + std::string(20 * 1024, 'h') + "\r\n"));
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 431);
  EXPECT_EQ(ErrorsOf(ex.responses[0].body).size(), 1u) << ex.responses[0].body;
  EXPECT_TRUE(ex.closed);
  ExpectServing();
}

TEST_F(AbuseTest, OversizedBodyGets413InVaultErrorShape) {
  // Declared too large: refused from the header, before any body byte is read.
  Exchange declared = SendRaw(
      port_, Request("PUT", "/v1/secret/data/abuse/big",
                     RootHeader() + absl::StrCat("Content-Length: ", kMaxRequestSize + 1, "\r\n")));
  ASSERT_EQ(declared.responses.size(), 1u);
  EXPECT_EQ(declared.responses[0].status, 413);
  EXPECT_EQ(ErrorsOf(declared.responses[0].body),
            std::vector<std::string>{"http: request body too large"});
  EXPECT_TRUE(declared.closed);

  // Chunked: refused at the chunk that crosses the limit.
  Exchange chunked = SendRaw(
      port_,
      Request("PUT", "/v1/secret/data/abuse/big", RootHeader() + "Transfer-Encoding: chunked\r\n",
              absl::StrCat(absl::Hex(kMaxRequestSize * 2), "\r\n", std::string(100, 'b'))));
  ASSERT_EQ(chunked.responses.size(), 1u);
  EXPECT_EQ(chunked.responses[0].status, 413);
  EXPECT_EQ(ErrorsOf(chunked.responses[0].body),
            std::vector<std::string>{"http: request body too large"});

  // Through an ordinary client, with the body actually sent.
  auto client = Client();
  Reply r = Call(*client, "PUT", "secret/data/abuse/big", root(),
                 absl::StrCat(R"({"data":{"v":")", std::string(kMaxRequestSize, 'v'), R"("}})"));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Errors(r), std::vector<std::string>{"http: request body too large"});
  EXPECT_EQ(Call(*client, "GET", "secret/data/abuse/big", root()).status, 404);
  ExpectServing();
}

TEST_F(AbuseTest, InvalidUtf8IsRejectedWith400) {
  auto client = Client();
  // Percent-encoded bytes that decode to invalid UTF-8, in the path and in the query.
  for (const std::string& target :
       {std::string("secret/data/abuse/%FF%FE"), std::string("secret/data/abuse/%C0%AF"),
        std::string("secret/data/abuse/%ED%A0%80"),
        std::string("secret/data/abuse/x?version=%FF")}) {
    Reply r = Call(*client, "PUT", target, root(), R"({"data":{"v":"1"}})");
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_EQ(Errors(r).size(), 1u) << r.body;
  }
  // A raw (unencoded) non-ASCII byte in the request target.
  Exchange raw = SendRaw(
      port_, Request("GET", "/v1/secret/data/abuse/\xff", RootHeader() + "Connection: close\r\n"));
  ASSERT_GE(raw.responses.size(), 1u);
  EXPECT_EQ(raw.responses[0].status, 400);
  // Invalid UTF-8 inside a JSON string, and a JSON key.
  for (const std::string& body : {std::string("{\"data\":{\"v\":\"\xff\xfe\"}}"),
                                  std::string("{\"data\":{\"\xc3\x28\":\"v\"}}")}) {
    Reply r = Call(*client, "PUT", "secret/data/abuse/utf8", root(), body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Errors(r).size(), 1u) << r.body;
  }
  EXPECT_EQ(Call(*client, "GET", "secret/data/abuse/utf8", root()).status, 404);
  // Valid multi-byte UTF-8 is fine.
  EXPECT_EQ(Call(*client, "PUT", "secret/data/abuse/%C3%A9t%C3%A9", root(),
                 "{\"data\":{\"v\":\"\xc3\xa9\"}}")
                .status,
            200);
  ExpectServing();
}

TEST_F(AbuseTest, PathTraversalNeverReachesAnotherRoute) {
  // Every one of these, if normalised the way a file system would, names sys/seal (or
  // sys/mounts), which the root token may call: the server must refuse them instead.
  const std::vector<std::string> targets = {
      "/v1/secret/data/../../sys/seal",
      "/v1/secret/data/%2e%2e/%2e%2e/sys/seal",
      "/v1/secret/data/%2E%2E/%2E%2E/sys/seal",
      "/v1/secret/data/..%2F..%2Fsys%2Fseal",
      "/v1/secret/data/%2e%2e%2f%2e%2e%2fsys%2fseal",
      "/v1/secret/data/x/../../../sys/seal",
      "/v1/./sys/seal",
      "/v1/sys/./seal",
      "/v1/secret/..",
      "/v1/secret/data/abuse/.%2e/.%2e/.%2e/sys/seal",
      "/v1/../v1/sys/seal",
      "/v1/%2e%2e/v1/sys/seal",
  };
  for (const std::string& target : targets) {
    Exchange ex = SendRaw(
        port_, Request("PUT", target, RootHeader() + "Content-Length: 0\r\nConnection: close\r\n"));
    ASSERT_GE(ex.responses.size(), 1u) << target;
    const int status = ex.responses[0].status;
    EXPECT_TRUE(status == 400 || status == 404) << target << " -> " << status;
    EXPECT_NE(ErrorsOf(ex.responses[0].body), std::vector<std::string>{"<no errors field>"});
  }
  ExpectServing();  // includes: still unsealed
  // Reads through a traversal do not reach sys/mounts either.
  Exchange mounts = SendRaw(port_, Request("GET", "/v1/secret/data/%2e%2e/%2e%2e/sys/mounts",
                                           RootHeader() + "Connection: close\r\n"));
  ASSERT_GE(mounts.responses.size(), 1u);
  EXPECT_EQ(mounts.responses[0].status, 400);
  EXPECT_FALSE(absl::StrContains(mounts.responses[0].body, "\"secret/\""));
}

TEST_F(AbuseTest, UnknownMethodsGet405) {
  for (const std::string method : {"FOO", "TRACE", "CONNECT", "OPTIONS", "PROPFIND", "M-SEARCH"}) {
    Exchange ex =
        SendRaw(port_, Request(method, "/v1/sys/health", RootHeader() + "Connection: close\r\n"));
    ASSERT_GE(ex.responses.size(), 1u) << method;
    EXPECT_EQ(ex.responses[0].status, 405) << method;
    EXPECT_EQ(ErrorsOf(ex.responses[0].body).size(), 1u) << method << ": " << ex.responses[0].body;
  }
  // TRACE must not echo the request (and with it the token) back.
  Exchange trace = SendRaw(
      port_, Request("TRACE", "/v1/secret/data/abuse/x", RootHeader() + "Connection: close\r\n"));
  ASSERT_GE(trace.responses.size(), 1u);
  EXPECT_EQ(trace.responses[0].status, 405);
  EXPECT_FALSE(absl::StrContains(trace.responses[0].body, root()));
  ExpectServing();
}

TEST_F(AbuseTest, RequestSmugglingShapesGet400AndTheConnectionCloses) {
  // Each shape is followed by a pipelined request that would seal the server if the two sides
  // of an intermediary disagreed about where the first request ends and Ward served it.
  const std::string smuggled =
      Request("PUT", "/v1/sys/seal", RootHeader() + "Content-Length: 0\r\n");
  struct Shape {
    std::string name;
    std::string request;
  };
  const std::vector<Shape> shapes = {
      {"Content-Length then Transfer-Encoding",
       Request("POST", "/v1/sys/health", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
               "0\r\n\r\n")},
      {"Transfer-Encoding then Content-Length",
       Request("POST", "/v1/sys/health", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
               "0\r\n\r\n")},
      {"two different Content-Length values",
       Request("POST", "/v1/sys/health", "Content-Length: 0\r\nContent-Length: 5\r\n", "hello")},
      {"a Content-Length list that disagrees",
       Request("POST", "/v1/sys/health", "Content-Length: 0, 5\r\n", "hello")},
      {"Transfer-Encoding gzip (not chunked)",
       Request("POST", "/v1/sys/health", "Transfer-Encoding: gzip\r\n")},
      {"Transfer-Encoding chunked, gzip (chunked not last)",
       Request("POST", "/v1/sys/health", "Transfer-Encoding: chunked, gzip\r\n")},
      {"Transfer-Encoding gzip, chunked",
       Request("POST", "/v1/sys/health", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n")},
      {"Transfer-Encoding identity",
       Request("POST", "/v1/sys/health", "Transfer-Encoding: identity\r\n")},
      {"Transfer-Encoding twice",
       Request("POST", "/v1/sys/health",
               "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")},
      {"Transfer-Encoding with a space before the colon",
       Request("POST", "/v1/sys/health", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n")},
      {"obs-fold in an ordinary header",
       Request("GET", "/v1/sys/health", "X-Folded: first\r\n second\r\n")},
      {"obs-fold hiding Transfer-Encoding",
       Request("POST", "/v1/sys/health", "X-Innocent: a\r\n Transfer-Encoding: chunked\r\n",
               "0\r\n\r\n")},
      {"obs-fold with a tab", Request("GET", "/v1/sys/health", "X-Folded: first\r\n\tsecond\r\n")},
      {"Transfer-Encoding value folded",
       Request("POST", "/v1/sys/health", "Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n")},
      {"negative Content-Length", Request("POST", "/v1/sys/health", "Content-Length: -1\r\n")},
      {"hexadecimal Content-Length",
       Request("POST", "/v1/sys/health", "Content-Length: 0x5\r\n", "hello")},
      {"chunk size overflow", Request("POST", "/v1/sys/health", "Transfer-Encoding: chunked\r\n",
                                      "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n")},
      {"bare LF line endings", "GET /v1/sys/health HTTP/1.1\nHost: 127.0.0.1\nX-A: b\n\n"},
  };
  for (const Shape& shape : shapes) {
    SCOPED_TRACE(shape.name);
    Exchange ex = SendRaw(port_, shape.request + smuggled);
    ASSERT_EQ(ex.responses.size(), 1u) << "the pipelined request was served";
    EXPECT_EQ(ex.responses[0].status, 400) << ex.responses[0].head;
    EXPECT_EQ(ErrorsOf(ex.responses[0].body), std::vector<std::string>{"http: malformed request"});
    EXPECT_TRUE(ex.closed) << "the connection stayed open";
    ExpectServing();  // also: the smuggled sys/seal never ran
  }
}

TEST_F(AbuseTest, PipelinedRequestsAreServedWhenWellFormed) {
  // The control for the smuggling test: the same pipelined pair, well formed, is served twice
  // (the second one here is harmless).
  const std::string second = Request("GET", "/v1/sys/seal-status", "Connection: close\r\n");
  Exchange ex =
      SendRaw(port_, Request("POST", "/v1/sys/health", "Content-Length: 2\r\n", "{}") + second);
  ASSERT_EQ(ex.responses.size(), 2u);
  EXPECT_EQ(ex.responses[0].status, 405);  // sys/health answers GET and HEAD only
  EXPECT_EQ(ex.responses[1].status, 200);
  EXPECT_TRUE(ex.closed);
}

TEST_F(AbuseTest, BadTokensAreRateLimitedPerClientAddress) {
  // A client at 127.0.0.3 guesses tokens: 403 for each miss until its bucket in the failed-login
  // limiter (burst 10, 10 per minute; the login routes' limiter, a bucket of its own for tokens)
  // is empty, then 429.
  auto from = [&](const std::string& source, const std::string& token) {
    Exchange ex =
        SendRaw(port_,
                Request("GET", "/v1/secret/data/abuse/x",
                        absl::StrCat(token.empty() ? "" : "X-Vault-Token: " + token + "\r\n",
                                     "Connection: close\r\n")),
                source);
    return ex.responses.empty() ? RawResponse{} : ex.responses[0];
  };
  for (int i = 0; i < 10; ++i) {
    RawResponse r = from("127.0.0.3", absl::StrCat("hvs.guess", i));
    EXPECT_EQ(r.status, 403) << "guess " << i;
    EXPECT_EQ(ErrorsOf(r.body), std::vector<std::string>{"permission denied"});
  }
  RawResponse limited = from("127.0.0.3", "hvs.guess-after-the-limit");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(ErrorsOf(limited.body).size(), 1u) << limited.body;
  int retry_after = 0;
  EXPECT_TRUE(absl::SimpleAtoi(limited.Header("retry-after"), &retry_after)) << limited.head;
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 7);  // one failure refills in 6 s
  // While limited, even a valid token from that address is refused: otherwise a guess that hit
  // would stand out from the misses.
  EXPECT_EQ(from("127.0.0.3", root()).status, 429);
  // Requests without a token are answered as before (they guess nothing).
  RawResponse anonymous = from("127.0.0.3", "");
  EXPECT_EQ(anonymous.status, 403) << anonymous.body;
  // Other addresses are not affected.
  EXPECT_EQ(from("127.0.0.4", root()).status, 404);
  EXPECT_EQ(from("127.0.0.4", "hvs.one-miss").status, 403);
  ExpectServing();
}

}  // namespace
}  // namespace ward::testing
