#include "tests/integration/ward_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace ward::testing {
namespace {

// Extracts the value of "export NAME='value'" from a banner line.
bool ExportValue(const std::string& line, const std::string& name, std::string& out) {
  std::string prefix = "export " + name + "='";
  if (!absl::StartsWith(line, prefix) || line.back() != '\'') return false;
  out = line.substr(prefix.size(), line.size() - prefix.size() - 1);
  return true;
}

}  // namespace

std::string WardBinary() { return WARD_BINARY_PATH; }

bool PollUntil(const std::function<bool()>& condition, absl::Duration limit,
               absl::Duration interval) {
  const absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    if (condition()) return true;
    absl::SleepFor(interval);
  }
  return condition();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

absl::StatusOr<std::unique_ptr<WardProcess>> WardProcess::Spawn(const std::vector<std::string>& args,
                                                                const std::string& log_path,
                                                                bool dev) {
  int out_pipe[2];
  if (::pipe(out_pipe) != 0) return absl::UnavailableError("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) return absl::UnavailableError("fork failed");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) ::dup2(log, 2);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    std::vector<char*> argv;
    std::string bin = WardBinary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  std::unique_ptr<WardProcess> p(new WardProcess());
  p->pid_ = pid;
  p->log_path_ = log_path;

  std::string buffer;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  bool ready = false;
  while (!ready && absl::Now() < deadline) {
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int r = ::poll(&pfd, 1, 200);
    if (r > 0) {
      char chunk[4096];
      ssize_t n = ::read(out_pipe[0], chunk, sizeof(chunk));
      if (n <= 0) break;  // the child closed stdout: it exited
      buffer.append(chunk, static_cast<size_t>(n));
    }
    std::istringstream lines(buffer);
    std::string line;
    while (std::getline(lines, line)) {
      if (dev) {
        ExportValue(line, "WARD_ADDR", p->addr_);
        ExportValue(line, "WARD_CACERT", p->ca_cert_);
        if (ExportValue(line, "WARD_TOKEN", p->root_token_)) ready = true;
      } else if (size_t at = line.find("listening on "); at != std::string::npos) {
        p->addr_ = line.substr(at + 13);
        ready = true;
      }
    }
  }
  // Keep reading stdout in the background is unnecessary: the server prints nothing more.
  ::close(out_pipe[0]);
  if (!ready) {
    std::string log = p->Log();
    p->Kill();
    return absl::UnavailableError(absl::StrCat("ward did not start; stdout: ", buffer, "\nlog: ", log));
  }
  return p;
}

absl::StatusOr<std::unique_ptr<WardProcess>> WardProcess::StartDev(
    const std::string& data_dir, const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"server", "--dev", "--dev-listen-address=127.0.0.1:0",
                                   "--dev-data-dir=" + data_dir, "--log-level=debug"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return Spawn(args, data_dir + ".log", true);
}

absl::StatusOr<std::unique_ptr<WardProcess>> WardProcess::StartWithConfig(
    const std::string& config_path, const std::string& log_path) {
  return Spawn({"server", "--config", config_path}, log_path, false);
}

WardProcess::~WardProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      ::usleep(100 * 1000);
    }
    Kill();
  }
}

int WardProcess::Terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

void WardProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string WardProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<net::HttpClient> WardProcess::Client(const std::string& ca_file) const {
  net::HttpClientOptions options;
  options.address = addr_;
  options.ca_file = ca_file.empty() ? ca_cert_ : ca_file;
  auto client = net::HttpClient::Create(options);
  if (!client.ok()) return nullptr;
  return std::move(*client);
}

Reply Call(net::HttpClient& client, const std::string& method, const std::string& path,
           const std::string& token, const std::string& body, const std::string& content_type) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("X-Vault-Token", token);
  if (!body.empty()) headers.emplace_back("Content-Type", content_type);
  auto r = client.Send(method, "/v1/" + path, headers, body);
  if (!r.ok()) return Reply{-1, std::string(r.status().message()), ""};
  return Reply{r->status, r->body, std::string(r->Header("content-type"))};
}

boost::json::value Parse(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << body;
  return ec ? boost::json::value(boost::json::object{}) : v;
}

std::vector<std::string> Errors(const Reply& r) {
  boost::json::value v = Parse(r.body);
  if (!v.is_object() || !v.as_object().contains("errors") ||
      !v.as_object().at("errors").is_array()) {
    return {"<no errors field>"};
  }
  std::vector<std::string> out;
  for (const auto& e : v.as_object().at("errors").as_array()) {
    out.emplace_back(e.is_string() ? std::string(e.as_string()) : boost::json::serialize(e));
  }
  return out;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) result.output.append(buf, n);
  int status = ::pclose(f);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

absl::Status WriteSelfSignedServerCert(const std::string& cert_path, const std::string& key_path) {
  CommandResult gen = RunCommand(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      ShellQuote(key_path) + " -out " + ShellQuote(cert_path));
  if (gen.exit_code != 0) return absl::InternalError("openssl req failed: " + gen.output);
  return absl::OkStatus();
}

}  // namespace ward::testing
