// ThreadSanitizer shim for Debian's uninstrumented Abseil (built only with -DWARD_TSAN=ON).
// Covers absl::Mutex, absl::CondVar, absl::Notification and absl::Status's reference count.
//
// Debian 12 ships libabsl_synchronization.so without TSan, so TSan sees neither the lock nor the
// unlock of an absl::Mutex and reports every ABSL_GUARDED_BY field as racy. This file defines,
// in the executable, the exported out-of-line members of absl::Mutex, absl::CondVar and
// absl::Notification. The dynamic linker resolves every call to them (from Ward's code and, as
// the library is not linked with -Bsymbolic, from the library's own PLT calls too) to these
// definitions; each one tells TSan what happens (the same __tsan_mutex_* annotations Abseil
// makes itself when built with TSan) and forwards to the library's definition, found with
// dlsym(RTLD_NEXT, <mangled name>).
//
// Conditions (LockWhen/Await) are evaluated by Abseil while it holds the mutex, sometimes by
// another thread (the one unlocking). The shim wraps each Condition in a trampoline that
// annotates the evaluation as done under the mutex, like Abseil's EvalConditionAnnotated: a
// thread-local record says whether the evaluating thread is in a lock or an unlock operation
// on that mutex.
//
// Thread-safety: every function here is as thread-safe as the Abseil function it wraps.
// Nothing here is used outside the TSan build; no Ward code calls it directly.

#ifndef __SANITIZE_THREAD__
#error "tsan_absl_shim.cc is only for the ThreadSanitizer build (WARD_TSAN=ON)"
#endif

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// Returns the library's definition of `mangled`; aborts if there is none (the shim would
// otherwise call itself forever).
void* Real(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_shim: no definition of %s after the executable\n", mangled);
    std::abort();
  }
  return fn;
}

// Looks the real function up once per call site. `Sig` is the member function's signature with
// `this` as the first parameter (the Itanium C++ ABI passes it exactly like that).
#define WARD_REAL(Sig, mangled)                                          \
  ([]() -> Sig {                                                        \
    static const auto fn = reinterpret_cast<Sig>(Real(mangled));        \
    return fn;                                                          \
  }())

// Abseil's Mutex is one word; bit 3 (kMuWriter) is set while it is held exclusively. Used to
// tell TSan whether the caller of Await/CondVar::Wait holds it as a writer or a reader.
static_assert(sizeof(absl::Mutex) == sizeof(std::atomic<intptr_t>));
constexpr intptr_t kMuWriter = 0x0008;

unsigned HeldFlags(absl::Mutex* mu) {
  const auto* word = reinterpret_cast<const std::atomic<intptr_t>*>(mu);
  return (word->load(std::memory_order_relaxed) & kMuWriter) != 0 ? 0 : __tsan_mutex_read_lock;
}

// What the current thread is doing inside Abseil, for the condition trampoline.
enum class Phase { kLocking, kUnlocking };
struct Op {
  absl::Mutex* mu;
  Phase phase;
  unsigned flags;  // the TSan flags of the current operation (read_lock, try_lock)
};
thread_local const Op* current_op = nullptr;

// Sets current_op for the lifetime of the scope (operations nest when a Condition's function
// itself uses another mutex).
class OpScope {
 public:
  OpScope(absl::Mutex* mu, Phase phase, unsigned flags)
      : op_{mu, phase, flags}, saved_(current_op) {
    current_op = &op_;
  }
  ~OpScope() { current_op = saved_; }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  Op op_;
  const Op* saved_;
};

// A Condition that evaluates `inner` with the annotations of Abseil's EvalConditionAnnotated.
class AnnotatedCondition {
 public:
  // Publishes the Condition (and what it points to) to the thread that may evaluate it: the
  // waiter queue that carries it there lives inside the library and TSan cannot see it. The
  // cost is a little extra ordering (the waiter's earlier writes become visible to an unlocking
  // thread that evaluates this condition), never a false report.
  AnnotatedCondition(absl::Mutex* mu, const absl::Condition& inner)
      : mu_(mu), inner_(&inner), wrapped_(&Eval, this) {
    // Must run outside __tsan_mutex_pre_lock/post_lock: TSan ignores synchronisation there.
    __tsan_release(this);
  }
  AnnotatedCondition(const AnnotatedCondition&) = delete;
  AnnotatedCondition& operator=(const AnnotatedCondition&) = delete;

  // The condition to hand to Abseil; kTrue is passed through (Abseil never evaluates it).
  const absl::Condition& get() const {
    return inner_ == &absl::Condition::kTrue ? *inner_ : wrapped_;
  }

 private:
  static bool Eval(void* arg) {
    // Runs inside an annotated lock or unlock, where TSan ignores memory accesses and
    // synchronisation: *self is read here, once, unchecked; the evaluation itself is checked.
    auto* self = static_cast<AnnotatedCondition*>(arg);
    absl::Mutex* const mu = self->mu_;
    const absl::Condition* const inner = self->inner_;
    const Op* op = current_op;
    if (op == nullptr || op->mu != mu) {
      // Not inside an annotated operation on this mutex (not expected): evaluate as is.
      __tsan_acquire(self);
      return inner->Eval();
    }
    const unsigned flags = op->flags;
    const unsigned lock_flags = flags & __tsan_mutex_read_lock;
    bool result;
    if (op->phase == Phase::kLocking) {
      // Pretend the lock finished, evaluate, unlock, and start locking again.
      __tsan_mutex_post_lock(mu, flags, 0);
      __tsan_acquire(self);
      result = inner->Eval();
      __tsan_mutex_pre_unlock(mu, lock_flags);
      __tsan_mutex_post_unlock(mu, lock_flags);
      __tsan_mutex_pre_lock(mu, flags);
    } else {
      // Pretend the unlock finished, lock, evaluate, and start unlocking again.
      __tsan_mutex_post_unlock(mu, lock_flags);
      __tsan_mutex_pre_lock(mu, lock_flags);
      __tsan_mutex_post_lock(mu, lock_flags, 0);
      __tsan_acquire(self);
      result = inner->Eval();
      __tsan_mutex_pre_unlock(mu, lock_flags);
    }
    return result;
  }

  absl::Mutex* mu_;
  const absl::Condition* inner_;
  absl::Condition wrapped_;
};

// True when the current thread is already inside an annotated operation on `mu`: the library
// implements some entry points by calling others through its PLT (LockWhenWithTimeout calls
// LockWhenWithDeadline, for instance), and those calls land here again. The outer call
// annotates; the inner one only forwards (its Condition is already wrapped).
bool Nested(const absl::Mutex* mu) { return current_op != nullptr && current_op->mu == mu; }

// Annotates a whole lock operation (Lock, LockWhen...) of `mu` with `flags` around `call`, which
// gets the Condition to use (wrapped) or nullptr. Returns what `call` returns.
template <typename Call>
void AnnotatedLock(absl::Mutex* mu, unsigned flags, const absl::Condition* cond, Call call) {
  if (Nested(mu)) return call(cond);
  if (cond == nullptr) {
    OpScope scope(mu, Phase::kLocking, flags);
    __tsan_mutex_pre_lock(mu, flags);
    call(nullptr);
    __tsan_mutex_post_lock(mu, flags, 0);
    return;
  }
  AnnotatedCondition annotated(mu, *cond);
  OpScope scope(mu, Phase::kLocking, flags);
  __tsan_mutex_pre_lock(mu, flags);
  call(&annotated.get());
  __tsan_mutex_post_lock(mu, flags, 0);
}

// Same for the operations that return a bool but always end holding the lock.
template <typename Call>
bool AnnotatedLockBool(absl::Mutex* mu, unsigned flags, const absl::Condition& cond, Call call) {
  if (Nested(mu)) return call(cond);
  AnnotatedCondition annotated(mu, cond);
  OpScope scope(mu, Phase::kLocking, flags);
  __tsan_mutex_pre_lock(mu, flags);
  const bool result = call(annotated.get());
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// Await and CondVar::Wait release `mu` inside Abseil and take it back (in the mode the caller
// held it) before returning: annotated as a full unlock, then a lock.
template <typename Call>
bool AnnotatedRelock(absl::Mutex* mu, const absl::Condition* cond, Call call) {
  if (Nested(mu)) return call(cond);
  const unsigned flags = HeldFlags(mu);
  // CondVar waits have no condition; kTrue stands in and is never handed to Abseil.
  AnnotatedCondition annotated(mu, cond != nullptr ? *cond : absl::Condition::kTrue);
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
  OpScope scope(mu, Phase::kLocking, flags);
  __tsan_mutex_pre_lock(mu, flags);
  const bool result = call(cond != nullptr ? &annotated.get() : nullptr);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

template <typename Call>
bool AnnotatedTryLock(absl::Mutex* mu, unsigned flags, Call call) {
  if (Nested(mu)) return call();
  flags |= __tsan_mutex_try_lock;
  OpScope scope(mu, Phase::kLocking, flags);
  __tsan_mutex_pre_lock(mu, flags);
  const bool locked = call();
  __tsan_mutex_post_lock(mu, locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  return locked;
}

template <typename Call>
void AnnotatedUnlock(absl::Mutex* mu, unsigned flags, Call call) {
  if (Nested(mu)) return call();
  OpScope scope(mu, Phase::kUnlocking, flags);
  __tsan_mutex_pre_unlock(mu, flags);
  call();
  __tsan_mutex_post_unlock(mu, flags);
}

// Notification: Abseil's fast paths are atomics inside the library; the instrumented inline
// HasBeenNotified() does an acquire load of notified_yet_, so the release goes to that address.
static_assert(sizeof(absl::Notification) == 2 * sizeof(absl::Mutex));
void* NotifiedFlag(const absl::Notification* n) {
  return reinterpret_cast<char*>(const_cast<absl::Notification*>(n)) + sizeof(absl::Mutex);
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

}  // namespace

// Read by the TSan runtime at start-up in every executable of the TSan build (TSAN_OPTIONS
// overrides the options). Suppressions name third-party internals only, each with its reason:
// - std::_Sp_atomic: libstdc++ 12's std::atomic<std::shared_ptr> releases its internal lock
//   with a relaxed store after load(), so TSan sees no order between a load()'s read of the
//   pointer and the next store()'s write, both made under that lock
//   (https://github.com/google/sanitizers/issues/1558). Used by auth::PolicyStore's snapshot.
extern "C" const char* __tsan_default_suppressions() { return "race:std::_Sp_atomic\n"; }
extern "C" const char* __tsan_default_options() {
  return "halt_on_error=1 second_deadlock_stack=1";
}

namespace absl {
ABSL_NAMESPACE_BEGIN

// The mangled names below use absl::debian3 (Debian's ABSL_OPTION_INLINE_NAMESPACE_NAME).
#define WARD_NS "N4absl7debian3"

Mutex::~Mutex() {
  __tsan_mutex_destroy(this, 0);
  WARD_REAL(void (*)(Mutex*), "_Z" WARD_NS "5MutexD1Ev")(this);
}

void Mutex::Lock() {
  AnnotatedLock(this, 0, nullptr, [this](const Condition*) {
    WARD_REAL(void (*)(Mutex*), "_Z" WARD_NS "5Mutex4LockEv")(this);
  });
}

void Mutex::ReaderLock() {
  AnnotatedLock(this, __tsan_mutex_read_lock, nullptr, [this](const Condition*) {
    WARD_REAL(void (*)(Mutex*), "_Z" WARD_NS "5Mutex10ReaderLockEv")(this);
  });
}

bool Mutex::TryLock() {
  return AnnotatedTryLock(this, 0, [this] {
    return WARD_REAL(bool (*)(Mutex*), "_Z" WARD_NS "5Mutex7TryLockEv")(this);
  });
}

bool Mutex::ReaderTryLock() {
  return AnnotatedTryLock(this, __tsan_mutex_read_lock, [this] {
    return WARD_REAL(bool (*)(Mutex*), "_Z" WARD_NS "5Mutex13ReaderTryLockEv")(this);
  });
}

void Mutex::Unlock() {
  AnnotatedUnlock(this, 0, [this] {
    WARD_REAL(void (*)(Mutex*), "_Z" WARD_NS "5Mutex6UnlockEv")(this);
  });
}

void Mutex::ReaderUnlock() {
  AnnotatedUnlock(this, __tsan_mutex_read_lock, [this] {
    WARD_REAL(void (*)(Mutex*), "_Z" WARD_NS "5Mutex12ReaderUnlockEv")(this);
  });
}

void Mutex::LockWhen(const Condition& cond) {
  AnnotatedLock(this, 0, &cond, [this](const Condition* c) {
    WARD_REAL(void (*)(Mutex*, const Condition&),
              "_Z" WARD_NS "5Mutex8LockWhenERKNS0_9ConditionE")(this, *c);
  });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  AnnotatedLock(this, __tsan_mutex_read_lock, &cond, [this](const Condition* c) {
    WARD_REAL(void (*)(Mutex*, const Condition&),
              "_Z" WARD_NS "5Mutex14ReaderLockWhenERKNS0_9ConditionE")(this, *c);
  });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return AnnotatedLockBool(this, 0, cond, [&](const Condition& c) {
    return WARD_REAL(bool (*)(Mutex*, const Condition&, Duration),
                     "_Z" WARD_NS "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE")(
        this, c, timeout);
  });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return AnnotatedLockBool(this, __tsan_mutex_read_lock, cond, [&](const Condition& c) {
    return WARD_REAL(
        bool (*)(Mutex*, const Condition&, Duration),
        "_Z" WARD_NS "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE")(
        this, c, timeout);
  });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  return AnnotatedLockBool(this, 0, cond, [&](const Condition& c) {
    return WARD_REAL(bool (*)(Mutex*, const Condition&, Time),
                     "_Z" WARD_NS "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE")(
        this, c, deadline);
  });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  return AnnotatedLockBool(this, __tsan_mutex_read_lock, cond, [&](const Condition& c) {
    return WARD_REAL(
        bool (*)(Mutex*, const Condition&, Time),
        "_Z" WARD_NS "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE")(
        this, c, deadline);
  });
}

void Mutex::Await(const Condition& cond) {
  AnnotatedRelock(this, &cond, [this](const Condition* c) {
    WARD_REAL(void (*)(Mutex*, const Condition&), "_Z" WARD_NS "5Mutex5AwaitERKNS0_9ConditionE")(
        this, *c);
    return true;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  return AnnotatedRelock(this, &cond, [&](const Condition* c) {
    return WARD_REAL(bool (*)(Mutex*, const Condition&, Duration),
                     "_Z" WARD_NS "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE")(
        this, *c, timeout);
  });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  return AnnotatedRelock(this, &cond, [&](const Condition* c) {
    return WARD_REAL(bool (*)(Mutex*, const Condition&, Time),
                     "_Z" WARD_NS "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE")(
        this, *c, deadline);
  });
}

void CondVar::Wait(Mutex* mu) {
  AnnotatedRelock(mu, nullptr, [&](const Condition*) {
    WARD_REAL(void (*)(CondVar*, Mutex*), "_Z" WARD_NS "7CondVar4WaitEPNS0_5MutexE")(this, mu);
    return true;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  return AnnotatedRelock(mu, nullptr, [&](const Condition*) {
    return WARD_REAL(bool (*)(CondVar*, Mutex*, Duration),
                     "_Z" WARD_NS "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE")(
        this, mu, timeout);
  });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  return AnnotatedRelock(mu, nullptr, [&](const Condition*) {
    return WARD_REAL(bool (*)(CondVar*, Mutex*, Time),
                     "_Z" WARD_NS "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE")(
        this, mu, deadline);
  });
}

// CondVar::Signal/SignalAll need no annotation: the waiter's happens-before edge comes from
// re-acquiring the mutex (as with pthread_cond_signal under TSan).

void Notification::Notify() {
  __tsan_release(NotifiedFlag(this));
  WARD_REAL(void (*)(Notification*), "_Z" WARD_NS "12Notification6NotifyEv")(this);
}

void Notification::WaitForNotification() const {
  WARD_REAL(void (*)(const Notification*), "_ZNK4absl7debian312Notification19WaitForNotificationEv")(
      this);
  __tsan_acquire(NotifiedFlag(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  const bool notified = WARD_REAL(
      bool (*)(const Notification*, Duration),
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE")(this,
                                                                                      timeout);
  if (notified) __tsan_acquire(NotifiedFlag(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  const bool notified = WARD_REAL(
      bool (*)(const Notification*, Time),
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE")(this,
                                                                                     deadline);
  if (notified) __tsan_acquire(NotifiedFlag(this));
  return notified;
}

// absl::Status shares a heap-allocated rep between copies with an atomic reference count. The
// inline increment is instrumented; the decrement and the delete happen in the library, where
// TSan does not see the acquire-release decrement and reports the delete as racing with other
// threads' increments. This definition does every decrement that is not the last one with
// instrumented atomics and hands only the last reference (count 1: the library deletes without
// touching the count) to the library.
void Status::UnrefNonInlined(uintptr_t rep) {
  status_internal::StatusRep* r = RepToPointer(rep);
  int32_t count = r->ref.load(std::memory_order_acquire);
  while (count > 1) {
    if (r->ref.compare_exchange_weak(count, count - 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return;
    }
  }
  WARD_REAL(void (*)(uintptr_t), "_Z" WARD_NS "6Status15UnrefNonInlinedEm")(rep);
}

#undef WARD_NS

ABSL_NAMESPACE_END
}  // namespace absl
