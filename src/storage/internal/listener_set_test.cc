#include "storage/internal/listener_set.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::storage::internal {
namespace {

using ::testing::ElementsAre;

TEST(ListenerSetTest, CallsListenersInRegistrationOrder) {
  ListenerSet set;
  std::vector<int> calls;
  uint64_t a = set.Add([&](const Change&) { calls.push_back(1); });
  uint64_t b = set.Add([&](const Change&) { calls.push_back(2); });
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  Change change;
  change.revision = 7;
  set.Notify(change);
  EXPECT_THAT(calls, ElementsAre(1, 2));
}

TEST(ListenerSetTest, RemovedListenerIsNotCalledAndUnknownIdIsIgnored) {
  ListenerSet set;
  int calls = 0;
  uint64_t id = set.Add([&](const Change&) { ++calls; });
  set.Remove(id + 100);
  set.Notify(Change{});
  set.Remove(id);
  set.Notify(Change{});
  EXPECT_EQ(calls, 1);
}

TEST(ListenerSetTest, ListenerRemovedByAnEarlierListenerIsSkipped) {
  ListenerSet set;
  int second_calls = 0;
  uint64_t second = 0;
  set.Add([&](const Change&) { set.Remove(second); });
  second = set.Add([&](const Change&) { ++second_calls; });
  set.Notify(Change{});
  EXPECT_EQ(second_calls, 0);
}

TEST(ListenerSetTest, RemoveWaitsForARunningCall) {
  ListenerSet set;
  absl::Notification entered;
  absl::Notification release;
  std::atomic<bool> finished{false};
  uint64_t id = set.Add([&](const Change&) {
    entered.Notify();
    release.WaitForNotification();
    finished = true;
  });
  std::thread notifier([&] { set.Notify(Change{}); });
  entered.WaitForNotification();
  std::atomic<bool> finished_when_removed{false};
  std::thread remover([&] {
    set.Remove(id);
    finished_when_removed = finished.load();
  });
  release.Notify();
  remover.join();
  notifier.join();
  EXPECT_TRUE(finished_when_removed.load());
}

}  // namespace
}  // namespace ward::storage::internal
