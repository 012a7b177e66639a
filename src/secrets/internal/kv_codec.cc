#include "secrets/internal/kv_codec.h"

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/strings.h"
#include "secrets/internal/kv_json.h"

namespace ward::secrets::internal {
namespace {

namespace json = boost::json;

// Times and durations are stored as integer nanoseconds (exact, and independent of any
// textual format).
int64_t TimeToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time NanosToTime(int64_t n) { return absl::FromUnixNanos(n); }
int64_t DurationToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }
absl::Duration NanosToDuration(int64_t n) { return absl::Nanoseconds(n); }

absl::Status Corrupt(std::string_view what, std::string_view field) {
  return absl::DataLossError(
      absl::StrCat("invalid stored ", core::ToAbsl(what), ": field ", core::ToAbsl(field)));
}

// Typed field readers; a missing field reads as the type's zero value (fields added later
// stay readable from older records), a field of the wrong type is corruption.
class Reader {
 public:
  Reader(const json::object& obj, std::string_view what) : obj_(obj), what_(what) {}

  absl::StatusOr<int64_t> Int(std::string_view key) const {
    const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr || v->is_null()) return 0;
    if (const int64_t* i = v->if_int64()) return *i;
    if (const uint64_t* u = v->if_uint64(); u != nullptr && *u <= INT64_MAX) {
      return static_cast<int64_t>(*u);
    }
    return Corrupt(what_, key);
  }
  absl::StatusOr<uint64_t> Uint(std::string_view key) const {
    const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr || v->is_null()) return 0;
    if (const uint64_t* u = v->if_uint64()) return *u;
    if (const int64_t* i = v->if_int64(); i != nullptr && *i >= 0) {
      return static_cast<uint64_t>(*i);
    }
    return Corrupt(what_, key);
  }
  absl::StatusOr<bool> Bool(std::string_view key) const {
    const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr || v->is_null()) return false;
    if (const bool* b = v->if_bool()) return *b;
    return Corrupt(what_, key);
  }
  absl::StatusOr<std::string> String(std::string_view key) const {
    const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr || v->is_null()) return std::string();
    if (const json::string* s = v->if_string()) return std::string(s->data(), s->size());
    return Corrupt(what_, key);
  }
  // Returns null for a missing field.
  absl::StatusOr<const json::object*> Object(std::string_view key) const {
    const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr || v->is_null()) return nullptr;
    if (const json::object* o = v->if_object()) return o;
    return Corrupt(what_, key);
  }

 private:
  const json::object& obj_;
  std::string_view what_;
};

absl::StatusOr<json::object> ParseRecord(std::string_view text, std::string_view what) {
  absl::StatusOr<json::value> v = ParseJson(text, what);
  if (!v.ok() || !v->is_object()) {
    return absl::DataLossError(absl::StrCat("invalid stored ", core::ToAbsl(what)));
  }
  json::object obj = std::move(v->get_object());
  Reader r(obj, what);
  absl::StatusOr<int64_t> format = r.Int("format");
  if (!format.ok()) return format.status();
  if (*format > kKvFormatVersion) {
    return absl::DataLossError(absl::StrCat("stored ", core::ToAbsl(what), " has format ", *format,
                                            ", newer than this build reads"));
  }
  return obj;
}

std::string Serialize(const json::value& v) {
  // Records hold only finite integers, so canonical serialization cannot fail.
  absl::StatusOr<std::string> s = SerializeCanonical(v);
  return s.ok() ? *std::move(s) : std::string();
}

}  // namespace

std::string_view OutageBehaviorName(OutageBehavior behavior) {
  switch (behavior) {
    case OutageBehavior::kServeStale:
      return "serve_stale";
    case OutageBehavior::kFailClosed:
      return "fail_closed";
    case OutageBehavior::kUnset:
      break;
  }
  return "";
}

std::string EncodeConfig(const KvConfig& config) {
  json::object obj;
  obj["format"] = kKvFormatVersion;
  obj["max_versions"] = config.max_versions;
  obj["cas_required"] = config.cas_required;
  obj["delete_version_after_ns"] = DurationToNanos(config.delete_version_after);
  return Serialize(obj);
}

absl::StatusOr<KvConfig> DecodeConfig(std::string_view text) {
  absl::StatusOr<json::object> obj = ParseRecord(text, "kv config");
  if (!obj.ok()) return obj.status();
  Reader r(*obj, "kv config");
  KvConfig config;
  absl::StatusOr<uint64_t> max_versions = r.Uint("max_versions");
  if (!max_versions.ok()) return max_versions.status();
  if (*max_versions > UINT32_MAX) return Corrupt("kv config", "max_versions");
  config.max_versions = static_cast<uint32_t>(*max_versions);
  absl::StatusOr<bool> cas = r.Bool("cas_required");
  if (!cas.ok()) return cas.status();
  config.cas_required = *cas;
  absl::StatusOr<int64_t> dva = r.Int("delete_version_after_ns");
  if (!dva.ok()) return dva.status();
  config.delete_version_after = NanosToDuration(*dva);
  return config;
}

std::string EncodeMetadata(const SecretMetadata& meta) {
  json::object obj;
  obj["format"] = kKvFormatVersion;
  obj["path"] = meta.path;
  obj["created_time_ns"] = TimeToNanos(meta.created_time);
  obj["updated_time_ns"] = TimeToNanos(meta.updated_time);
  obj["current_version"] = meta.current_version;
  obj["oldest_version"] = meta.oldest_version;
  obj["max_versions"] = meta.max_versions;
  obj["cas_required"] = meta.cas_required;
  obj["delete_version_after_ns"] = DurationToNanos(meta.delete_version_after);
  json::object custom;
  for (const auto& [k, v] : meta.custom_metadata) custom[k] = v;
  obj["custom_metadata"] = std::move(custom);
  json::object cls;
  cls["owner"] = meta.classification.owner;
  cls["max_cache_age_ns"] = DurationToNanos(meta.classification.max_cache_age);
  cls["outage_behavior"] = std::string(OutageBehaviorName(meta.classification.outage_behavior));
  cls["rotation_period_ns"] = DurationToNanos(meta.classification.rotation_period);
  obj["classification"] = std::move(cls);
  json::object versions;
  for (const auto& [number, info] : meta.versions) {
    json::object v;
    v["created_time_ns"] = TimeToNanos(info.created_time);
    if (info.deletion_time.has_value()) {
      v["deletion_time_ns"] = TimeToNanos(*info.deletion_time);
    } else {
      v["deletion_time_ns"] = nullptr;
    }
    v["destroyed"] = info.destroyed;
    versions[std::to_string(number)] = std::move(v);
  }
  obj["versions"] = std::move(versions);
  json::object stages;
  for (const auto& [stage, version] : meta.stages) stages[stage] = version;
  obj["stages"] = std::move(stages);
  return Serialize(obj);
}

absl::StatusOr<SecretMetadata> DecodeMetadata(std::string_view text) {
  constexpr std::string_view kWhat = "kv metadata";
  absl::StatusOr<json::object> obj = ParseRecord(text, kWhat);
  if (!obj.ok()) return obj.status();
  Reader r(*obj, kWhat);
  SecretMetadata meta;

#define WARD_KV_READ(var, expr) \
  auto var = (expr);            \
  if (!var.ok()) return var.status();

  WARD_KV_READ(path, r.String("path"));
  meta.path = *path;
  WARD_KV_READ(created, r.Int("created_time_ns"));
  meta.created_time = NanosToTime(*created);
  WARD_KV_READ(updated, r.Int("updated_time_ns"));
  meta.updated_time = NanosToTime(*updated);
  WARD_KV_READ(current, r.Uint("current_version"));
  meta.current_version = *current;
  WARD_KV_READ(oldest, r.Uint("oldest_version"));
  meta.oldest_version = *oldest;
  WARD_KV_READ(max_versions, r.Uint("max_versions"));
  if (*max_versions > UINT32_MAX) return Corrupt(kWhat, "max_versions");
  meta.max_versions = static_cast<uint32_t>(*max_versions);
  WARD_KV_READ(cas, r.Bool("cas_required"));
  meta.cas_required = *cas;
  WARD_KV_READ(dva, r.Int("delete_version_after_ns"));
  meta.delete_version_after = NanosToDuration(*dva);

  WARD_KV_READ(custom, r.Object("custom_metadata"));
  if (*custom != nullptr) {
    for (const json::key_value_pair& kv : **custom) {
      const json::string* s = kv.value().if_string();
      if (s == nullptr) return Corrupt(kWhat, "custom_metadata");
      meta.custom_metadata.emplace(std::string(kv.key().data(), kv.key().size()),
                                   std::string(s->data(), s->size()));
    }
  }

  WARD_KV_READ(cls, r.Object("classification"));
  if (*cls != nullptr) {
    Reader c(**cls, kWhat);
    WARD_KV_READ(owner, c.String("owner"));
    meta.classification.owner = *owner;
    WARD_KV_READ(age, c.Int("max_cache_age_ns"));
    meta.classification.max_cache_age = NanosToDuration(*age);
    WARD_KV_READ(outage, c.String("outage_behavior"));
    if (*outage == "serve_stale") {
      meta.classification.outage_behavior = OutageBehavior::kServeStale;
    } else if (*outage == "fail_closed") {
      meta.classification.outage_behavior = OutageBehavior::kFailClosed;
    } else if (outage->empty()) {
      meta.classification.outage_behavior = OutageBehavior::kUnset;
    } else {
      return Corrupt(kWhat, "classification.outage_behavior");
    }
    WARD_KV_READ(rotation, c.Int("rotation_period_ns"));
    meta.classification.rotation_period = NanosToDuration(*rotation);
  }

  WARD_KV_READ(versions, r.Object("versions"));
  if (*versions != nullptr) {
    for (const json::key_value_pair& kv : **versions) {
      std::optional<uint64_t> number =
          core::ParseUint64(std::string_view(kv.key().data(), kv.key().size()));
      const json::object* v = kv.value().if_object();
      if (!number.has_value() || *number == 0 || v == nullptr) return Corrupt(kWhat, "versions");
      Reader vr(*v, kWhat);
      VersionInfo info;
      info.version = *number;
      WARD_KV_READ(vcreated, vr.Int("created_time_ns"));
      info.created_time = NanosToTime(*vcreated);
      const json::value* deletion = v->if_contains("deletion_time_ns");
      if (deletion != nullptr && !deletion->is_null()) {
        WARD_KV_READ(vdeleted, vr.Int("deletion_time_ns"));
        info.deletion_time = NanosToTime(*vdeleted);
      }
      WARD_KV_READ(destroyed, vr.Bool("destroyed"));
      info.destroyed = *destroyed;
      meta.versions.emplace(*number, info);
    }
  }

  WARD_KV_READ(stages, r.Object("stages"));
  if (*stages != nullptr) {
    for (const json::key_value_pair& kv : **stages) {
      const json::value& v = kv.value();
      std::optional<uint64_t> version;
      if (const uint64_t* u = v.if_uint64()) version = *u;
      if (const int64_t* i = v.if_int64(); i != nullptr && *i > 0) version = *i;
      if (!version.has_value()) return Corrupt(kWhat, "stages");
      meta.stages.emplace(std::string(kv.key().data(), kv.key().size()), *version);
    }
  }
#undef WARD_KV_READ
  return meta;
}

}  // namespace ward::secrets::internal
