// Checks that the TSan shim makes Abseil's synchronisation visible to ThreadSanitizer: every
// test shares plain (non-atomic) data between threads through one absl primitive. Without the
// shim TSan reports each of them as a data race and the test exits with TSan's error code.
// Built and registered only in the TSan build (WARD_TSAN=ON).

#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

TEST(TsanAbslShimTest, MutexLockOrdersWrites) {
  absl::Mutex mu;
  int counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        absl::MutexLock lock(&mu);
        ++counter;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(counter, 4000);
}

TEST(TsanAbslShimTest, ReaderLockSeesWriterLock) {
  absl::Mutex mu;
  int value = 0;
  int seen = 0;
  std::thread writer([&] {
    for (int i = 1; i <= 500; ++i) {
      absl::MutexLock lock(&mu);
      value = i;
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 500; ++i) {
      absl::ReaderMutexLock lock(&mu);
      if (value > seen) seen = value;
    }
  });
  writer.join();
  reader.join();
  absl::ReaderMutexLock lock(&mu);
  EXPECT_EQ(value, 500);
  EXPECT_LE(seen, 500);
}

TEST(TsanAbslShimTest, TryLockSuccessOrders) {
  absl::Mutex mu;
  int value = 0;
  int successes = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        if (mu.TryLock()) {
          ++value;
          ++successes;
          mu.Unlock();
        }
        if (mu.ReaderTryLock()) {
          EXPECT_GE(value, 0);
          mu.ReaderUnlock();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(value, successes);
}

// The Condition reads guarded state; Abseil evaluates it both in the waiter and in the thread
// that unlocks, and both must be ordered with the writes.
TEST(TsanAbslShimTest, LockWhenAndAwaitSeeProducerWrites) {
  absl::Mutex mu;
  int stage = 0;
  int payload = 0;
  std::thread producer([&] {
    for (int i = 1; i <= 50; ++i) {
      absl::MutexLock lock(&mu);
      payload = i * 10;
      stage = i;
    }
  });
  {
    struct Args {
      const int* stage;
    } args{&stage};
    mu.LockWhen(absl::Condition(
        +[](Args* a) { return *a->stage >= 25; }, &args));
    EXPECT_GE(payload, 250);
    mu.Await(absl::Condition(
        +[](Args* a) { return *a->stage == 50; }, &args));
    EXPECT_EQ(payload, 500);
    mu.Unlock();
  }
  producer.join();
}

TEST(TsanAbslShimTest, TimedWaitsOrderWhenSatisfied) {
  absl::Mutex mu;
  bool ready = false;
  int payload = 0;
  std::thread producer([&] {
    absl::MutexLock lock(&mu);
    payload = 7;
    ready = true;
  });
  ASSERT_TRUE(mu.LockWhenWithTimeout(absl::Condition(&ready), absl::Seconds(60)));
  EXPECT_EQ(payload, 7);
  ready = false;
  mu.Unlock();
  producer.join();

  std::thread second([&] {
    absl::MutexLock lock(&mu);
    payload = 8;
    ready = true;
  });
  mu.ReaderLock();
  mu.ReaderUnlock();
  mu.Lock();
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(60)));
  EXPECT_EQ(payload, 8);
  mu.Unlock();
  second.join();
}

TEST(TsanAbslShimTest, CondVarWaitSeesSignalledWrite) {
  absl::Mutex mu;
  absl::CondVar cv;
  bool ready = false;
  int payload = 0;
  std::thread producer([&] {
    absl::MutexLock lock(&mu);
    payload = 42;
    ready = true;
    cv.Signal();
  });
  {
    absl::MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    EXPECT_EQ(payload, 42);
  }
  producer.join();
}

TEST(TsanAbslShimTest, NotificationOrdersWriteBeforeNotify) {
  int payload = 0;
  absl::Notification done;
  std::thread producer([&] {
    payload = 5;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(payload, 5);
  producer.join();

  int second_payload = 0;
  absl::Notification second;
  std::thread second_producer([&] {
    second_payload = 6;
    second.Notify();
  });
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(second_payload, 6);
  second_producer.join();
}

// HasBeenNotified() is inline (an acquire load compiled into the caller), the path Ward's
// shutdown checks use.
TEST(TsanAbslShimTest, HasBeenNotifiedOrdersWriteBeforeNotify) {
  int payload = 0;
  absl::Notification done;
  std::thread producer([&] {
    payload = 9;
    done.Notify();
  });
  while (!done.HasBeenNotified()) std::this_thread::yield();
  EXPECT_EQ(payload, 9);
  producer.join();
}

// A non-OK Status with a message shares one heap rep between copies; the last copy to go
// deletes it, on whichever thread that is.
TEST(TsanAbslShimTest, StatusCopiesDieOnAnyThread) {
  for (int round = 0; round < 20; ++round) {
    absl::Status shared = absl::UnavailableError("commit failed: disk full");
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([copy = shared]() mutable {
        absl::Status mine = copy;
        EXPECT_EQ(mine.code(), absl::StatusCode::kUnavailable);
      });
    }
    shared = absl::OkStatus();
    for (auto& thread : threads) thread.join();
  }
}

}  // namespace
