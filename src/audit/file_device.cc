#include "audit/file_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "spdlog/spdlog.h"

namespace ward::audit {
namespace {

absl::Status ErrnoStatus(int err, std::string_view what, const std::string& path) {
  std::string msg =
      absl::StrCat("audit: ", core::ToAbsl(what), " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status ReadAt(int fd, std::string& buf, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read", path);
    if (n == 0) return absl::InternalError(absl::StrCat("audit: ", path, " shrank while reading"));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Finds the chain head of an existing regular file of `size` bytes, cutting off an incomplete
// last line. Returns the head and sets `size` to the (possibly reduced) file size.
absl::StatusOr<ChainHead> ResumeChain(int fd, uint64_t& size, const std::string& path) {
  if (size == 0) return ChainHead{};
  constexpr uint64_t kChunk = 64 * 1024;
  // Scan backwards for newlines: `tail` holds the bytes from `tail_start` to `size`.
  std::string tail;
  uint64_t tail_start = size;
  auto extend = [&]() -> absl::Status {
    uint64_t n = std::min(kChunk, tail_start);
    std::string chunk(n, '\0');
    WARD_RETURN_IF_ERROR(ReadAt(fd, chunk, tail_start - n, path));
    tail_start -= n;
    tail = chunk + tail;
    return absl::OkStatus();
  };
  WARD_RETURN_IF_ERROR(extend());
  if (tail.back() != '\n') {
    // A crash cut the last write short: that record was never acknowledged. Drop the fragment.
    size_t nl;
    while ((nl = tail.rfind('\n')) == std::string::npos && tail_start > 0) {
      WARD_RETURN_IF_ERROR(extend());
    }
    uint64_t keep = nl == std::string::npos ? 0 : tail_start + nl + 1;
    spdlog::warn("event=audit_partial_line_dropped path={} bytes={}", path, size - keep);
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) return ErrnoStatus(errno, "truncate", path);
    tail.resize(keep - tail_start);
    size = keep;
    if (size == 0) return ChainHead{};
  }
  // The last line runs from the newline before the final one (or the start) to size-1.
  size_t prev_nl;
  while ((prev_nl = tail.rfind('\n', tail.size() - 2)) == std::string::npos && tail_start > 0) {
    WARD_RETURN_IF_ERROR(extend());
  }
  size_t begin = prev_nl == std::string::npos ? 0 : prev_nl + 1;
  std::string_view line(tail.data() + begin, tail.size() - 1 - begin);
  auto head = HeadAfter(line);
  if (!head.ok()) {
    return absl::DataLossError(
        absl::StrCat("audit: ", path, " does not end with a Ward audit line; move it aside"));
  }
  return head;
}

}  // namespace

namespace {

// A file opened for appending, with the chain head found at its end.
struct OpenedFile {
  int fd = -1;
  bool regular = false;
  uint64_t size = 0;
  ChainHead head;
};

// Opens (creating with mode 0600 if needed) `path` for appending and resumes its chain.
absl::StatusOr<OpenedFile> OpenForAppend(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == ENXIO)) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  }
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status s = ErrnoStatus(errno, "stat", path);
    ::close(fd);
    return s;
  }
  OpenedFile f;
  f.fd = fd;
  f.regular = S_ISREG(st.st_mode);
  f.size = f.regular ? static_cast<uint64_t>(st.st_size) : 0;
  if (f.regular) {
    auto resumed = ResumeChain(fd, f.size, path);
    if (!resumed.ok()) {
      ::close(fd);
      return resumed.status();
    }
    f.head = std::move(*resumed);
  }
  return f;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileDevice>> FileDevice::Open(std::string path, Hasher hasher,
                                                             CheckpointSigner signer,
                                                             core::Clock& clock,
                                                             FileDeviceOptions options) {
  WARD_ASSIGN_OR_RETURN(OpenedFile f, OpenForAppend(path));
  std::unique_ptr<FileDevice> device(new FileDevice(std::move(path), f.fd, f.regular,
                                                    std::move(f.head), std::move(hasher),
                                                    std::move(signer), clock, std::move(options)));
  FileDevice& d = *device;
  {
    absl::MutexLock write_lock(&d.write_mu_);
    d.offset_ = f.size;
    // After a crash the records since the last checkpoint are unsigned: sign them on close.
    d.since_checkpoint_ = d.head_.seq > 0 && !d.head_.last_is_checkpoint ? 1 : 0;
    d.direct_.store(WritesDirectly(d.fd_, d.regular_, d.options_), std::memory_order_release);
    absl::MutexLock lock(&d.mu_);
    d.sync_fd_ = d.fd_;
  }
  d.writer_ = std::thread([&d] { d.WriterLoop(); });
  if (d.options_.sync_interval > absl::ZeroDuration()) {
    d.syncer_ = std::thread([&d] { d.SyncerLoop(); });
  }
  return device;
}

bool FileDevice::WritesDirectly(int fd, bool regular, const FileDeviceOptions& options) {
  if (!regular || options.sync_interval <= absl::ZeroDuration() || options.queued_only) {
    return false;
  }
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) return false;
  // Local disk file systems only: anything else (NFS, SMB, FUSE, cluster file systems, and
  // overlays, whose upper layer may be any of them) may make a write wait on a network or a
  // user-space server.
  switch (static_cast<uint32_t>(fs.f_type)) {
    case 0xEF53:      // ext2, ext3, ext4
    case 0x58465342:  // XFS
    case 0x9123683E:  // Btrfs
    case 0x01021994:  // tmpfs
    case 0x2FC12FC1:  // ZFS
    case 0xF2F52010:  // F2FS
      return true;
    default:
      return false;
  }
}

FileDevice::FileDevice(std::string path, int fd, bool regular, ChainHead head, Hasher hasher,
                       CheckpointSigner signer, core::Clock& clock, FileDeviceOptions options)
    : path_(std::move(path)),
      hasher_(std::move(hasher)),
      signer_(std::move(signer)),
      clock_(clock),
      options_(std::move(options)),
      fd_(fd),
      regular_(regular),
      head_(std::move(head)) {}

FileDevice::~FileDevice() {
  absl::Status s = Close();
  if (!s.ok())
    spdlog::error("event=audit_close_failed path={} error={}", path_, std::string(s.message()));
}

absl::Status FileDevice::Refusal() const {
  if (closing_)
    return absl::FailedPreconditionError(absl::StrCat("audit: device ", path_, " is closed"));
  return broken_;
}

absl::Status FileDevice::CheckRefusal() const {
  if (!refusing_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return Refusal();
}

std::optional<absl::Status> FileDevice::TryAppendDirect(const std::vector<std::string>& records) {
  if (!direct_.load(std::memory_order_acquire)) return std::nullopt;
  // Refused at once, not after waiting for the write lock (which closing holds for its sync).
  if (absl::Status refused = CheckRefusal(); !refused.ok()) return refused;
  // Most of the hashing, and the buffer, before the lock; declared before it, so freed after.
  Batch batch = PrepareBatch(std::vector<std::string_view>(records.begin(), records.end()));
  absl::MutexLock write_lock(&write_mu_);
  // Close sets refusing_ before the writer takes write_mu_ for the closing checkpoint: an
  // append that gets the lock after that sees it here.
  if (absl::Status refused = CheckRefusal(); !refused.ok()) return refused;
  // Records still queued or being written by the writer (appended before a Reopen made the
  // device direct) go first.
  if (unwritten_.load(std::memory_order_acquire) > 0 || !direct_.load(std::memory_order_acquire)) {
    return std::nullopt;
  }
  return WriteRecords(batch);
}

absl::Status FileDevice::Append(std::string record_json) {
  {
    std::vector<std::string> records;
    records.push_back(std::move(record_json));
    if (std::optional<absl::Status> written = TryAppendDirect(records)) return *written;
    record_json = std::move(records[0]);
  }
  auto slot = std::make_shared<Slot>();
  absl::MutexLock lock(&mu_);
  auto has_room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closing_ || queue_.size() < options_.queue_capacity;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&has_room), options_.timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("audit: device ", path_,
                                                    " queue stayed full for ",
                                                    absl::FormatDuration(options_.timeout)));
  }
  if (absl::Status refused = Refusal(); !refused.ok()) return refused;
  queue_.push_back(Pending{std::move(record_json), slot, nullptr});
  unwritten_.fetch_add(1, std::memory_order_relaxed);
  if (!mu_.AwaitWithTimeout(absl::Condition(&slot->done), options_.timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("audit: device ", path_,
                                                    " did not write a record within ",
                                                    absl::FormatDuration(options_.timeout)));
  }
  return slot->status;
}

void FileDevice::AppendAsync(std::string record_json, Done done) {
  std::vector<std::string> records;
  records.push_back(std::move(record_json));
  AppendAsync(std::move(records), std::move(done));
}

void FileDevice::AppendAsync(std::vector<std::string> records, Done done) {
  if (records.empty()) {
    done(absl::OkStatus());
    return;
  }
  if (std::optional<absl::Status> written = TryAppendDirect(records)) {
    done(*std::move(written));
    return;
  }
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    refused = Refusal();
    if (refused.ok() && queue_.size() + records.size() > options_.queue_capacity) {
      refused = absl::UnavailableError(absl::StrCat("audit: device ", path_, " queue is full"));
    }
    if (refused.ok()) {
      // The writer takes the whole queue at once, so these records share one batch (one
      // write, one outcome): only the last carries `done`.
      for (size_t i = 0; i < records.size(); ++i) {
        queue_.push_back(Pending{std::move(records[i]), nullptr,
                                 i + 1 == records.size() ? std::move(done) : Done()});
      }
      unwritten_.fetch_add(records.size(), std::memory_order_relaxed);
      return;
    }
  }
  done(std::move(refused));
}

absl::Status FileDevice::Reopen() {
  absl::MutexLock lock(&mu_);
  if (closing_)
    return absl::FailedPreconditionError(absl::StrCat("audit: device ", path_, " is closed"));
  if (reopen_ == nullptr) reopen_ = std::make_shared<Slot>();
  std::shared_ptr<Slot> slot = reopen_;
  // No deadline: the writer takes the request after its current batch, and every batch is
  // bounded by the file system's own progress.
  mu_.Await(absl::Condition(&slot->done));
  return slot->status;
}

absl::Status FileDevice::SwitchFile() {
  int old_fd = -1, new_fd = -1;
  bool old_regular = false, new_regular = false, rotation_line = false;
  {
    absl::MutexLock write_lock(&write_mu_);
    struct stat now, current;
    if (::fstat(fd_, &current) == 0 && ::stat(path_.c_str(), &now) == 0 &&
        now.st_dev == current.st_dev && now.st_ino == current.st_ino) {
      spdlog::info("event=audit_reopen_skipped path={} reason=same_file", path_);
      return absl::OkStatus();
    }
    // Sign the old file's tail so that it verifies on its own once rotated (synced below).
    if (since_checkpoint_ > 0) {
      ChainHead saved = head_;
      size_t saved_since = since_checkpoint_;
      std::string buf;
      absl::Status s = AddCheckpoint(buf);
      if (s.ok()) s = WriteBatch(buf);
      if (!s.ok()) {
        head_ = std::move(saved);
        since_checkpoint_ = saved_since;
        spdlog::error("event=audit_rotation_checkpoint_failed path={} error={}", path_,
                      std::string(s.message()));
        // Go on: the old file ends with an open tail, the new one still links to its last line.
      } else {
        checkpoints_written_.fetch_add(1, std::memory_order_relaxed);
        batches_written_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    WARD_ASSIGN_OR_RETURN(OpenedFile f, OpenForAppend(path_));
    old_fd = fd_;
    old_regular = regular_;
    const uint64_t old_offset = offset_;
    fd_ = f.fd;
    regular_ = f.regular;
    offset_ = f.size;
    bool fresh = f.size == 0 && f.head.seq == 0;
    if (fresh && head_.seq > 0) {
      // Continue the chain in the new file with a signed rotation line.
      std::string time = core::FormatRfc3339Nanos(clock_.Now());
      uint64_t seq = head_.seq + 1;
      absl::StatusOr<std::string> sig = signer_.Sign(RotationMessage(seq, head_.hash, time));
      absl::Status s = sig.status();
      std::string line;
      if (s.ok()) {
        line = RotationLine(seq, head_.hash, time, *sig);
        s = WriteBatch(absl::StrCat(line, "\n"));
      }
      if (!s.ok()) {
        ::close(fd_);
        fd_ = old_fd;
        regular_ = old_regular;
        offset_ = old_offset;
        return s;
      }
      head_.seq = seq;
      head_.hash = LineHash(line);
      head_.last_is_checkpoint = true;
      since_checkpoint_ = 0;
      rotation_line = true;
    } else if (!fresh) {
      // Another Ward audit file sits at the path (e.g. moved back): continue its chain, as Open.
      spdlog::warn("event=audit_reopen_continues_existing_file path={} seq={}", path_,
                   f.head.seq);
      head_ = std::move(f.head);
      since_checkpoint_ = head_.seq > 0 && !head_.last_is_checkpoint ? 1 : 0;
    }
    new_fd = fd_;
    new_regular = regular_;
    direct_.store(WritesDirectly(fd_, regular_, options_), std::memory_order_release);
  }
  // Without the write lock: records go on into the new file while the disk flushes the old
  // one (a flush takes milliseconds, and direct appends run on event loops).
  const absl::Status old_synced = old_regular ? SyncFd(old_fd) : absl::OkStatus();
  if (options_.sync_interval > absl::ZeroDuration()) RetargetSyncs(new_fd);
  ::close(old_fd);
  const absl::Status new_synced =
      rotation_line && new_regular ? SyncFd(new_fd) : absl::OkStatus();
  absl::MutexLock lock(&mu_);
  // A failed sync of either file breaks the device, as after any write (RecordSync).
  if (old_regular) RecordSync(old_synced);
  if (rotation_line && new_regular) RecordSync(new_synced);
  ++reopens_;
  return new_synced;
}

absl::Status FileDevice::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return close_status_;
    if (closing_) {
      // Another thread is closing: wait for it.
      mu_.Await(absl::Condition(&closed_));
      return close_status_;
    }
    closing_ = true;
    refusing_.store(true, std::memory_order_release);
  }
  writer_.join();
  {
    absl::MutexLock lock(&mu_);
    syncer_stop_ = true;
  }
  if (syncer_.joinable()) syncer_.join();  // after the syncs still wanted
  {
    absl::MutexLock write_lock(&write_mu_);
    ::close(fd_);
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
  return close_status_;
}

FileDevice::Stats FileDevice::GetStats() const {
  Stats stats;
  stats.records = records_written_.load(std::memory_order_relaxed);
  stats.checkpoints = checkpoints_written_.load(std::memory_order_relaxed);
  stats.batches = batches_written_.load(std::memory_order_relaxed);
  stats.failures = failed_batches_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  stats.syncs = syncs_;
  stats.reopens = reopens_;
  stats.queued = queue_.size();
  return stats;
}

absl::Status FileDevice::AddCheckpoint(std::string& buf) {
  std::string time = core::FormatRfc3339Nanos(clock_.Now());
  uint64_t seq = head_.seq + 1;
  WARD_ASSIGN_OR_RETURN(std::string sig, signer_.Sign(CheckpointMessage(seq, head_.hash, time)));
  std::string line = CheckpointLine(seq, head_.hash, time, sig);
  head_.seq = seq;
  head_.hash = LineHash(line);
  head_.last_is_checkpoint = true;
  since_checkpoint_ = 0;
  absl::StrAppend(&buf, line, "\n");
  return absl::OkStatus();
}

namespace {
// At least the length of a checkpoint line and its newline (CheckpointLine: a seq, a hash, an
// RFC 3339 time and an Ed25519 signature in hex come to about 290 bytes). Only sizes buffers.
constexpr size_t kCheckpointLineBound = 400;
}  // namespace

FileDevice::Batch FileDevice::PrepareBatch(const std::vector<std::string_view>& records) const {
  Batch batch;
  batch.records.reserve(records.size());
  size_t size =
      (records.size() / std::max<size_t>(options_.checkpoint_every, 1) + 1) * kCheckpointLineBound;
  for (std::string_view record : records) {
    batch.records.emplace_back(record);
    size += batch.records.back().LineSizeBound();
  }
  batch.buf.reserve(size);
  return batch;
}

absl::Status FileDevice::WriteRecords(Batch& batch) {
  ChainHead saved = head_;
  const size_t saved_since = since_checkpoint_;
  size_t checkpoints = 0;
  absl::Status result;
  for (PrehashedRecord& record : batch.records) {
    std::string hash = std::move(record).AppendLine(head_.seq + 1, head_.hash, batch.buf);
    head_.seq += 1;
    head_.hash = std::move(hash);
    head_.last_is_checkpoint = false;
    if (++since_checkpoint_ >= options_.checkpoint_every) {
      result = AddCheckpoint(batch.buf);
      if (!result.ok()) break;
      ++checkpoints;
    }
  }
  if (result.ok()) result = WriteBatch(batch.buf);
  if (!result.ok()) {
    head_ = std::move(saved);
    since_checkpoint_ = saved_since;
    spdlog::error("event=audit_write_failed path={} records={} error={}", path_,
                  batch.records.size(), std::string(result.message()));
    failed_batches_.fetch_add(1, std::memory_order_relaxed);
    return result;
  }
  records_written_.fetch_add(batch.records.size(), std::memory_order_relaxed);
  if (checkpoints > 0) checkpoints_written_.fetch_add(checkpoints, std::memory_order_relaxed);
  batches_written_.fetch_add(1, std::memory_order_relaxed);
  if (regular_ && options_.sync_interval > absl::ZeroDuration()) {
    // The sync thread syncs these within the interval, and at once after a checkpoint. (With
    // no interval there is no sync thread: the writer syncs after each batch.) An exchange,
    // not a load: if unsynced_ was still set, the sync that clears it begins after this write
    // and covers it.
    const bool was_unsynced = unsynced_.exchange(true, std::memory_order_acq_rel);
    if (!was_unsynced || checkpoints > 0) {
      absl::MutexLock lock(&mu_);  // wakes the sync thread (see unsynced_)
      if (checkpoints > 0) sync_wanted_ = true;
    }
  }
  return result;
}

absl::Status FileDevice::WriteBatch(const std::string& buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      // Cut off a partly written batch so the file still ends on a whole line of the chain.
      if (regular_ && done > 0 && ::ftruncate(fd_, static_cast<off_t>(offset_)) != 0) {
        spdlog::error("event=audit_truncate_failed path={}", path_);
      }
      return ErrnoStatus(err, "write", path_);
    }
    done += static_cast<size_t>(n);
  }
  offset_ += buf.size();
  return absl::OkStatus();
}

absl::Status FileDevice::Sync() {
  {
    absl::MutexLock lock(&mu_);
    unsynced_.store(false, std::memory_order_release);
    last_sync_ = std::chrono::steady_clock::now();
  }
  if (!regular_) return absl::OkStatus();  // devices, pipes: nothing to sync
  return SyncFd(fd_);
}

absl::Status FileDevice::SyncFd(int fd) const {
  if (options_.before_sync) options_.before_sync();
  if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync", path_);
  return absl::OkStatus();
}

void FileDevice::SyncWritten() {
  absl::Status synced = Sync();
  absl::MutexLock lock(&mu_);
  if (regular_) RecordSync(synced);
}

void FileDevice::RecordSync(const absl::Status& synced) {
  ++syncs_;
  if (!synced.ok()) {
    // After a failed fdatasync the kernel may have dropped the dirty pages: nothing written
    // since the last good sync can be trusted, so stop accepting records.
    spdlog::error("event=audit_sync_failed path={} error={}", path_,
                  std::string(synced.message()));
    broken_ = synced;
    refusing_.store(true, std::memory_order_release);
  }
}

void FileDevice::RetargetSyncs(int fd) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !sync_wanted_ && !sync_running_; };
  mu_.Await(absl::Condition(&idle));
  sync_fd_ = fd;
  // Records may have gone into the new file since the switch (the old one is synced by the
  // writer itself).
  unsynced_.store(true, std::memory_order_release);
}

void FileDevice::SyncerLoop() {
  const auto interval = absl::ToChronoNanoseconds(options_.sync_interval);
  absl::MutexLock lock(&mu_);
  auto wanted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return sync_wanted_ || syncer_stop_; };
  auto work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return sync_wanted_ || syncer_stop_ || unsynced_.load(std::memory_order_acquire);
  };
  for (;;) {
    if (!sync_wanted_ && !syncer_stop_) {
      if (!unsynced_.load(std::memory_order_acquire)) {
        mu_.Await(absl::Condition(&work));
        continue;
      }
      // Written records wait for their sync no longer than the interval.
      const auto due = last_sync_ + interval;
      const auto now = std::chrono::steady_clock::now();
      if (now < due) {
        mu_.AwaitWithTimeout(absl::Condition(&wanted), absl::FromChrono(due - now));
        continue;
      }
      sync_wanted_ = true;
    }
    // Stopping: a last sync if records were written since the last one began.
    if (!sync_wanted_ && !unsynced_.load(std::memory_order_acquire)) return;
    sync_wanted_ = false;
    unsynced_.store(false, std::memory_order_release);
    last_sync_ = std::chrono::steady_clock::now();
    sync_running_ = true;
    const int fd = sync_fd_;
    absl::Status synced;
    {
      // Records go on being written meanwhile; `fd` is closed only once this sync is done
      // (RetargetSyncs, Close).
      mu_.Unlock();
      synced = SyncFd(fd);
      mu_.Lock();
    }
    sync_running_ = false;
    RecordSync(synced);
  }
}

void FileDevice::WriterLoop() {
  for (;;) {
    std::vector<Pending> batch;
    bool closing;
    std::shared_ptr<Slot> reopen;  // a Reopen to serve after this batch
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return closing_ || !queue_.empty() || reopen_ != nullptr;
      };
      mu_.Await(absl::Condition(&ready));
      closing = closing_;
      reopen = std::move(reopen_);
      reopen_ = nullptr;
      batch.reserve(queue_.size());
      for (Pending& p : queue_) batch.push_back(std::move(p));
      queue_.clear();
    }
    if (!batch.empty()) {
      std::vector<std::string_view> records;
      records.reserve(batch.size());
      for (const Pending& p : batch) records.push_back(p.record);
      Batch prepared = PrepareBatch(records);
      absl::Status result;
      {
        absl::MutexLock write_lock(&write_mu_);
        result = WriteRecords(prepared);
        // Answered or not, these are no longer ahead of a direct append.
        unwritten_.fetch_sub(batch.size(), std::memory_order_release);
      }
      {
        absl::MutexLock lock(&mu_);
        for (Pending& p : batch) {
          if (p.slot == nullptr) continue;
          p.slot->status = result;
          p.slot->done = true;
        }
      }
      for (Pending& p : batch) {
        if (p.done) p.done(result);
      }
      if (result.ok() && options_.sync_interval <= absl::ZeroDuration()) {
        absl::MutexLock write_lock(&write_mu_);
        SyncWritten();  // after answering: the records were written before it
      }
    }
    if (reopen != nullptr) {
      absl::Status status = SwitchFile();
      if (status.ok()) {
        spdlog::info("event=audit_reopened path={}", path_);
      } else {
        spdlog::error("event=audit_reopen_failed path={} error={} (still appending to the "
                      "previously open file)",
                      path_, std::string(status.message()));
      }
      absl::MutexLock lock(&mu_);
      reopen->status = status;
      reopen->done = true;
    }
    if (closing) {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) break;
    }
  }
  // Clean close: sign the records since the last checkpoint. (Direct appends are refused from
  // now on: closing_ is set.)
  absl::MutexLock write_lock(&write_mu_);
  absl::Status status = absl::OkStatus();
  if (since_checkpoint_ > 0) {
    std::string buf;
    status = AddCheckpoint(buf);
    if (status.ok()) status = WriteBatch(buf);
    if (status.ok()) status = Sync();
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      checkpoints_written_.fetch_add(1, std::memory_order_relaxed);
      batches_written_.fetch_add(1, std::memory_order_relaxed);
      if (regular_) ++syncs_;
    }
  }
  absl::MutexLock lock(&mu_);
  close_status_ = status;
}

}  // namespace ward::audit
