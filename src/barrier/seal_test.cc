#include "barrier/seal.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/synchronization/notification.h"
#include "barrier/testing/hooked_backend.h"
#include "core/testing/fake_clock.h"
#include "crypto/hmac.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::barrier {
namespace {

using absl::StatusCode;

std::string Hex(const core::SecureBytes& bytes) { return crypto::HexEncode(bytes.view()); }

std::string Base64(const core::SecureBytes& bytes) {
  return absl::Base64Escape(absl::string_view(bytes.view().data(), bytes.size()));
}

// One Ward node: a barrier and a seal over shared storage.
struct Node {
  Node(storage::Backend& storage, core::Clock& clock) {
    barrier = std::move(*Barrier::Create(storage, clock));
    absl::StatusOr<std::unique_ptr<Seal>> created = Seal::Create(*barrier, storage);
    EXPECT_TRUE(created.ok()) << created.status();
    seal = std::move(*created);
  }
  std::unique_ptr<Barrier> barrier;
  std::unique_ptr<Seal> seal;
};

class SealTest : public ::testing::Test {
 protected:
  SealStatus StatusNow() {
    absl::StatusOr<SealStatus> status = node_.seal->Status();
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *status : SealStatus{};
  }

  std::vector<core::SecureBytes> InitializeDefault() {
    absl::StatusOr<std::vector<core::SecureBytes>> shares = node_.seal->Initialize(SealConfig{});
    EXPECT_TRUE(shares.ok()) << shares.status();
    return shares.ok() ? std::move(*shares) : std::vector<core::SecureBytes>{};
  }

  core::FakeClock clock_;
  storage::MemoryBackend storage_;
  Node node_{storage_, clock_};
};

TEST_F(SealTest, UninitializedStatus) {
  SealStatus status = StatusNow();
  EXPECT_FALSE(status.initialized);
  EXPECT_TRUE(status.sealed);
  EXPECT_EQ(status.threshold, 0);
  EXPECT_EQ(status.shares, 0);
  EXPECT_EQ(status.progress, 0);
  EXPECT_EQ(status.nonce, "");
}

TEST_F(SealTest, InitializeReturnsSharesAndLeavesBarrierSealed) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  ASSERT_EQ(shares.size(), 5u);
  for (const core::SecureBytes& share : shares) EXPECT_EQ(share.size(), 33u);
  SealStatus status = StatusNow();
  EXPECT_TRUE(status.initialized);
  EXPECT_TRUE(status.sealed);
  EXPECT_EQ(status.threshold, 3);
  EXPECT_EQ(status.shares, 5);
  EXPECT_EQ(status.progress, 0);
  EXPECT_TRUE(node_.barrier->Sealed());

  absl::StatusOr<storage::Record> config = storage_.Get(kSealConfigPath);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->value, R"({"type":"shamir","secret_shares":5,"secret_threshold":3})");
}

TEST_F(SealTest, InitializeTwiceIsFailedPrecondition) {
  InitializeDefault();
  EXPECT_EQ(node_.seal->Initialize(SealConfig{}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(node_.seal->InitializeSingleKey().status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SealTest, InitializeRejectsBadConfigurations) {
  auto code = [&](int shares, int threshold) {
    return node_.seal->Initialize(SealConfig{shares, threshold}).status();
  };
  EXPECT_EQ(code(0, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(3, 0).code(), StatusCode::kInvalidArgument);
  absl::Status one_of_many = code(3, 1);
  EXPECT_EQ(one_of_many.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(one_of_many.message(), "threshold must be greater than one for multiple shares");
  EXPECT_EQ(code(3, 4).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(256, 3).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(StatusNow().initialized);
  EXPECT_FALSE(*node_.barrier->Initialized());
}

TEST_F(SealTest, ThresholdHexSharesUnsealWithProgressAndNonce) {
  std::vector<core::SecureBytes> shares = InitializeDefault();

  absl::StatusOr<SealStatus> first = node_.seal->SubmitShare(Hex(shares[4]));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->sealed);
  EXPECT_EQ(first->progress, 1);
  EXPECT_EQ(first->nonce.size(), 36u);

  absl::StatusOr<SealStatus> second = node_.seal->SubmitShare(Hex(shares[1]));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->sealed);
  EXPECT_EQ(second->progress, 2);
  EXPECT_EQ(second->nonce, first->nonce);

  absl::StatusOr<SealStatus> third = node_.seal->SubmitShare(Hex(shares[2]));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->sealed);
  EXPECT_EQ(third->progress, 0);
  EXPECT_EQ(third->nonce, "");
  EXPECT_FALSE(node_.barrier->Sealed());
  EXPECT_TRUE(node_.barrier->Put("kv/a", "works").ok());
}

TEST_F(SealTest, Base64UppercaseHexAndWhitespaceAreAccepted) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  std::string upper = Hex(shares[0]);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_TRUE(node_.seal->SubmitShare(upper).ok());
  ASSERT_TRUE(node_.seal->SubmitShare(Base64(shares[1])).ok());
  absl::StatusOr<SealStatus> done = node_.seal->SubmitShare("  " + Base64(shares[3]) + "\n");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->sealed);
}

TEST_F(SealTest, DuplicateShareIsInvalidArgumentAndKeepsProgress) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[0])).ok());
  EXPECT_EQ(node_.seal->SubmitShare(Hex(shares[0])).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(node_.seal->SubmitShare(Base64(shares[0])).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusNow().progress, 1);
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[1])).ok());
  absl::StatusOr<SealStatus> done = node_.seal->SubmitShare(Hex(shares[2]));
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(done->sealed);
}

TEST_F(SealTest, MalformedShareIsInvalidArgument) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  EXPECT_EQ(node_.seal->SubmitShare("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(node_.seal->SubmitShare("not a key!").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(node_.seal->SubmitShare(Hex(shares[0]).substr(2)).status().code(),
            StatusCode::kInvalidArgument);
  // The raw 32-byte form is only for 1-of-1 configurations.
  EXPECT_EQ(node_.seal->SubmitShare(std::string(64, 'a')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusNow().progress, 0);
}

TEST_F(SealTest, WrongSharesResetProgressAndStaySealed) {
  InitializeDefault();
  // Shares of a different split combine into a different key.
  storage::MemoryBackend other_storage;
  Node other(other_storage, clock_);
  absl::StatusOr<std::vector<core::SecureBytes>> foreign = other.seal->Initialize(SealConfig{});
  ASSERT_TRUE(foreign.ok());

  ASSERT_TRUE(node_.seal->SubmitShare(Hex((*foreign)[0])).ok());
  ASSERT_TRUE(node_.seal->SubmitShare(Hex((*foreign)[1])).ok());
  absl::StatusOr<SealStatus> third = node_.seal->SubmitShare(Hex((*foreign)[2]));
  EXPECT_EQ(third.status().code(), StatusCode::kInvalidArgument);
  SealStatus status = StatusNow();
  EXPECT_TRUE(status.sealed);
  EXPECT_EQ(status.progress, 0);
  EXPECT_EQ(status.nonce, "");
}

TEST_F(SealTest, MixingSharesOfOneSplitWithACorruptedOneFails) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  shares[2].data()[0] ^= 0xff;
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[0])).ok());
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[1])).ok());
  EXPECT_EQ(node_.seal->SubmitShare(Hex(shares[2])).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(node_.barrier->Sealed());
}

TEST_F(SealTest, ResetProgressStartsANewAttempt) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  absl::StatusOr<SealStatus> first = node_.seal->SubmitShare(Hex(shares[0]));
  ASSERT_TRUE(first.ok());
  node_.seal->ResetProgress();
  SealStatus reset = StatusNow();
  EXPECT_EQ(reset.progress, 0);
  EXPECT_EQ(reset.nonce, "");
  absl::StatusOr<SealStatus> again = node_.seal->SubmitShare(Hex(shares[0]));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->progress, 1);
  EXPECT_NE(again->nonce, first->nonce);
}

TEST_F(SealTest, SubmitWhenUnsealedReturnsStatusUnchanged) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[i])).ok());
  absl::StatusOr<SealStatus> status = node_.seal->SubmitShare("garbage");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->sealed);
  EXPECT_EQ(status->progress, 0);
}

TEST_F(SealTest, SubmitBeforeInitializeIsFailedPrecondition) {
  EXPECT_EQ(node_.seal->SubmitShare(std::string(66, 'a')).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SealTest, SealNowSealsAndResetsProgress) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[i])).ok());
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[0])).ok());  // ignored: unsealed
  node_.seal->SealNow();
  EXPECT_TRUE(node_.barrier->Sealed());
  ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[3])).ok());
  node_.seal->SealNow();
  SealStatus status = StatusNow();
  EXPECT_TRUE(status.sealed);
  EXPECT_EQ(status.progress, 0);
}

TEST_F(SealTest, SingleKeyInitializeAndUnseal) {
  absl::StatusOr<core::SecureBytes> key = node_.seal->InitializeSingleKey();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);
  SealStatus status = StatusNow();
  EXPECT_EQ(status.shares, 1);
  EXPECT_EQ(status.threshold, 1);
  EXPECT_TRUE(status.sealed);

  EXPECT_EQ(node_.seal->UnsealWithKey(core::SecureBytes(32)).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(node_.seal->UnsealWithKey(*key).ok());
  EXPECT_FALSE(node_.barrier->Sealed());

  // The raw key also works as the single share.
  node_.seal->SealNow();
  absl::StatusOr<SealStatus> unsealed = node_.seal->SubmitShare(Hex(*key));
  ASSERT_TRUE(unsealed.ok()) << unsealed.status();
  EXPECT_FALSE(unsealed->sealed);
}

TEST_F(SealTest, OneOfOneShareUnsealsInOneStep) {
  absl::StatusOr<std::vector<core::SecureBytes>> shares =
      node_.seal->Initialize(SealConfig{.shares = 1, .threshold = 1});
  ASSERT_TRUE(shares.ok());
  ASSERT_EQ(shares->size(), 1u);
  EXPECT_EQ((*shares)[0].size(), 33u);
  absl::StatusOr<SealStatus> status = node_.seal->SubmitShare(Base64((*shares)[0]));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->sealed);
}

TEST_F(SealTest, UnsealWithKeyBeforeInitializeIsFailedPrecondition) {
  EXPECT_EQ(node_.seal->UnsealWithKey(core::SecureBytes(32)).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SealTest, RestartedNodeReadsConfigurationAndUnseals) {
  std::vector<core::SecureBytes> shares = InitializeDefault();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node_.seal->SubmitShare(Hex(shares[i])).ok());
  ASSERT_TRUE(node_.barrier->Put("kv/a", "kept").ok());

  Node restarted(storage_, clock_);
  absl::StatusOr<SealStatus> status = restarted.seal->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->initialized);
  EXPECT_TRUE(status->sealed);
  EXPECT_EQ(status->threshold, 3);
  EXPECT_EQ(status->shares, 5);
  for (int i = 2; i < 5; ++i) ASSERT_TRUE(restarted.seal->SubmitShare(Hex(shares[i])).ok());
  EXPECT_EQ(*restarted.barrier->Get("kv/a"), "kept");
}

TEST_F(SealTest, InitializationBySomeoneElseIsSeenByStatus) {
  Node other(storage_, clock_);
  ASSERT_TRUE(StatusNow().initialized == false);
  ASSERT_TRUE(other.seal->Initialize(SealConfig{.shares = 3, .threshold = 2}).ok());
  SealStatus status = StatusNow();
  EXPECT_TRUE(status.initialized);
  EXPECT_EQ(status.shares, 3);
  EXPECT_EQ(status.threshold, 2);
  EXPECT_EQ(node_.seal->Initialize(SealConfig{}).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SealTest, LosingTheInitializationRaceKeepsTheWinnersConfiguration) {
  testing::HookedBackend hooked(storage_);
  Node loser(hooked, clock_);
  Node winner(storage_, clock_);
  std::vector<core::SecureBytes> winning_shares;
  // The loser has checked that nothing is initialised; the winner completes before the
  // loser's first write.
  hooked.BeforeNextCommit([&] {
    absl::StatusOr<std::vector<core::SecureBytes>> shares =
        winner.seal->Initialize(SealConfig{.shares = 3, .threshold = 2});
    ASSERT_TRUE(shares.ok());
    winning_shares = std::move(*shares);
  });
  EXPECT_EQ(loser.seal->Initialize(SealConfig{.shares = 7, .threshold = 4}).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_EQ(winning_shares.size(), 3u);

  absl::StatusOr<SealStatus> status = loser.seal->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->shares, 3);
  EXPECT_EQ(status->threshold, 2);
  ASSERT_TRUE(loser.seal->SubmitShare(Hex(winning_shares[0])).ok());
  absl::StatusOr<SealStatus> done = loser.seal->SubmitShare(Hex(winning_shares[2]));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->sealed);
}

TEST_F(SealTest, WinnerRestatesItsConfigurationOverALateLosersWrite) {
  // Interleaving: A writes its config; B writes its config; A initialises the barrier (wins);
  // B's barrier initialisation fails. A must leave its own configuration behind.
  testing::HookedBackend hooked_a(storage_);
  testing::HookedBackend hooked_b(storage_);
  Node node_a(hooked_a, clock_);
  Node node_b(hooked_b, clock_);
  absl::Notification b_wrote_config;
  absl::Notification a_initialized_barrier;
  std::thread b_thread;
  absl::Status b_result;

  hooked_b.BeforeEachCommit([&](int n) {
    if (n == 2) {  // B's barrier initialisation waits until A's has committed
      b_wrote_config.Notify();
      a_initialized_barrier.WaitForNotification();
    }
  });
  hooked_a.BeforeEachCommit([&](int n) {
    if (n == 2) {  // before A's barrier initialisation: let B write its configuration
      b_thread = std::thread([&] {
        b_result = node_b.seal->Initialize(SealConfig{.shares = 7, .threshold = 4}).status();
      });
      b_wrote_config.WaitForNotification();
    } else if (n == 3) {  // A has initialised the barrier; B may now try, and fail
      a_initialized_barrier.Notify();
      b_thread.join();
    }
  });

  absl::StatusOr<std::vector<core::SecureBytes>> shares =
      node_a.seal->Initialize(SealConfig{.shares = 3, .threshold = 2});
  ASSERT_TRUE(shares.ok()) << shares.status();
  EXPECT_EQ(b_result.code(), StatusCode::kFailedPrecondition);

  Node observer(storage_, clock_);
  absl::StatusOr<SealStatus> status = observer.seal->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->shares, 3);
  EXPECT_EQ(status->threshold, 2);
  ASSERT_TRUE(observer.seal->SubmitShare(Hex((*shares)[1])).ok());
  absl::StatusOr<SealStatus> done = observer.seal->SubmitShare(Hex((*shares)[2]));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->sealed);
}

TEST_F(SealTest, MalformedStoredConfigurationIsDataLoss) {
  InitializeDefault();
  ASSERT_TRUE(storage_.Put(std::string(kSealConfigPath), "{\"type\":\"shamir\"}").ok());
  std::unique_ptr<Barrier> barrier = std::move(*Barrier::Create(storage_, clock_));
  absl::StatusOr<std::unique_ptr<Seal>> seal = Seal::Create(*barrier, storage_);
  EXPECT_EQ(seal.status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ward::barrier
