#include "server/ticket_keys.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::server {
namespace {

namespace json = boost::json;

constexpr int kMaxAttempts = 5;

struct StoredKeys {
  uint64_t revision = 0;  // 0: nothing stored
  TicketKeySet set;
};

absl::StatusOr<TicketKeySet> Parse(std::string& text) {
  absl::Status malformed = absl::DataLossError(
      absl::StrCat("stored TLS ticket keys at ", core::ToAbsl(kTicketKeysPath), " are malformed"));
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  core::SecureZero(text);
  if (ec || !doc.is_object()) return malformed;
  const json::value* keys = doc.as_object().if_contains("keys");
  if (keys == nullptr || !keys->is_array() || keys->as_array().empty()) return malformed;
  TicketKeySet set;
  for (const json::value& k : keys->as_array()) {
    const json::value* bytes = k.is_object() ? k.as_object().if_contains("bytes") : nullptr;
    const json::value* created = k.is_object() ? k.as_object().if_contains("created") : nullptr;
    if (bytes == nullptr || !bytes->is_string() || created == nullptr || !created->is_string()) {
      return malformed;
    }
    std::string b64(bytes->as_string().data(), bytes->as_string().size());
    std::string raw;
    const bool decoded = absl::Base64Unescape(b64, &raw);
    core::SecureZero(b64);
    core::SecureBytes secure(raw);
    core::SecureZero(raw);
    if (!decoded) return malformed;
    absl::StatusOr<net::TicketKey> key = net::TicketKey::FromBytes(std::move(secure));
    if (!key.ok()) return malformed;
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, std::string(created->as_string()), &t, &err)) {
      return malformed;
    }
    set.keys.push_back(*std::move(key));
    set.created.push_back(t);
  }
  // Wipe the base64 copies held by the parsed document.
  for (json::value& k : doc.as_object()["keys"].as_array()) {
    json::string& b = k.as_object()["bytes"].as_string();
    core::SecureZero(b.data(), b.size());
  }
  return set;
}

std::string Serialize(const TicketKeySet& set) {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < set.keys.size(); ++i) {
    std::string b64 = absl::Base64Escape(core::ToAbsl(set.keys[i].bytes.view()));
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"bytes\":\"", b64, "\",\"created\":\"",
                    core::FormatRfc3339Nanos(set.created[i]), "\"}");
    core::SecureZero(b64);
  }
  out += "]}";
  return out;
}

absl::StatusOr<StoredKeys> Read(barrier::Barrier& barrier) {
  absl::StatusOr<storage::Record> record = barrier.GetRecord(kTicketKeysPath);
  if (absl::IsNotFound(record.status())) return StoredKeys{};
  if (!record.ok()) return record.status();
  StoredKeys stored;
  stored.revision = record->revision;
  WARD_ASSIGN_OR_RETURN(stored.set, Parse(record->value));
  return stored;
}

std::string Names(const TicketKeySet& set) {
  std::string names;
  for (const net::TicketKey& k : set.keys) names.append(k.name());
  return names;
}

}  // namespace

absl::StatusOr<TicketKeySet> SharedTicketKeys::Sync() {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    WARD_ASSIGN_OR_RETURN(StoredKeys stored, Read(barrier_));
    const absl::Time now = clock_.Now();
    TicketKeySet& set = stored.set;
    if (stored.revision != 0 && now - set.created[0] < rotation_) {
      std::string names = Names(set);
      set.changed = names != last_names_;
      last_names_ = std::move(names);
      return std::move(set);
    }
    // Rotate: a new key first, the previous newest kept for decryption.
    TicketKeySet next;
    WARD_ASSIGN_OR_RETURN(net::TicketKey fresh, net::TicketKey::Generate());
    next.keys.push_back(std::move(fresh));
    next.created.push_back(now);
    if (!set.keys.empty()) {
      next.keys.push_back(std::move(set.keys[0]));
      next.created.push_back(set.created[0]);
    }
    std::string value = Serialize(next);
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Check(std::string(kTicketKeysPath), stored.revision));
    ops.push_back(storage::Op::Put(std::string(kTicketKeysPath), std::move(value)));
    absl::StatusOr<uint64_t> committed = barrier_.Commit(std::move(ops));
    if (absl::IsAborted(committed.status())) continue;  // another node rotated: re-read
    if (!committed.ok()) return committed.status();
    next.rotated = true;
    std::string names = Names(next);
    next.changed = names != last_names_;
    last_names_ = std::move(names);
    return next;
  }
  return absl::AbortedError(
      "TLS ticket keys kept changing under concurrent rotations by other nodes");
}

}  // namespace ward::server
