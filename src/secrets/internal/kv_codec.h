#pragma once

// Stored forms of the KV engine's records (schemas in docs/kv-format.md). Private to
// src/secrets.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "secrets/kv_engine.h"

namespace ward::secrets::internal {

// The version of the stored record schemas; written as "format" in every record.
inline constexpr int kKvFormatVersion = 1;

std::string EncodeConfig(const KvConfig& config);
// Errors: kDataLoss if `text` is not a valid config record.
absl::StatusOr<KvConfig> DecodeConfig(std::string_view text);

std::string EncodeMetadata(const SecretMetadata& meta);
// Errors: kDataLoss if `text` is not a valid metadata record.
absl::StatusOr<SecretMetadata> DecodeMetadata(std::string_view text);

// The stored names of OutageBehavior values: "", "serve_stale", "fail_closed".
std::string_view OutageBehaviorName(OutageBehavior behavior);

}  // namespace ward::secrets::internal
