#include "secrets/internal/kv_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace ward::secrets::internal {
namespace {

namespace json = boost::json;

// Formats a finite double as Go's encoding/json does: shortest round-trip digits, fixed
// notation for 1e-6 <= |x| < 1e21, otherwise exponent notation with "e-07" shortened to "e-7".
std::string FormatDouble(double d) {
  char buf[64];
  double abs = std::fabs(d);
  bool exponent = abs != 0 && (abs < 1e-6 || abs >= 1e21);
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), d,
                    exponent ? std::chars_format::scientific : std::chars_format::fixed);
  std::string out(buf, ec == std::errc() ? end : buf);
  if (exponent) {
    size_t n = out.size();
    if (n >= 4 && out[n - 4] == 'e' && out[n - 3] == '-' && out[n - 2] == '0') {
      out.erase(n - 2, 1);
    }
  }
  return out;
}

absl::Status SerializeTo(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return absl::OkStatus();
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return absl::OkStatus();
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      return absl::OkStatus();
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return absl::OkStatus();
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) return absl::InvalidArgumentError("number out of range in JSON");
      out += FormatDouble(d);
      return absl::OkStatus();
    }
    case json::kind::string:
      out += json::serialize(v.get_string());
      return absl::OkStatus();
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& element : v.get_array()) {
        if (!first) out += ',';
        first = false;
        absl::Status s = SerializeTo(element, out);
        if (!s.ok()) return s;
      }
      out += ']';
      return absl::OkStatus();
    }
    case json::kind::object: {
      const json::object& obj = v.get_object();
      std::vector<const json::key_value_pair*> members;
      members.reserve(obj.size());
      for (const json::key_value_pair& kv : obj) members.push_back(&kv);
      std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
        return std::string_view(a->key().data(), a->key().size()) <
               std::string_view(b->key().data(), b->key().size());
      });
      out += '{';
      bool first = true;
      for (const json::key_value_pair* kv : members) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(kv->key());
        out += ':';
        absl::Status s = SerializeTo(kv->value(), out);
        if (!s.ok()) return s;
      }
      out += '}';
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown JSON kind");
}

void ProjectSubkeys(json::object& obj, int depth, int max_depth) {
  for (json::key_value_pair& kv : obj) {
    json::object* child = kv.value().if_object();
    int child_depth = depth + 1;
    if (child != nullptr && !child->empty() && (max_depth == 0 || child_depth <= max_depth)) {
      ProjectSubkeys(*child, child_depth, max_depth);
    } else {
      kv.value() = nullptr;
    }
  }
}

}  // namespace

absl::StatusOr<json::value> ParseJson(std::string_view text, std::string_view what) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(core::ToAbsl(what), " is not valid JSON: ", ec.message()));
  }
  return v;
}

absl::StatusOr<std::string> SerializeCanonical(const json::value& value) {
  std::string out;
  absl::Status s = SerializeTo(value, out);
  if (!s.ok()) return s;
  return out;
}

void ApplyMergePatch(json::value& target, const json::value& patch) {
  const json::object* patch_obj = patch.if_object();
  if (patch_obj == nullptr) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  json::object& target_obj = target.get_object();
  for (const json::key_value_pair& kv : *patch_obj) {
    if (kv.value().is_null()) {
      target_obj.erase(kv.key());
      continue;
    }
    // operator[] inserts null when absent; merging onto null replaces (or builds an object).
    ApplyMergePatch(target_obj[kv.key()], kv.value());
  }
}

json::object SubkeysOf(const json::object& data, int max_depth) {
  json::object out = data;
  ProjectSubkeys(out, 1, max_depth);
  return out;
}

}  // namespace ward::secrets::internal
