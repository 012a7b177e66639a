#include "storage/testing/faulty_vfs.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ward::storage::testing {

// One open file: SQLite allocates vfs.szOsFile bytes; this header comes first and the default
// VFS's own file object follows it.
struct FaultyFile {
  sqlite3_file base;  // must be first: SQLite sees a sqlite3_file*
  FaultyVfs* owner;
  sqlite3_file* real;  // points just past this header
  int open_flags;
  int padding;
};
static_assert(sizeof(FaultyFile) % 8 == 0, "the real file object must stay 8-byte aligned");

struct FaultyVfsCallbacks {
  static FaultyVfs& Owner(sqlite3_vfs* vfs) { return *static_cast<FaultyVfs*>(vfs->pAppData); }
  static sqlite3_vfs* Base(sqlite3_vfs* vfs) { return Owner(vfs).base_; }
  static sqlite3_file* Real(sqlite3_file* file) {
    return reinterpret_cast<FaultyFile*>(file)->real;
  }

  // sqlite3_io_methods, version 3 (what the unix VFS provides).
  static int Close(sqlite3_file* file) { return Real(file)->pMethods->xClose(Real(file)); }
  static int Read(sqlite3_file* file, void* buf, int amount, sqlite3_int64 offset) {
    return Real(file)->pMethods->xRead(Real(file), buf, amount, offset);
  }
  static int Write(sqlite3_file* file, const void* buf, int amount, sqlite3_int64 offset) {
    auto* f = reinterpret_cast<FaultyFile*>(file);
    if (int rc = f->owner->Admit(false, f->open_flags); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, buf, amount, offset);
  }
  static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
    return Real(file)->pMethods->xTruncate(Real(file), size);
  }
  static int Sync(sqlite3_file* file, int flags) {
    auto* f = reinterpret_cast<FaultyFile*>(file);
    if (int rc = f->owner->Admit(true, f->open_flags); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xSync(f->real, flags);
  }
  static int FileSize(sqlite3_file* file, sqlite3_int64* size) {
    return Real(file)->pMethods->xFileSize(Real(file), size);
  }
  static int Lock(sqlite3_file* file, int level) {
    return Real(file)->pMethods->xLock(Real(file), level);
  }
  static int Unlock(sqlite3_file* file, int level) {
    return Real(file)->pMethods->xUnlock(Real(file), level);
  }
  static int CheckReservedLock(sqlite3_file* file, int* out) {
    return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
  }
  static int FileControl(sqlite3_file* file, int op, void* arg) {
    return Real(file)->pMethods->xFileControl(Real(file), op, arg);
  }
  static int SectorSize(sqlite3_file* file) {
    return Real(file)->pMethods->xSectorSize(Real(file));
  }
  static int DeviceCharacteristics(sqlite3_file* file) {
    return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
  }
  static int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
  }
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
    return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }
  static int ShmUnmap(sqlite3_file* file, int delete_flag) {
    return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
  }
  static int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
    return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
  }
  static int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
  }

  static constexpr sqlite3_io_methods kIoMethods = {
      3,
      Close,
      Read,
      Write,
      Truncate,
      Sync,
      FileSize,
      Lock,
      Unlock,
      CheckReservedLock,
      FileControl,
      SectorSize,
      DeviceCharacteristics,
      ShmMap,
      ShmLock,
      ShmBarrier,
      ShmUnmap,
      Fetch,
      Unfetch,
  };

  // sqlite3_vfs, version 3.
  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
    auto* f = reinterpret_cast<FaultyFile*>(file);
    f->owner = &Owner(vfs);
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->open_flags = flags;
    sqlite3_vfs* base = Base(vfs);
    int rc = base->xOpen(base, name, f->real, flags, out_flags);
    // SQLite calls xClose exactly when pMethods is set, so mirror the real file's state.
    if (f->real->pMethods == nullptr) {
      f->base.pMethods = nullptr;
    } else if (f->real->pMethods->iVersion < 3) {
      // The forwarding table claims version 3; a base VFS offering less is not supported.
      f->real->pMethods->xClose(f->real);
      f->base.pMethods = nullptr;
      return SQLITE_CANTOPEN;
    } else {
      f->base.pMethods = &kIoMethods;
    }
    return rc;
  }
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    return Base(vfs)->xDelete(Base(vfs), name, sync_dir);
  }
  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    return Base(vfs)->xAccess(Base(vfs), name, flags, out);
  }
  static int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
    return Base(vfs)->xFullPathname(Base(vfs), name, size, out);
  }
  static void* DlOpen(sqlite3_vfs* vfs, const char* name) {
    return Base(vfs)->xDlOpen(Base(vfs), name);
  }
  static void DlError(sqlite3_vfs* vfs, int size, char* out) {
    Base(vfs)->xDlError(Base(vfs), size, out);
  }
  static void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
    return Base(vfs)->xDlSym(Base(vfs), handle, symbol);
  }
  static void DlClose(sqlite3_vfs* vfs, void* handle) { Base(vfs)->xDlClose(Base(vfs), handle); }
  static int Randomness(sqlite3_vfs* vfs, int size, char* out) {
    return Base(vfs)->xRandomness(Base(vfs), size, out);
  }
  static int Sleep(sqlite3_vfs* vfs, int micros) { return Base(vfs)->xSleep(Base(vfs), micros); }
  static int CurrentTime(sqlite3_vfs* vfs, double* out) {
    return Base(vfs)->xCurrentTime(Base(vfs), out);
  }
  static int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
    return Base(vfs)->xGetLastError(Base(vfs), size, out);
  }
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    return Base(vfs)->xCurrentTimeInt64(Base(vfs), out);
  }
  static int SetSystemCall(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr call) {
    return Base(vfs)->xSetSystemCall(Base(vfs), name, call);
  }
  static sqlite3_syscall_ptr GetSystemCall(sqlite3_vfs* vfs, const char* name) {
    return Base(vfs)->xGetSystemCall(Base(vfs), name);
  }
  static const char* NextSystemCall(sqlite3_vfs* vfs, const char* name) {
    return Base(vfs)->xNextSystemCall(Base(vfs), name);
  }
};

FaultyVfs::FaultyVfs(std::string name, sqlite3_vfs* base) : name_(std::move(name)), base_(base) {
  using C = FaultyVfsCallbacks;
  vfs_.iVersion = 3;
  vfs_.szOsFile = static_cast<int>(sizeof(FaultyFile)) + base->szOsFile;
  vfs_.mxPathname = base->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = C::Open;
  vfs_.xDelete = C::Delete;
  vfs_.xAccess = C::Access;
  vfs_.xFullPathname = C::FullPathname;
  vfs_.xDlOpen = C::DlOpen;
  vfs_.xDlError = C::DlError;
  vfs_.xDlSym = C::DlSym;
  vfs_.xDlClose = C::DlClose;
  vfs_.xRandomness = C::Randomness;
  vfs_.xSleep = C::Sleep;
  vfs_.xCurrentTime = C::CurrentTime;
  vfs_.xGetLastError = C::GetLastError;
  vfs_.xCurrentTimeInt64 = C::CurrentTimeInt64;
  vfs_.xSetSystemCall = C::SetSystemCall;
  vfs_.xGetSystemCall = C::GetSystemCall;
  vfs_.xNextSystemCall = C::NextSystemCall;
}

absl::StatusOr<std::unique_ptr<FaultyVfs>> FaultyVfs::Register(std::string name) {
  if (name.empty()) return absl::InvalidArgumentError("faulty vfs: empty name");
  sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
  if (base == nullptr) return absl::InternalError("faulty vfs: SQLite has no default VFS");
  if (base->iVersion < 3) {
    return absl::InternalError("faulty vfs: the default VFS is older than version 3");
  }
  if (sqlite3_vfs_find(name.c_str()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("faulty vfs: a VFS named ", name, " exists"));
  }
  std::unique_ptr<FaultyVfs> vfs(new FaultyVfs(std::move(name), base));
  if (int rc = sqlite3_vfs_register(&vfs->vfs_, /*makeDflt=*/0); rc != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("faulty vfs: register: ", sqlite3_errstr(rc)));
  }
  return vfs;
}

FaultyVfs::~FaultyVfs() { sqlite3_vfs_unregister(&vfs_); }

void FaultyVfs::Inject(Fault fault, uint64_t after, FaultTarget target) {
  absl::MutexLock lock(&mu_);
  fault_ = fault;
  target_ = target;
  pass_remaining_ = after;
}

int FaultyVfs::Admit(bool sync, int open_flags) {
  absl::MutexLock lock(&mu_);
  const bool sync_fault = fault_ == Fault::kSyncError;
  bool matches = fault_ != Fault::kNone && sync == sync_fault;
  switch (target_) {
    case FaultTarget::kAnyFile:
      break;
    case FaultTarget::kMainDatabase:
      matches = matches && (open_flags & SQLITE_OPEN_MAIN_DB) != 0;
      break;
    case FaultTarget::kWal:
      matches = matches && (open_flags & SQLITE_OPEN_WAL) != 0;
      break;
  }
  if (matches && pass_remaining_ == 0) {
    ++injected_;
    switch (fault_) {
      case Fault::kDiskFull:
        return SQLITE_FULL;
      case Fault::kWriteError:
        return SQLITE_IOERR_WRITE;
      case Fault::kSyncError:
        return SQLITE_IOERR_FSYNC;
      case Fault::kNone:
        break;
    }
  }
  if (matches) --pass_remaining_;
  ++(sync ? syncs_ : writes_);
  return SQLITE_OK;
}

uint64_t FaultyVfs::writes() const {
  absl::MutexLock lock(&mu_);
  return writes_;
}

uint64_t FaultyVfs::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

uint64_t FaultyVfs::injected() const {
  absl::MutexLock lock(&mu_);
  return injected_;
}

}  // namespace ward::storage::testing
