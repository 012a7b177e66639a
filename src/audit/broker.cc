#include "audit/broker.h"

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"
#include "crypto/random.h"
#include "spdlog/spdlog.h"

namespace ward::audit {
namespace json = boost::json;

std::string NormaliseDevicePath(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path.empty() ? "" : absl::StrCat(core::ToAbsl(path), "/");
}

namespace {

absl::StatusOr<core::SecureBytes> DecodeKey(const json::object& o, std::string_view field) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string()) {
    return absl::DataLossError(absl::StrCat("audit table: entry without ", core::ToAbsl(field)));
  }
  absl::StatusOr<std::string> raw = HexDecode(std::string_view(v->as_string()));
  if (!raw.ok() || raw->size() != 32) {
    return absl::DataLossError(absl::StrCat("audit table: malformed ", core::ToAbsl(field)));
  }
  core::SecureBytes key(*raw);
  core::SecureZero(*raw);
  return key;
}

std::string Str(const json::object& o, std::string_view field) {
  const json::value* v = o.if_contains(field);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Broker>> Broker::Create(barrier::Barrier& barrier,
                                                       core::Clock& clock, Options options) {
  WARD_ASSIGN_OR_RETURN(std::unique_ptr<Broker> broker,
                        Load(barrier, clock, std::move(options)));
  WARD_RETURN_IF_ERROR(broker->EnableConfigured());
  return broker;
}

absl::StatusOr<std::unique_ptr<Broker>> Broker::Load(barrier::Barrier& barrier,
                                                     core::Clock& clock, Options options) {
  std::unique_ptr<Broker> broker(new Broker(barrier, clock, std::move(options)));
  auto devices = std::make_shared<DeviceSet>();
  absl::StatusOr<std::string> stored = barrier.Get(kAuditTablePath);
  if (!stored.ok() && stored.status().code() != absl::StatusCode::kNotFound) {
    return stored.status();
  }
  absl::MutexLock write_lock(&broker->write_mu_);
  if (stored.ok()) {
    boost::system::error_code ec;
    json::value v = json::parse(*stored, ec);
    core::SecureZero(*stored);
    if (ec || !v.is_object() || !v.as_object().contains("devices") ||
        !v.as_object().at("devices").is_array()) {
      return absl::DataLossError("audit table is malformed");
    }
    for (const json::value& e : v.as_object().at("devices").as_array()) {
      if (!e.is_object()) return absl::DataLossError("audit table entry is malformed");
      const json::object& o = e.as_object();
      StoredDevice d;
      d.info.path = Str(o, "path");
      d.info.type = Str(o, "type");
      d.info.description = Str(o, "description");
      if (const json::value* opts = o.if_contains("options");
          opts != nullptr && opts->is_object()) {
        for (const auto& kv : opts->as_object()) {
          if (kv.value().is_string())
            d.info.options[kv.key()] = std::string(kv.value().as_string());
        }
      }
      WARD_ASSIGN_OR_RETURN(d.salt, DecodeKey(o, "salt"));
      WARD_ASSIGN_OR_RETURN(d.checkpoint_seed, DecodeKey(o, "checkpoint_key"));
      WARD_ASSIGN_OR_RETURN(std::shared_ptr<Device> device,
                            broker->OpenDevice(d.info, d.salt, d.checkpoint_seed));
      d.info = device->info;
      devices->push_back(std::move(device));
      broker->table_.push_back(std::move(d));
    }
    // Zero the key text left in the parsed document.
    for (json::value& e : v.as_object().at("devices").as_array()) {
      for (const char* k : {"salt", "checkpoint_key"}) {
        if (json::value* s = e.as_object().if_contains(k); s != nullptr && s->is_string()) {
          core::SecureZero(s->as_string().data(), s->as_string().size());
        }
      }
    }
  }
  absl::MutexLock lock(&broker->mu_);
  broker->devices_ = std::move(devices);
  return broker;
}

absl::Status Broker::EnableConfigured() {
  for (const ConfiguredDevice& c : options_.configured) {
    std::string path = NormaliseDevicePath(c.path);
    bool stored = false;
    {
      absl::MutexLock write_lock(&write_mu_);
      for (const StoredDevice& d : table_) {
        if (d.info.path != path) continue;
        stored = true;
        if (d.info.type != c.type || d.info.options != c.options) {
          // The barrier's table is authoritative (an operator may have re-enabled the device
          // through the API); the config only creates devices that are missing.
          auto fp = d.info.options.find("file_path");
          spdlog::warn(
              "event=audit_config_differs path={} stored_file_path={} (keeping the enabled "
              "device; disable it through sys/audit to apply the config on the next unseal)",
              path, fp == d.info.options.end() ? std::string() : fp->second);
        }
      }
    }
    if (stored) continue;
    if (absl::Status s = Enable(path, c.type, c.description, c.options); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("audit device ", path, " (config): ",
                                                 s.message()));
    }
    spdlog::info("event=audit_enabled_from_config path={}", path);
  }
  return absl::OkStatus();
}

absl::Status Broker::Reopen() const {
  absl::Status first = absl::OkStatus();
  for (const auto& d : *Snapshot()) {
    absl::Status s = d->file->Reopen();
    if (!s.ok() && first.ok()) {
      first = absl::Status(
          s.code(), absl::StrCat("audit device ", d->info.path, ": ", s.message()));
    }
  }
  return first;
}

Broker::~Broker() {
  std::shared_ptr<const DeviceSet> devices;
  {
    absl::MutexLock lock(&mu_);
    devices = std::move(devices_);
  }
  if (devices == nullptr) return;
  for (const auto& d : *devices) {
    absl::Status s = d->file->Close();
    if (!s.ok())
      spdlog::error("event=audit_close_failed path={} error={}", d->info.path,
                    std::string(s.message()));
  }
}

absl::StatusOr<std::shared_ptr<Device>> Broker::OpenDevice(
    const DeviceInfo& info, const core::SecureBytes& salt,
    const core::SecureBytes& checkpoint_seed) {
  auto it = info.options.find("file_path");
  if (it == info.options.end() || it->second.empty()) {
    return absl::InvalidArgumentError("file_path is required");
  }
  WARD_ASSIGN_OR_RETURN(CheckpointSigner signer, CheckpointSigner::Create(checkpoint_seed));
  auto device = std::make_shared<Device>();
  device->info = info;
  device->info.checkpoint_public_key = signer.public_key_hex();
  WARD_ASSIGN_OR_RETURN(device->file, FileDevice::Open(it->second, Hasher(salt.Copy()),
                                                       std::move(signer), clock_, options_.device));
  return device;
}

absl::Status Broker::Persist(const std::vector<StoredDevice>& table) {
  json::array devices;
  for (const StoredDevice& d : table) {
    json::object options;
    for (const auto& [k, v] : d.info.options) options[k] = v;
    devices.emplace_back(
        json::object{{"path", d.info.path},
                     {"type", d.info.type},
                     {"description", d.info.description},
                     {"options", std::move(options)},
                     {"salt", crypto::HexEncode(d.salt.view())},
                     {"checkpoint_key", crypto::HexEncode(d.checkpoint_seed.view())}});
  }
  std::string value = json::serialize(json::object{{"devices", std::move(devices)}});
  // The barrier zeroes `value` once encrypted.
  return barrier_.Put(std::string(kAuditTablePath), std::move(value)).status();
}

absl::Status Broker::Enable(std::string_view raw_path, std::string_view type,
                            std::string_view description,
                            const std::map<std::string, std::string>& options) {
  std::string path = NormaliseDevicePath(raw_path);
  if (path.empty()) return absl::InvalidArgumentError("path is required");
  if (type != "file") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown backend type: \"", core::ToAbsl(type), "\""));
  }
  absl::MutexLock write_lock(&write_mu_);
  auto file_path = options.find("file_path");
  for (const StoredDevice& d : table_) {
    if (d.info.path == path) return absl::InvalidArgumentError("path already in use");
    // Two writers on one file would interleave two chains: neither would verify.
    auto other = d.info.options.find("file_path");
    if (file_path != options.end() && other != d.info.options.end() &&
        other->second == file_path->second) {
      return absl::InvalidArgumentError(
          absl::StrCat("file_path is already used by audit device ", d.info.path));
    }
  }
  StoredDevice d;
  d.info.path = path;
  d.info.type = std::string(type);
  d.info.description = std::string(description);
  d.info.options = options;
  WARD_ASSIGN_OR_RETURN(d.salt, crypto::RandomBytes(32));
  WARD_ASSIGN_OR_RETURN(d.checkpoint_seed, crypto::RandomBytes(32));
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<Device> device,
                        OpenDevice(d.info, d.salt, d.checkpoint_seed));
  d.info = device->info;
  std::vector<StoredDevice> next;
  for (const StoredDevice& e : table_) {
    next.push_back(StoredDevice{e.info, e.salt.Copy(), e.checkpoint_seed.Copy()});
  }
  next.push_back(std::move(d));
  if (absl::Status s = Persist(next); !s.ok()) {
    (void)device->file->Close();
    return s;
  }
  table_ = std::move(next);
  absl::MutexLock lock(&mu_);
  auto devices = std::make_shared<DeviceSet>(*devices_);
  devices->push_back(std::move(device));
  devices_ = std::move(devices);
  spdlog::info("event=audit_enabled path={} type={}", path, std::string(type));
  return absl::OkStatus();
}

absl::Status Broker::Disable(std::string_view raw_path) {
  std::string path = NormaliseDevicePath(raw_path);
  absl::MutexLock write_lock(&write_mu_);
  std::vector<StoredDevice> next;
  bool found = false;
  for (const StoredDevice& e : table_) {
    if (e.info.path == path) {
      found = true;
      continue;
    }
    next.push_back(StoredDevice{e.info, e.salt.Copy(), e.checkpoint_seed.Copy()});
  }
  if (!found) return absl::OkStatus();
  WARD_RETURN_IF_ERROR(Persist(next));
  table_ = std::move(next);
  std::shared_ptr<Device> removed;
  {
    absl::MutexLock lock(&mu_);
    auto devices = std::make_shared<DeviceSet>();
    for (const auto& d : *devices_) {
      if (d->info.path == path) {
        removed = d;
      } else {
        devices->push_back(d);
      }
    }
    devices_ = std::move(devices);
  }
  // Requests that started before the disable may still hold the device; they find it closed
  // and skip it.
  if (removed != nullptr) {
    absl::Status s = removed->file->Close();
    if (!s.ok())
      spdlog::error("event=audit_close_failed path={} error={}", path, std::string(s.message()));
  }
  spdlog::info("event=audit_disabled path={}", path);
  return absl::OkStatus();
}

std::vector<DeviceInfo> Broker::List() const {
  std::vector<DeviceInfo> out;
  for (const auto& d : *Snapshot()) out.push_back(d->info);
  return out;
}

absl::StatusOr<std::string> Broker::Hash(std::string_view path, std::string_view input) const {
  std::string p = NormaliseDevicePath(path);
  for (const auto& d : *Snapshot()) {
    if (d->info.path == p) return d->file->hasher().Hash(input);
  }
  return absl::InvalidArgumentError("unknown audit backend");
}

std::shared_ptr<const DeviceSet> Broker::Snapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  return devices_;
}

template <typename Build>
bool Broker::Fanout(const DeviceSet& devices, const Build& build) const {
  size_t written = 0, failed = 0;
  for (const auto& d : devices) {
    absl::StatusOr<std::string> record = build(d->file->hasher());
    absl::Status s = record.ok() ? d->file->Append(*std::move(record)) : record.status();
    if (s.ok()) {
      ++written;
    } else if (s.code() != absl::StatusCode::kFailedPrecondition) {  // not merely disabled
      ++failed;
      spdlog::error("event=audit_log_failed device={} error={}", d->info.path,
                    std::string(s.message()));
    }
  }
  return written > 0 || failed == 0;
}

absl::Status Broker::LogRequest(const DeviceSet& devices, const AuthInfo& auth,
                                const RequestInfo& request) const {
  absl::Time now = clock_.Now();
  bool ok = Fanout(devices, [&](const Hasher& h) -> absl::StatusOr<std::string> {
    WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(h, now, auth, request));
    return b.RequestRecord();
  });
  return ok ? absl::OkStatus() : absl::InternalError("audit: failed to log request");
}

absl::Status Broker::LogResponse(const DeviceSet& devices, const AuthInfo& auth,
                                 const RequestInfo& request, const ResponseInfo& response) const {
  absl::Time now = clock_.Now();
  bool ok = Fanout(devices, [&](const Hasher& h) -> absl::StatusOr<std::string> {
    WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(h, now, auth, request));
    return b.ResponseRecord(response);
  });
  return ok ? absl::OkStatus() : absl::InternalError("audit: failed to log response");
}

namespace {

// Counts the devices' answers for the records of one LogAsync call (each device writes them
// together, so it answers once).
class AsyncTally {
 public:
  AsyncTally(size_t devices, std::string_view failure, Broker::Done done)
      : remaining_(devices), failure_(failure), done_(std::move(done)) {}

  void Answer(const absl::Status& status, const std::string& device) {
    if (!status.ok() && status.code() != absl::StatusCode::kFailedPrecondition) {
      spdlog::error("event=audit_log_failed device={} error={}", device,
                    std::string(status.message()));
    }
    Broker::Done done;
    absl::Status outcome;
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) {
        ++written_;
      } else if (status.code() != absl::StatusCode::kFailedPrecondition) {  // not merely closed
        ++failed_;
      }
      if (--remaining_ > 0) return;
      done = std::move(done_);
      if (written_ == 0 && failed_ > 0) outcome = absl::InternalError(std::string(failure_));
    }
    done(std::move(outcome));
  }

 private:
  absl::Mutex mu_;
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  size_t written_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  const std::string_view failure_;
  Broker::Done done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void Broker::LogAsync(const DeviceSet& devices, const AuthInfo& auth, const RequestInfo& request,
                      bool with_request, const ResponseInfo& response, Done done) const {
  if (devices.empty()) {
    done(absl::OkStatus());
    return;
  }
  const absl::Time now = clock_.Now();
  auto tally = std::make_shared<AsyncTally>(
      devices.size(),
      with_request ? "audit: failed to log request" : "audit: failed to log response",
      std::move(done));
  for (const auto& d : devices) {
    absl::StatusOr<RecordBuilder> builder =
        RecordBuilder::Create(d->file->hasher(), now, auth, request);
    std::vector<std::string> records;
    absl::Status built = builder.status();
    if (built.ok()) {
      if (with_request) records.push_back(builder->RequestRecord());
      absl::StatusOr<std::string> response_record = builder->ResponseRecord(response);
      built = response_record.status();
      if (built.ok()) records.push_back(*std::move(response_record));
    }
    if (!built.ok()) {
      tally->Answer(built, d->info.path);
      continue;
    }
    // The path, not the device: the callback must not own the device it runs on.
    d->file->AppendAsync(std::move(records), [tally, path = d->info.path](absl::Status s) {
      tally->Answer(s, path);
    });
  }
}

}  // namespace ward::audit
