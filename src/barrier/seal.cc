#include "barrier/seal.h"

#include <boost/json.hpp>
#include <cctype>
#include <utility>

#include "absl/strings/escaping.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "spdlog/spdlog.h"

namespace ward::barrier {
namespace {

constexpr size_t kUnsealKeySize = 32;
constexpr size_t kShareSize = kUnsealKeySize + 1;

// Vault's checks and messages (vault/seal_config.go), so CLI users see familiar errors.
absl::Status ValidateConfig(const SealConfig& config) {
  if (config.shares < 1) return absl::InvalidArgumentError("shares must be at least one");
  if (config.threshold < 1) return absl::InvalidArgumentError("threshold must be at least one");
  if (config.shares > 1 && config.threshold == 1) {
    return absl::InvalidArgumentError("threshold must be greater than one for multiple shares");
  }
  if (config.shares > 255) return absl::InvalidArgumentError("shares must be less than 256");
  if (config.threshold > config.shares) {
    return absl::InvalidArgumentError("threshold cannot be larger than shares");
  }
  return absl::OkStatus();
}

std::string EncodeConfig(const SealConfig& config) {
  boost::json::object object;
  object["type"] = "shamir";
  object["secret_shares"] = config.shares;
  object["secret_threshold"] = config.threshold;
  return boost::json::serialize(object);
}

// Errors: kDataLoss if `json` is not a valid shamir seal configuration.
absl::StatusOr<SealConfig> DecodeConfig(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value value =
      boost::json::parse(boost::json::string_view(json.data(), json.size()), ec);
  const boost::json::object* object = ec ? nullptr : value.if_object();
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    const boost::json::value* field = object->if_contains(name);
    if (field == nullptr) return std::nullopt;
    if (const int64_t* i = field->if_int64()) return *i;
    return std::nullopt;
  };
  if (object != nullptr) {
    const boost::json::value* type = object->if_contains("type");
    std::optional<int64_t> shares = integer("secret_shares");
    std::optional<int64_t> threshold = integer("secret_threshold");
    if (type != nullptr && type->is_string() && type->get_string() == "shamir" &&
        shares.has_value() && threshold.has_value() && *shares >= 1 && *shares <= 255 &&
        *threshold >= 1 && *threshold <= *shares) {
      return SealConfig{static_cast<int>(*shares), static_cast<int>(*threshold)};
    }
  }
  return absl::DataLossError("seal configuration at " + std::string(kSealConfigPath) +
                             " is malformed");
}

std::string_view TrimSpace(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool IsHex(std::string_view text) {
  if (text.empty() || text.size() % 2 != 0) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Decodes hex (tried first, as Vault does) or standard base64 into bytes whose length is in
// `sizes`. Errors: kInvalidArgument otherwise.
absl::StatusOr<core::SecureBytes> DecodeShare(std::string_view text,
                                              std::initializer_list<size_t> sizes) {
  text = TrimSpace(text);
  auto acceptable = [&](size_t n) {
    for (size_t size : sizes) {
      if (n == size) return true;
    }
    return false;
  };
  std::string bytes;
  if (IsHex(text)) {
    bytes = absl::HexStringToBytes(core::ToAbsl(text));
    core::SecureBytes share(bytes);
    core::SecureZero(bytes);
    if (acceptable(share.size())) return share;
  }
  // A base64 string can consist of hex digits only, so fall through when hex gave the wrong
  // length.
  bool decoded = absl::Base64Unescape(core::ToAbsl(text), &bytes);
  core::SecureBytes share(bytes);
  core::SecureZero(bytes);
  if (decoded && acceptable(share.size())) return share;
  return absl::InvalidArgumentError("unseal key share must be the hex or base64 text of a " +
                                    std::to_string(kShareSize) + "-byte share");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Seal>> Seal::Create(Barrier& barrier, storage::Backend& storage) {
  std::unique_ptr<Seal> seal(new Seal(barrier, storage));
  WARD_RETURN_IF_ERROR(seal->KnownConfig().status());
  return seal;
}

absl::StatusOr<std::optional<SealConfig>> Seal::KnownConfig() {
  {
    absl::MutexLock lock(&mu_);
    if (config_.has_value()) return config_;
  }
  WARD_ASSIGN_OR_RETURN(bool initialized, barrier_.Initialized());
  if (!initialized) return std::optional<SealConfig>();
  absl::StatusOr<storage::Record> record = storage_.Get(kSealConfigPath);
  if (record.status().code() == absl::StatusCode::kNotFound) {
    return absl::DataLossError("barrier is initialized but the seal configuration is missing");
  }
  if (!record.ok()) return record.status();
  WARD_ASSIGN_OR_RETURN(SealConfig config, DecodeConfig(record->value));
  absl::MutexLock lock(&mu_);
  config_ = config;
  return config_;
}

absl::StatusOr<SealStatus> Seal::Status() {
  WARD_ASSIGN_OR_RETURN(std::optional<SealConfig> config, KnownConfig());
  SealStatus status;
  status.sealed = barrier_.Sealed();
  if (!config.has_value()) return status;
  status.initialized = true;
  status.threshold = config->threshold;
  status.shares = config->shares;
  absl::MutexLock lock(&mu_);
  status.progress = static_cast<int>(shares_.size());
  status.nonce = nonce_;
  return status;
}

absl::StatusOr<std::vector<core::SecureBytes>> Seal::Initialize(SealConfig config) {
  WARD_RETURN_IF_ERROR(ValidateConfig(config));
  WARD_ASSIGN_OR_RETURN(bool initialized, barrier_.Initialized());
  if (initialized) return absl::FailedPreconditionError("Vault is already initialized");

  // Everything that can fail for reasons of our own happens before the barrier is
  // initialised, so an error never leaves a barrier whose shares nobody received.
  WARD_ASSIGN_OR_RETURN(core::SecureBytes unseal_key, crypto::RandomBytes(kUnsealKeySize));
  WARD_ASSIGN_OR_RETURN(std::vector<core::SecureBytes> shares,
                        crypto::ShamirSplit(unseal_key, config.shares, config.threshold));
  const std::string config_json = EncodeConfig(config);

  // 1. Store the configuration, but only while no keyring exists, so a node that lost the
  //    initialisation race cannot overwrite the winner's configuration afterwards.
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Check(std::string(kKeyringPath), 0));
  ops.push_back(storage::Op::Put(std::string(kSealConfigPath), config_json));
  absl::StatusOr<uint64_t> written = storage_.Commit(std::move(ops));
  if (written.status().code() == absl::StatusCode::kAborted) {
    return absl::FailedPreconditionError("Vault is already initialized");
  }
  WARD_RETURN_IF_ERROR(written.status());

  // 2. Initialise the barrier; exactly one concurrent initialiser gets past this.
  absl::Status status = barrier_.Initialize(unseal_key);
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::FailedPreconditionError("Vault is already initialized");
  }
  WARD_RETURN_IF_ERROR(status);

  // 3. Restate our configuration: a loser's step 1 may have landed between our 1 and 2. The
  //    barrier is initialised now, so the shares must reach the caller even if this fails;
  //    step 1 stored the same configuration unless another node raced us.
  if (absl::StatusOr<uint64_t> restated = storage_.Put(std::string(kSealConfigPath), config_json);
      !restated.ok()) {
    spdlog::warn("seal: could not restate seal configuration after initialisation: {}",
                 restated.status().ToString());
  }

  absl::MutexLock lock(&mu_);
  config_ = config;
  shares_.clear();
  nonce_.clear();
  return shares;
}

absl::StatusOr<SealStatus> Seal::SubmitShare(std::string_view encoded_share) {
  WARD_ASSIGN_OR_RETURN(std::optional<SealConfig> config, KnownConfig());
  if (!config.has_value()) return absl::FailedPreconditionError("Vault is not initialized");
  if (!barrier_.Sealed()) return Status();

  const bool single_key = config->shares == 1 && config->threshold == 1;
  absl::StatusOr<core::SecureBytes> share =
      single_key ? DecodeShare(encoded_share, {kShareSize, kUnsealKeySize})
                 : DecodeShare(encoded_share, {kShareSize});
  if (!share.ok()) return share.status();
  WARD_ASSIGN_OR_RETURN(std::string fresh_nonce, crypto::RandomUuid());

  std::vector<core::SecureBytes> collected;
  {
    absl::MutexLock lock(&mu_);
    if (share->size() == kShareSize) {
      const uint8_t x = share->data()[kShareSize - 1];
      for (const core::SecureBytes& existing : shares_) {
        if (existing.size() == kShareSize && existing.data()[kShareSize - 1] == x) {
          return absl::InvalidArgumentError(
              "this unseal key share was already submitted in this unseal attempt");
        }
      }
    }
    if (shares_.empty()) nonce_ = std::move(fresh_nonce);
    shares_.push_back(std::move(*share));
    if (shares_.size() >= static_cast<size_t>(config->threshold)) {
      collected = std::move(shares_);
      shares_.clear();
      nonce_.clear();
    }
  }
  if (collected.empty()) return Status();

  // Threshold reached: combine and unseal outside the lock (Unseal reads storage).
  core::SecureBytes unseal_key;
  if (collected.size() == 1 && collected.front().size() == kUnsealKeySize) {
    unseal_key = std::move(collected.front());  // 1-of-1 with the raw key
  } else {
    WARD_ASSIGN_OR_RETURN(unseal_key, crypto::ShamirCombine(collected));
  }
  absl::Status unsealed = barrier_.Unseal(unseal_key);
  if (unsealed.code() == absl::StatusCode::kPermissionDenied) {
    return absl::InvalidArgumentError(
        "unseal failed: the submitted key shares do not combine into the unseal key; "
        "unseal progress was reset");
  }
  WARD_RETURN_IF_ERROR(unsealed);
  return Status();
}

void Seal::ResetProgress() {
  absl::MutexLock lock(&mu_);
  shares_.clear();
  nonce_.clear();
}

void Seal::SealNow() {
  barrier_.Seal();
  ResetProgress();
}

absl::Status Seal::UnsealWithKey(const core::SecureBytes& unseal_key) {
  absl::Status status = barrier_.Unseal(unseal_key);
  ResetProgress();
  return status;
}

absl::StatusOr<core::SecureBytes> Seal::InitializeSingleKey() {
  WARD_ASSIGN_OR_RETURN(std::vector<core::SecureBytes> shares,
                        Initialize(SealConfig{.shares = 1, .threshold = 1}));
  // With threshold one every share's y values are the key itself.
  return crypto::ShamirCombine(shares);
}

}  // namespace ward::barrier
