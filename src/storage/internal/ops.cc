#include "storage/internal/ops.h"

#include <algorithm>

namespace ward::storage::internal {

absl::Status ValidateOps(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::Kind::kPut:
      case Op::Kind::kDelete:
      case Op::Kind::kCheck:
        break;
      default:
        return absl::InvalidArgumentError("storage: unknown operation kind");
    }
    if (op.key.empty()) return absl::InvalidArgumentError("storage: empty key");
  }
  return absl::OkStatus();
}

std::vector<std::string> ChangedKeys(const std::vector<Op>& ops) {
  std::vector<std::string> keys;
  for (const Op& op : ops) {
    if (op.kind != Op::Kind::kCheck) keys.push_back(op.key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::optional<std::string> PrefixUpperBound(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty()) {
    auto last = static_cast<unsigned char>(bound.back());
    if (last != 0xff) {
      bound.back() = static_cast<char>(last + 1);
      return bound;
    }
    bound.pop_back();  // "...\xff" has no successor at this length; carry into the byte before
  }
  return std::nullopt;
}

}  // namespace ward::storage::internal
