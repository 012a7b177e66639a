#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "api/core.h"
#include "api/handler.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "net/http_server.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_backend.h"

namespace ward::server {
namespace {

constexpr char kDevUnsealKeyFile[] = "dev-unseal-key";

// Blocks SIGTERM/SIGINT/SIGHUP in this thread (and the threads it starts later), so that
// WaitForShutdownSignal can take them synchronously.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForShutdownSignal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

absl::Status MakePrivateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

// Writes `contents` to `path` with mode `mode`, replacing the file atomically.
absl::Status WriteFile(const std::string& path, std::string_view contents, mode_t mode) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  ::fchmod(fileno(f), mode);
  bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (::fsync(fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<core::SecureBytes> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  core::SecureBytes out(data);
  core::SecureZero(data);
  return out;
}

// An exclusive lock on a data directory, so two servers never open the same database.
class DirLock {
 public:
  static absl::StatusOr<std::unique_ptr<DirLock>> Acquire(const std::string& dir) {
    std::string path = dir + "/ward.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", dir, " is in use by another ward server"));
    }
    return std::unique_ptr<DirLock>(new DirLock(fd));
  }
  ~DirLock() { ::close(fd_); }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

// Revokes expired tokens once a minute while unsealed, so they leave storage and memory.
class TokenTidier {
 public:
  explicit TokenTidier(api::Core& core)
      : thread_([this, &core] {
          while (!stop_.WaitForNotificationWithTimeout(absl::Minutes(1))) {
            auto state = core.State();
            if (state == nullptr) continue;
            auto revoked = state->tokens->RevokeExpired();
            if (!revoked.ok()) {
              spdlog::warn("event=token_tidy_failed error=\"{}\"", std::string(revoked.status().message()));
            } else if (*revoked > 0) {
              spdlog::info("event=token_tidy revoked={}", *revoked);
            }
          }
        }) {}
  ~TokenTidier() {
    stop_.Notify();
    thread_.join();
  }

 private:
  absl::Notification stop_;
  std::thread thread_;
};

// The parts every server mode shares once storage and TLS files are known. Members are
// destroyed in reverse order: HTTP first, storage and the directory lock last.
struct Node {
  std::unique_ptr<DirLock> lock;
  std::unique_ptr<storage::SqliteBackend> storage;
  std::unique_ptr<api::Core> core;
  std::unique_ptr<TokenTidier> tidier;
  std::unique_ptr<api::VaultHandler> handler;
  std::unique_ptr<net::HttpServer> http;
};

absl::StatusOr<Node> OpenNode(const std::string& data_dir) {
  Node node;
  WARD_RETURN_IF_ERROR(MakePrivateDir(data_dir));
  WARD_ASSIGN_OR_RETURN(node.lock, DirLock::Acquire(data_dir));
  storage::SqliteOptions sqlite;
  sqlite.path = data_dir + "/ward.db";
  WARD_ASSIGN_OR_RETURN(node.storage, storage::SqliteBackend::Create(sqlite));
  WARD_ASSIGN_OR_RETURN(node.core,
                        api::Core::Create(*node.storage, core::RealClock::Get(), api::Core::Options{}));
  node.tidier = std::make_unique<TokenTidier>(*node.core);
  return node;
}

absl::Status StartHttp(Node& node, const ListenerConfig& listener) {
  api::HandlerOptions handler_options;
  WARD_ASSIGN_OR_RETURN(handler_options.cluster_id, crypto::RandomUuid());
  handler_options.unauthenticated_metrics_access = listener.unauthenticated_metrics_access;
  node.handler = std::make_unique<api::VaultHandler>(*node.core, core::RealClock::Get(),
                                                     handler_options);
  WARD_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(listener.address, "listener.address"));
  net::HttpServerOptions http;
  http.address = host_port.first;
  http.port = host_port.second;
  http.tls_cert_file = listener.tls_cert_file;
  http.tls_key_file = listener.tls_key_file;
  http.body_limit = listener.max_request_size;
  http.read_timeout = listener.read_timeout;
  http.idle_timeout = listener.idle_timeout;
  api::VaultHandler* handler = node.handler.get();
  WARD_ASSIGN_OR_RETURN(node.http, net::HttpServer::Create(http, [handler](const net::HttpRequest& r) {
                          return handler->Handle(r);
                        }));
  node.http->Start();
  return absl::OkStatus();
}

std::string UrlFor(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat("https://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

void Drain(Node& node, absl::Duration grace, int sig) {
  spdlog::info("event=shutdown signal={} grace={}", sig, absl::FormatDuration(grace));
  node.http->Shutdown(grace);
  node.core->Seal();
  spdlog::info("event=stopped");
}

}  // namespace

absl::Status RunDevServer(const DevOptions& options) {
  WARD_RETURN_IF_ERROR(core::InitLogging(options.log_level));
  sigset_t signals = BlockShutdownSignals();
  WARD_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(options.listen_address, "--dev-listen-address"));

  std::string data_dir = options.data_dir;
  bool temporary = data_dir.empty();
  if (temporary) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ward-dev-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return absl::UnavailableError("cannot create a temporary dir");
    data_dir = tmpl;
  }
  std::string tls_dir = options.tls_cert_dir.empty() ? data_dir + "/tls" : options.tls_cert_dir;
  WARD_RETURN_IF_ERROR(MakePrivateDir(tls_dir));

  // A fresh dev CA and server certificate on every start.
  absl::Time now = absl::Now();
  WARD_ASSIGN_OR_RETURN(crypto::PemKeyPair ca,
                        crypto::GenerateSelfSignedCa("Ward dev CA", now, absl::Hours(24 * 30)));
  std::vector<std::string> ips = {"127.0.0.1", "::1"};
  if (host_port.first != "127.0.0.1" && host_port.first != "::1" && host_port.first != "localhost" &&
      host_port.first != "0.0.0.0" && host_port.first != "::") {
    ips.push_back(host_port.first);
  }
  WARD_ASSIGN_OR_RETURN(crypto::PemKeyPair leaf,
                        crypto::IssueServerCertificate(ca, "ward dev server", {"localhost"}, ips, now,
                                                       absl::Hours(24 * 30)));
  WARD_RETURN_IF_ERROR(WriteFile(tls_dir + "/ca.pem", ca.cert_pem, 0644));
  WARD_RETURN_IF_ERROR(WriteFile(tls_dir + "/server.pem", leaf.cert_pem, 0644));
  WARD_RETURN_IF_ERROR(WriteFile(tls_dir + "/server-key.pem", leaf.key_pem.view(), 0600));

  WARD_ASSIGN_OR_RETURN(Node node, OpenNode(data_dir));
  std::string key_file = data_dir + "/" + kDevUnsealKeyFile;
  WARD_ASSIGN_OR_RETURN(barrier::SealStatus seal, node.core->SealStatus());
  if (!seal.initialized) {
    WARD_ASSIGN_OR_RETURN(core::SecureBytes key, node.core->InitializeSingleKey());
    WARD_RETURN_IF_ERROR(WriteFile(key_file, key.view(), 0600));
    WARD_RETURN_IF_ERROR(node.core->UnsealWithKey(key));
  } else {
    WARD_ASSIGN_OR_RETURN(core::SecureBytes key, ReadSecretFile(key_file));
    WARD_RETURN_IF_ERROR(node.core->UnsealWithKey(key));
  }
  auto state = node.core->State();
  if (state == nullptr) return absl::InternalError("dev server did not unseal");
  // Root token: reuse the requested id if it already exists, otherwise mint one. Only the
  // token's hash is stored, so a restart without --dev-root-token-id prints a new token.
  std::string root_token = options.root_token_id;
  if (root_token.empty() || !state->tokens->Lookup(root_token).ok()) {
    WARD_ASSIGN_OR_RETURN(auth::IssuedToken issued, state->tokens->CreateRootToken(root_token));
    root_token = std::move(issued.token);
  }
  state.reset();

  ListenerConfig listener;
  listener.address = options.listen_address;
  listener.tls_cert_file = tls_dir + "/server.pem";
  listener.tls_key_file = tls_dir + "/server-key.pem";
  WARD_RETURN_IF_ERROR(StartHttp(node, listener));

  std::string url = UrlFor(host_port.first == "0.0.0.0" ? "127.0.0.1" : host_port.first,
                           node.http->port());
  std::string ca_path = std::filesystem::absolute(tls_dir + "/ca.pem").string();
  std::cout << "Ward dev server listening on " << url << "\n"
            << "Data directory: " << data_dir << (temporary ? " (temporary)" : "") << "\n"
            << "WARNING: dev mode keeps its unseal key beside the data; never use it for real secrets.\n\n"
            << "Root Token: " << root_token << "\n\n"
            << "Paste these to use the ward CLI (Vault clients read the VAULT_ names):\n"
            << "export WARD_ADDR='" << url << "'\n"
            << "export WARD_CACERT='" << ca_path << "'\n"
            << "export WARD_TOKEN='" << root_token << "'\n"
            << "export VAULT_ADDR='" << url << "'\n"
            << "export VAULT_CACERT='" << ca_path << "'\n"
            << "export VAULT_TOKEN='" << root_token << "'\n"
            << std::flush;
  core::SecureZero(root_token);

  int sig = WaitForShutdownSignal(signals);
  Drain(node, absl::Seconds(10), sig);
  node.http.reset();
  node.handler.reset();
  node.tidier.reset();
  node.core.reset();
  node.storage.reset();
  node.lock.reset();
  if (temporary) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  }
  return absl::OkStatus();
}

absl::Status RunServer(const Config& config) {
  WARD_RETURN_IF_ERROR(core::InitLogging(config.log_level));
  sigset_t signals = BlockShutdownSignals();
  WARD_ASSIGN_OR_RETURN(Node node, OpenNode(config.storage.path));
  WARD_RETURN_IF_ERROR(StartHttp(node, config.listener));
  WARD_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(config.listener.address, "listener.address"));
  WARD_ASSIGN_OR_RETURN(barrier::SealStatus seal, node.core->SealStatus());
  std::cout << "Ward server listening on " << UrlFor(host_port.first, node.http->port()) << "\n"
            << (seal.initialized ? "Sealed: unseal with `ward operator unseal`.\n"
                                 : "Not initialised: run `ward operator init`.\n")
            << std::flush;
  int sig = WaitForShutdownSignal(signals);
  Drain(node, config.shutdown_grace, sig);
  return absl::OkStatus();
}

}  // namespace ward::server
