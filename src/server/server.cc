#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "api/core.h"
#include "api/handler.h"
#include "api/mount_table.h"
#include "api/pki_trust.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "crypto/openssl_handles.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "net/http_server.h"
#include "net/session_cache.h"
#include "server/ticket_keys.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_backend.h"

namespace ward::server {
namespace {

constexpr char kDevUnsealKeyFile[] = "dev-unseal-key";

// AddressSanitizer and ThreadSanitizer map terabytes of shadow memory, which cannot be locked;
// their runtimes also turn mlockall into a no-op that reports success.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kShadowMemorySanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kShadowMemorySanitizer = true;
#else
constexpr bool kShadowMemorySanitizer = false;
#endif
#else
constexpr bool kShadowMemorySanitizer = false;
#endif

// Process-wide protections, applied once at start (docs/security.md, "Process hardening").
// Failures are warnings, not errors: each protection narrows an attack, none is required to
// serve correctly.
//
// - The open-file soft limit is raised to the hard limit: every connection is a descriptor,
//   and a low soft limit (1024 on many systems) lets a few idle clients lock everyone out.
// - `disable_core_dumps`: no core files (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0),
//   which also stops other processes of the same user from ptrace-attaching or reading
//   /proc/<pid>/mem: a core or a memory read of an unsealed server holds its keys.
// - `lock_memory`: mlockall, so keys are never written to swap. MCL_ONFAULT locks each page
//   when it is first touched instead of populating every mapping up front (thread stacks,
//   arena reservations): the same protection for every page that ever holds data, without
//   the memory cost. Skipped under AddressSanitizer and ThreadSanitizer, whose terabytes of
//   shadow mappings cannot be locked.
void HardenProcess(bool disable_core_dumps, bool lock_memory) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    const rlim_t before = files.rlim_cur;
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
      spdlog::warn("event=nofile_limit_not_raised limit={} error=\"{}\"", before,
                   std::strerror(errno));
    }
  }
  if (disable_core_dumps) {
    const rlimit no_core{0, 0};
    if (::setrlimit(RLIMIT_CORE, &no_core) != 0) {
      spdlog::warn("event=core_dumps_not_disabled error=\"{}\"", std::strerror(errno));
    }
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      spdlog::warn("event=dumpable_not_cleared error=\"{}\"", std::strerror(errno));
    }
  }
  if (!lock_memory) return;
  if (kShadowMemorySanitizer) {
    spdlog::warn("event=mlock_unavailable reason=\"sanitizer build\"");
    return;
  }
#ifdef MCL_ONFAULT
  int locked = ::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
  if (locked != 0 && errno == EINVAL) locked = ::mlockall(MCL_CURRENT | MCL_FUTURE);  // < 4.4
#else
  const int locked = ::mlockall(MCL_CURRENT | MCL_FUTURE);
#endif
  if (locked != 0) {
    spdlog::warn(
        "event=mlock_unavailable error=\"{}\" hint=\"memory may be swapped to disk: grant "
        "CAP_IPC_LOCK or raise RLIMIT_MEMLOCK, or set disable_mlock: true to silence this\"",
        std::strerror(errno));
  }
}

// Blocks SIGTERM/SIGINT/SIGHUP in this thread (and the threads it starts later), so that
// WaitForShutdownSignal can take them synchronously.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for SIGTERM or SIGINT and returns it; calls `on_hangup` for each SIGHUP meanwhile.
int WaitForShutdownSignal(const sigset_t& set, const std::function<void()>& on_hangup) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) return sig;
    if (on_hangup) on_hangup();
  }
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

// Re-signs the CRLs of every PKI mount with auto_rebuild that are close to their nextUpdate
// (pki::PkiEngine::RebuildDueCrls, docs/pki.md), so a published CRL never expires.
void RebuildDuePkiCrls(const api::UnsealedState& state) {
  for (const api::MountEntry& entry : state.mounts->List()) {
    if (entry.type != "pki") continue;
    std::optional<api::MountMatch> mount = state.mounts->Find(entry.path);
    if (!mount || mount->pki == nullptr) continue;  // unmounted meanwhile
    absl::StatusOr<size_t> rebuilt = mount->pki->RebuildDueCrls();
    if (!rebuilt.ok()) {
      spdlog::warn("event=pki_crl_auto_rebuild_failed mount={} error=\"{}\"", entry.path,
                   std::string(rebuilt.status().message()));
    } else if (*rebuilt > 0) {
      spdlog::info("event=pki_crl_auto_rebuild mount={} rebuilt={}", entry.path, *rebuilt);
    }
  }
}

// Revokes expired tokens once a minute while unsealed, so they leave storage and memory, and
// rebuilds the PKI CRLs that are due.
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
            RebuildDuePkiCrls(*state);
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

// The listener's TLS settings from its config.
net::TlsServerOptions ListenerTls(const ListenerConfig& listener) {
  net::TlsServerOptions tls;
  tls.cert_file = listener.tls_cert_file;
  tls.key_file = listener.tls_key_file;
  tls.client_ca_file = listener.tls_client_ca_file;
  tls.require_client_cert = listener.tls_require_client_cert;
  tls.crl_file = listener.tls_crl_file;
  return tls;
}

// The listener's session ticket keys while sealed: random keys made by this process, a new one
// every rotation period, the previous one kept so that tickets issued just before a rotation
// still resume. While unsealed the keys come from the barrier instead (SharedTicketKeys,
// server/ticket_keys.h), shared by every node over the same storage.
//
// Not thread-safe: used by TlsMaintenance's thread only (and once before it starts).
class TicketKeyRotation {
 public:
  // Returns the keys to install now: a new key first, then the previous one if any.
  // Errors: kInternal if the random generator fails.
  absl::StatusOr<std::vector<net::TicketKey>> Rotate() {
    WARD_ASSIGN_OR_RETURN(net::TicketKey fresh, net::TicketKey::Generate());
    std::vector<net::TicketKey> keys;
    core::SecureBytes current = fresh.bytes.Copy();
    keys.push_back(std::move(fresh));
    if (previous_.has_value()) {
      WARD_ASSIGN_OR_RETURN(net::TicketKey old, net::TicketKey::FromBytes(previous_->Copy()));
      keys.push_back(std::move(old));
    }
    previous_ = std::move(current);
    return keys;
  }

 private:
  std::optional<core::SecureBytes> previous_;
};

// How often TLS files and the PKI trust are polled, and the shared ticket keys re-read.
constexpr absl::Duration kTlsPoll = absl::Seconds(2);
constexpr absl::Duration kTicketKeySync = absl::Minutes(1);
constexpr absl::Duration kTicketKeyRetry = absl::Seconds(10);

// The notAfter of the first certificate in the PEM file `path`, or InfinitePast if unreadable.
absl::Time CertificateNotAfter(const std::string& path) {
  crypto::BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) return absl::InfinitePast();
  crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InfinitePast();
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(::timegm(&tm));
}

// What sys/metrics reads of the listener (api::ListenerCounters), shared between the handler's
// callback and the objects that fill it. Thread-safe (atomics).
struct ListenerProbe {
  std::atomic<net::HttpServer*> http{nullptr};  // set once the server exists
  std::shared_ptr<net::SessionCache> session_cache;  // set before Read is first called; may be null
  std::atomic<int64_t> cert_not_after_unix{std::numeric_limits<int64_t>::min()};

  api::ListenerCounters Read() const {
    api::ListenerCounters c;
    if (net::HttpServer* server = http.load(); server != nullptr) {
      const net::HttpServerStats s = server->Stats();
      c.handshakes_full = s.handshakes_full;
      c.handshakes_resumed = s.handshakes_resumed;
      c.client_cert_expired = s.client_cert_expired;
      c.client_cert_revoked = s.client_cert_revoked;
      c.client_cert_untrusted = s.client_cert_untrusted;
      c.client_cert_other = s.client_cert_other;
    }
    if (session_cache != nullptr) {
      const net::SessionCacheStats s = session_cache->Stats();
      c.session_cache = true;
      c.session_cache_size = s.size;
      c.session_cache_capacity = session_cache->capacity();
      c.session_cache_hits = s.hits;
      c.session_cache_misses = s.misses;
      c.session_cache_evicted = s.evicted;
    }
    const int64_t not_after = cert_not_after_unix.load();
    if (not_after != std::numeric_limits<int64_t>::min()) {
      c.server_cert_not_after = absl::FromUnixSeconds(not_after);
    }
    return c;
  }

  void SetCertificate(const std::string& cert_file) {
    const absl::Time t = CertificateNotAfter(cert_file);
    cert_not_after_unix.store(t == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                        : absl::ToUnixSeconds(t));
  }
};

// What TlsMaintenance does besides watching files.
struct TlsMaintenanceOptions {
  bool trust_pki_mounts = true;                        // listener.tls_trust_pki_mounts
  absl::Duration ticket_key_rotation = absl::Hours(12);  // listener.tls_ticket_key_rotation
};

// Keeps the listener's TLS material current without dropping connections:
// - reloads the certificate, key, client CAs and CRL on SIGHUP (Reload) or when one of those
//   files changes (polled every kTlsPoll);
// - while unsealed and trust_pki_mounts, adds every PKI mount's trust bundle to the client CAs
//   and its issuers' CRLs to the CRLs (api::CollectPkiTrust, polled every kTlsPoll; the context
//   is rebuilt only when the fingerprint changes); sealed: the configured CAs only;
// - session ticket keys: while unsealed, the shared keys in the barrier (SharedTicketKeys,
//   re-read every kTicketKeySync and at once after unsealing; the node that finds them due
//   rotates them); while sealed, random keys of this process, rotated every period.
// A reload that fails is logged and the listener keeps its previous context.
//
// Thread-safe. `http`, `core` are borrowed and must outlive this object.
class TlsMaintenance {
 public:
  // Installs the first ticket keys and starts the polling thread.
  // Errors: kInternal if no ticket key can be generated.
  static absl::StatusOr<std::unique_ptr<TlsMaintenance>> Start(
      net::HttpServer& http, net::TlsServerOptions options, api::Core& core,
      TlsMaintenanceOptions maintenance, std::shared_ptr<ListenerProbe> probe) {
    std::unique_ptr<TlsMaintenance> m(new TlsMaintenance(http, std::move(options), core,
                                                         maintenance, std::move(probe)));
    WARD_RETURN_IF_ERROR(m->RotateTicketKeys());
    {
      absl::MutexLock lock(&m->mu_);
      m->stamps_ = m->Stamps();
      m->probe_->SetCertificate(m->options_.cert_file);
      // Unsealed already (dev mode): serve the PKI trust from the start.
      m->RefreshPkiTrustLocked();
    }
    m->SyncTicketKeys();
    m->thread_ = std::thread([raw = m.get()] { raw->Run(); });
    return m;
  }

  ~TlsMaintenance() {
    stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }

  // Re-reads every TLS file and swaps the listener's context; `reason` goes to the log.
  void Reload(std::string_view reason) {
    absl::MutexLock lock(&mu_);
    stamps_ = Stamps();
    ReloadLocked(reason);
  }

 private:
  // What identifies a version of a file: modification time, size and inode.
  using Stamp = std::tuple<int64_t, int64_t, uint64_t>;

  TlsMaintenance(net::HttpServer& http, net::TlsServerOptions options, api::Core& core,
                 TlsMaintenanceOptions maintenance, std::shared_ptr<ListenerProbe> probe)
      : http_(http),
        options_(std::move(options)),
        core_(core),
        maintenance_(maintenance),
        probe_(std::move(probe)),
        shared_keys_(core.barrier(), core::RealClock::Get(), maintenance.ticket_key_rotation) {}

  std::vector<Stamp> Stamps() const {
    std::vector<Stamp> stamps;
    for (const std::string* path : {&options_.cert_file, &options_.key_file,
                                    &options_.client_ca_file, &options_.crl_file}) {
      struct stat st {};
      if (path->empty() || ::stat(path->c_str(), &st) != 0) {
        stamps.emplace_back(-1, -1, 0);
        continue;
      }
      stamps.emplace_back(
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino));
    }
    return stamps;
  }

  void ReloadLocked(std::string_view reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    net::TlsServerOptions options = options_;
    options.client_ca_pem = pki_.ca_pem;
    options.crl_pem_or_der = pki_.crl_pem;
    absl::Status status = http_.ReloadTls(std::move(options));
    if (status.ok()) {
      probe_->SetCertificate(options_.cert_file);
      spdlog::info("event=tls_reloaded reason={}", reason);
    } else {
      spdlog::error("event=tls_reload_failed reason={} error=\"{}\" (keeping the previous TLS "
                    "settings)",
                    reason, std::string(status.message()));
    }
  }

  // This process's own random ticket keys (sealed).
  absl::Status RotateTicketKeys() {
    WARD_ASSIGN_OR_RETURN(std::vector<net::TicketKey> keys, rotation_.Rotate());
    WARD_RETURN_IF_ERROR(http_.SetTicketKeys(std::move(keys)));
    last_rotation_ = absl::Now();
    using_shared_keys_ = false;
    return absl::OkStatus();
  }

  // Unsealed: installs the barrier's shared keys if they changed (or local keys are in use).
  // Sealed: leaves shared keys (barrier material) behind for fresh local ones.
  void SyncTicketKeys() {
    std::shared_ptr<const api::UnsealedState> state = core_.State();
    if (state == nullptr) {
      if (using_shared_keys_) {
        if (absl::Status s = RotateTicketKeys(); !s.ok()) {
          spdlog::error("event=ticket_key_rotation_failed error=\"{}\"", std::string(s.message()));
        }
      }
      return;
    }
    state.reset();
    last_shared_sync_ = absl::Now();
    absl::StatusOr<TicketKeySet> set = shared_keys_.Sync();
    if (!set.ok()) {
      // E.g. sealed meanwhile or storage unavailable: keep the current keys, retry later.
      spdlog::warn("event=ticket_key_sync_failed error=\"{}\"", std::string(set.status().message()));
      return;
    }
    if (set->rotated) spdlog::info("event=ticket_keys_rotated shared=true");
    if (!set->changed && using_shared_keys_) return;
    if (absl::Status s = http_.SetTicketKeys(std::move(set->keys)); !s.ok()) {
      spdlog::error("event=ticket_keys_install_failed error=\"{}\"", std::string(s.message()));
      return;
    }
    using_shared_keys_ = true;
    spdlog::info("event=ticket_keys_installed shared=true");
  }

  // Recomputes the PKI trust (empty while sealed or when disabled) and reloads the context if
  // its fingerprint changed.
  void RefreshPkiTrustLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    api::PkiTrust trust;
    if (maintenance_.trust_pki_mounts) {
      std::shared_ptr<const api::UnsealedState> state = core_.State();
      if (state != nullptr) trust = api::CollectPkiTrust(*state);
    }
    if (trust.fingerprint == pki_.fingerprint) return;
    // Remembered even if the reload fails, as for files: no error every poll.
    pki_ = std::move(trust);
    ReloadLocked("pki_trust_changed");
  }

  void Run() {
    while (!stop_.WaitForNotificationWithTimeout(kTlsPoll)) {
      {
        absl::MutexLock lock(&mu_);
        std::vector<Stamp> now = Stamps();
        if (now != stamps_) {
          // Remembered even if the reload fails: the next change tries again, without an
          // error every poll for a file that stays broken.
          stamps_ = std::move(now);
          ReloadLocked("file_changed");
        }
        RefreshPkiTrustLocked();
      }
      // Sealed since the last poll: back to local keys. Unsealed: re-read every kTicketKeySync,
      // or every kTicketKeyRetry while the shared keys could not be loaded yet.
      const bool unsealed = core_.State() != nullptr;
      const bool due = absl::Now() - last_shared_sync_ >=
                       (using_shared_keys_ ? kTicketKeySync : kTicketKeyRetry);
      if ((!unsealed && using_shared_keys_) || (unsealed && due)) SyncTicketKeys();
      if (!using_shared_keys_ &&
          absl::Now() - last_rotation_ >= maintenance_.ticket_key_rotation) {
        if (absl::Status s = RotateTicketKeys(); !s.ok()) {
          spdlog::error("event=ticket_key_rotation_failed error=\"{}\"", std::string(s.message()));
        } else {
          spdlog::info("event=ticket_keys_rotated shared=false");
        }
      }
    }
  }

  net::HttpServer& http_;
  const net::TlsServerOptions options_;
  api::Core& core_;
  const TlsMaintenanceOptions maintenance_;
  const std::shared_ptr<ListenerProbe> probe_;
  absl::Mutex mu_;  // serialises reloads (SIGHUP, file and PKI polling)
  std::vector<Stamp> stamps_ ABSL_GUARDED_BY(mu_);
  api::PkiTrust pki_ ABSL_GUARDED_BY(mu_);  // what the current context trusts from PKI mounts
  // Ticket keys: used by Start, then only by the thread.
  TicketKeyRotation rotation_;
  absl::Time last_rotation_;
  SharedTicketKeys shared_keys_;
  bool using_shared_keys_ = false;
  absl::Time last_shared_sync_ = absl::InfinitePast();
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
  std::unique_ptr<TlsMaintenance> tls_maintenance;  // uses `http`: declared after it
};

absl::StatusOr<Node> OpenNode(const std::string& data_dir,
                              api::Core::Options core_options = api::Core::Options{}) {
  Node node;
  WARD_RETURN_IF_ERROR(MakePrivateDir(data_dir));
  WARD_ASSIGN_OR_RETURN(node.lock, DirLock::Acquire(data_dir));
  storage::SqliteOptions sqlite;
  sqlite.path = data_dir + "/ward.db";
  WARD_ASSIGN_OR_RETURN(node.storage, storage::SqliteBackend::Create(sqlite));
  WARD_ASSIGN_OR_RETURN(node.core,
                        api::Core::Create(*node.storage, core::RealClock::Get(), core_options));
  node.tidier = std::make_unique<TokenTidier>(*node.core);
  return node;
}

// The audit devices ward.yaml declares, for the broker to enable on unseal (docs/audit.md).
std::vector<audit::Broker::ConfiguredDevice> ConfiguredAuditDevices(const Config& config) {
  std::vector<audit::Broker::ConfiguredDevice> out;
  for (const AuditDeviceConfig& d : config.audit) {
    out.push_back(audit::Broker::ConfiguredDevice{d.path, d.type, d.description, d.options});
  }
  return out;
}

// SIGHUP: reopens every audit file for log rotation. Nothing to do while sealed (no device is
// open). A device whose new file cannot be opened keeps writing its old one (logged).
void ReopenAuditDevices(api::Core& core) {
  auto state = core.State();
  if (state == nullptr) return;
  if (absl::Status s = state->audit->Reopen(); !s.ok()) {
    spdlog::error("event=audit_reopen_failed error=\"{}\"", std::string(s.message()));
  }
}

absl::Status StartHttp(Node& node, const ListenerConfig& listener) {
  api::HandlerOptions handler_options;
  WARD_ASSIGN_OR_RETURN(handler_options.cluster_id, crypto::RandomUuid());
  handler_options.unauthenticated_metrics_access = listener.unauthenticated_metrics_access;
  auto probe = std::make_shared<ListenerProbe>();
  handler_options.listener_counters = [probe] { return probe->Read(); };
  node.handler = std::make_unique<api::VaultHandler>(*node.core, core::RealClock::Get(),
                                                     handler_options);
  WARD_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(listener.address, "listener.address"));
  net::HttpServerOptions http;
  http.address = host_port.first;
  http.port = host_port.second;
  http.tls = ListenerTls(listener);
  if (listener.tls_session_resumption == ListenerConfig::SessionResumption::kNode) {
    // One cache for the listener's lifetime: TlsMaintenance reloads with copies of http.tls,
    // so every context shares it and sessions survive certificate and trust reloads.
    WARD_ASSIGN_OR_RETURN(http.tls.session_cache,
                          net::SessionCache::Create(listener.tls_session_cache_size));
    probe->session_cache = http.tls.session_cache;
  }
  http.io_threads = listener.event_loops;
  http.body_limit = listener.max_request_size;
  http.read_timeout = listener.read_timeout;
  http.idle_timeout = listener.idle_timeout;
  http.handshake_timeout = listener.tls_handshake_timeout;
  api::VaultHandler* handler = node.handler.get();
  // Reads that cannot block (KV reads, token lookups, health) are served on the event loop.
  http.inline_handler = [handler](const net::HttpRequest& r) { return handler->HandleInline(r); };
  WARD_ASSIGN_OR_RETURN(node.http, net::HttpServer::Create(http, [handler](const net::HttpRequest& r) {
                          return handler->Handle(r);
                        }));
  probe->http.store(node.http.get());
  node.http->Start();
  spdlog::info("event=http_started address={} port={} event_loops={}", listener.address,
               node.http->port(), node.http->event_loops());
  TlsMaintenanceOptions maintenance;
  maintenance.trust_pki_mounts = listener.tls_trust_pki_mounts;
  maintenance.ticket_key_rotation = listener.tls_ticket_key_rotation;
  WARD_ASSIGN_OR_RETURN(node.tls_maintenance, TlsMaintenance::Start(*node.http, http.tls, *node.core,
                                                                    maintenance, probe));
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
  // Like Vault's dev mode: no mlock (dev data is throwaway), core dumps still off.
  HardenProcess(/*disable_core_dumps=*/true, /*lock_memory=*/false);
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
  // Client certificates issued by the dev CA are accepted (requested, not required).
  listener.tls_client_ca_file = tls_dir + "/ca.pem";
  listener.event_loops = options.event_loops;
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

  int sig = WaitForShutdownSignal(signals, [&node] {
    node.tls_maintenance->Reload("sighup");
    ReopenAuditDevices(*node.core);
  });
  Drain(node, absl::Seconds(10), sig);
  node.tls_maintenance.reset();
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
  HardenProcess(config.disable_core_dumps, /*lock_memory=*/!config.disable_mlock);
  sigset_t signals = BlockShutdownSignals();
  api::Core::Options core_options;
  core_options.audit.configured = ConfiguredAuditDevices(config);
  WARD_ASSIGN_OR_RETURN(Node node, OpenNode(config.storage.path, std::move(core_options)));
  WARD_RETURN_IF_ERROR(StartHttp(node, config.listener));
  WARD_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(config.listener.address, "listener.address"));
  WARD_ASSIGN_OR_RETURN(barrier::SealStatus seal, node.core->SealStatus());
  std::cout << "Ward server listening on " << UrlFor(host_port.first, node.http->port()) << "\n"
            << (seal.initialized ? "Sealed: unseal with `ward operator unseal`.\n"
                                 : "Not initialised: run `ward operator init`.\n")
            << std::flush;
  int sig = WaitForShutdownSignal(signals, [&node] {
    node.tls_maintenance->Reload("sighup");
    ReopenAuditDevices(*node.core);
  });
  Drain(node, config.shutdown_grace, sig);
  return absl::OkStatus();
}

}  // namespace ward::server
