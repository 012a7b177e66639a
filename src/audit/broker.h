#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/file_device.h"
#include "audit/record.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::audit {

// Where the audit table lives in the barrier (docs/audit.md).
inline constexpr std::string_view kAuditTablePath = "core/audit";

// One enabled audit device, as sys/audit lists it.
struct DeviceInfo {
  std::string path;  // "file/": always ends with '/'
  std::string type;  // "file"
  std::string description;
  std::map<std::string, std::string> options;  // {"file_path": "/var/log/ward/audit.log"}
  std::string checkpoint_public_key;           // hex Ed25519 key for `ward audit verify --key`
};

// An enabled device with its open file.
struct Device {
  DeviceInfo info;
  std::unique_ptr<FileDevice> file;
};

// The devices enabled when a request started; the request's response goes to the same ones.
using DeviceSet = std::vector<std::shared_ptr<Device>>;

// The audit broker of an unsealed node: the table of enabled devices, persisted through the
// barrier at kAuditTablePath together with each device's keys (a salt for hashing and an
// Ed25519 checkpoint key), and the fan-out of records to the devices.
//
// A record counts as logged when at least one device of the request's set wrote it (Vault's
// rule); a device disabled since the request started is skipped. With no device enabled
// nothing is logged and every Log call succeeds.
//
// Thread-safe. Enable/Disable are serialised and do file and barrier I/O; Snapshot takes a
// reader lock only. `barrier` and `clock` are borrowed and must outlive the broker. Destroying
// the broker closes every device (each writes a final checkpoint).
class Broker {
 public:
  // A device declared in the config file (ward.yaml `audit:`), enabled on unseal if no device
  // is enabled at its path.
  struct ConfiguredDevice {
    std::string path;  // as for Enable: "file" or "file/"
    std::string type = "file";
    std::string description;
    std::map<std::string, std::string> options;  // {"file_path": ...}
  };

  struct Options {
    FileDeviceOptions device;
    std::vector<ConfiguredDevice> configured;
  };

  // Loads the table and reopens every device, then enables each of options.configured whose
  // path has no device yet (persisting it, as Enable does). A configured device whose path is
  // already in the table keeps the stored settings; if they differ (type or file_path), a
  // warning is logged. REQUIRES: the barrier is unsealed.
  // Errors: barrier errors; kDataLoss if the table is malformed; a device's Open error (a
  //         node whose audit device cannot be opened refuses to unseal: fail closed); Enable's
  //         errors for a configured device, prefixed with "audit device <path> (config): ".
  static absl::StatusOr<std::unique_ptr<Broker>> Create(barrier::Barrier& barrier,
                                                        core::Clock& clock, Options options);
  ~Broker();

  // Enables a device at `path` ("file" or "file/"). Only type "file" exists; it needs option
  // "file_path". Generates the device's keys, opens the file, then persists the table.
  // Errors: kInvalidArgument for an empty path, an unknown type, a missing file_path, a
  //         path already in use ("path already in use"), or a file_path another device
  //         writes; the file's Open errors; barrier errors (the device is closed again).
  absl::Status Enable(std::string_view path, std::string_view type, std::string_view description,
                      const std::map<std::string, std::string>& options);

  // Disables the device at `path` and closes its file (writing a final checkpoint). OK if no
  // device is there. Errors: barrier errors (the device stays enabled).
  absl::Status Disable(std::string_view path);

  std::vector<DeviceInfo> List() const;

  // Reopens every enabled device's file (FileDevice::Reopen), for log rotation on SIGHUP.
  // Every device is tried even if one fails. Errors: the first device's error, prefixed with
  // its path (that device keeps appending to its previous file).
  absl::Status Reopen() const;

  // Returns `input` hashed with the salt of the device at `path`.
  // Errors: kInvalidArgument "unknown audit backend" if no device is there; kInternal if
  //         hashing fails.
  absl::StatusOr<std::string> Hash(std::string_view path, std::string_view input) const;

  // The devices enabled now (empty if none).
  std::shared_ptr<const DeviceSet> Snapshot() const;

  // Writes a request record to every device of `devices`.
  // Errors: kInternal "audit: failed to log request" when devices were enabled and none of
  //         them wrote the record.
  absl::Status LogRequest(const DeviceSet& devices, const AuthInfo& auth,
                          const RequestInfo& request) const;

  // Writes a response record likewise. Errors: kInternal "audit: failed to log response".
  absl::Status LogResponse(const DeviceSet& devices, const AuthInfo& auth,
                           const RequestInfo& request, const ResponseInfo& response) const;

  // The outcome of LogAsync.
  using Done = std::function<void(absl::Status)>;

  // Writes the request record (if `with_request`) and then the response record to every
  // device of `devices`, together, in one write per device (FileDevice::AppendAsync). The
  // records are built (hashing included) on the calling thread; a device on a local file
  // writes them on this thread too, a queued device (pipes, network file systems) on its
  // writer thread, without this thread waiting. `done` is called once, when every device has
  // answered (before LogAsync returns if every device wrote or refused on this thread; else
  // from a writer thread), with OK if at least one device wrote the records, or no device was
  // enabled, or every one was disabled meanwhile. Errors (through `done`), when every device that answered failed: kInternal
  // "audit: failed to log request" if `with_request`, else "audit: failed to log response".
  // A device whose write hangs never answers: the caller keeps a deadline.
  void LogAsync(const DeviceSet& devices, const AuthInfo& auth, const RequestInfo& request,
                bool with_request, const ResponseInfo& response, Done done) const;

 private:
  // A table entry as stored: the listing plus the device's keys.
  struct StoredDevice {
    DeviceInfo info;
    core::SecureBytes salt;             // 32 bytes
    core::SecureBytes checkpoint_seed;  // 32-byte Ed25519 seed
  };
  Broker(barrier::Barrier& barrier, core::Clock& clock, Options options)
      : barrier_(barrier), clock_(clock), options_(std::move(options)) {}

  absl::StatusOr<std::shared_ptr<Device>> OpenDevice(const DeviceInfo& info,
                                                     const core::SecureBytes& salt,
                                                     const core::SecureBytes& checkpoint_seed);
  absl::Status Persist(const std::vector<StoredDevice>& table);
  // Loads the table and reopens its devices (Create without the configured devices).
  static absl::StatusOr<std::unique_ptr<Broker>> Load(barrier::Barrier& barrier,
                                                      core::Clock& clock, Options options);
  // Enables options_.configured devices missing from the table (Create).
  absl::Status EnableConfigured();
  // Builds the record for each device with `build` and appends it. Returns false if devices
  // were enabled and none wrote it.
  template <typename Build>
  bool Fanout(const DeviceSet& devices, const Build& build) const;

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const Options options_;
  absl::Mutex write_mu_;  // serialises Enable/Disable
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  // The stored table (with keys) and the open devices, by path.
  std::vector<StoredDevice> table_ ABSL_GUARDED_BY(write_mu_);
  std::shared_ptr<const DeviceSet> devices_ ABSL_GUARDED_BY(mu_);
};

// Normalises an audit device path: strips leading '/', ensures one trailing '/'.
std::string NormaliseDevicePath(std::string_view path);

}  // namespace ward::audit
