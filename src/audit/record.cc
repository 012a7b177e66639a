#include "audit/record.h"

#include "absl/strings/str_cat.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::audit {
namespace json = boost::json;

namespace {

// The records are written as text, field by field: their shapes are fixed and only the values
// vary, so no JSON tree is built for them (only for request and response data, which arrive as
// trees). Strings are escaped as Boost.JSON's serializer escapes them.

void Key(std::string& out, std::string_view key) {
  core::AppendJsonString(out, key);
  out.push_back(':');
}

void StringField(std::string& out, std::string_view key, std::string_view value) {
  Key(out, key);
  core::AppendJsonString(out, value);
  out.push_back(',');
}

void StringsField(std::string& out, std::string_view key, const std::vector<std::string>& values) {
  Key(out, key);
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    core::AppendJsonString(out, values[i]);
  }
  out.append("],");
}

// Replaces the ',' after the last field by `close` (or appends it to an empty "{").
void Close(std::string& out, char close) {
  if (out.back() == ',') {
    out.back() = close;
  } else {
    out.push_back(close);
  }
}

// Appends `v` as JSON with every string (at any depth, object keys excepted) replaced by its
// hashed form.
absl::Status AppendHashed(std::string& out, const Hasher& hasher, const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      WARD_ASSIGN_OR_RETURN(std::string h, hasher.Hash(std::string_view(v.get_string())));
      core::AppendJsonString(out, h);
      return absl::OkStatus();
    }
    case json::kind::object: {
      out.push_back('{');
      for (const auto& kv : v.get_object()) {
        Key(out, std::string_view(kv.key()));
        WARD_RETURN_IF_ERROR(AppendHashed(out, hasher, kv.value()));
        out.push_back(',');
      }
      Close(out, '}');
      return absl::OkStatus();
    }
    case json::kind::array: {
      out.push_back('[');
      for (const json::value& e : v.get_array()) {
        WARD_RETURN_IF_ERROR(AppendHashed(out, hasher, e));
        out.push_back(',');
      }
      Close(out, ']');
      return absl::OkStatus();
    }
    default:  // numbers, booleans, null
      out.append(json::serialize(v));
      return absl::OkStatus();
  }
}

// Overwrites every string inside `v` (object keys excepted) with zero bytes.
void ZeroStrings(json::value& v) {
  if (v.is_string()) {
    core::SecureZero(v.as_string().data(), v.as_string().size());
  } else if (v.is_object()) {
    for (auto& kv : v.as_object()) ZeroStrings(kv.value());
  } else if (v.is_array()) {
    for (json::value& e : v.as_array()) ZeroStrings(e);
  }
}

// The key a record part of a valid token (one with an accessor) is remembered under: `part`
// followed by the accessor; "" (not remembered) without a token or accessor.
std::string TokenPartKey(std::string_view part, std::string_view token,
                         std::string_view accessor) {
  if (token.empty() || accessor.empty()) return std::string();
  return absl::StrCat(core::ToAbsl(part), core::ToAbsl(accessor));
}

// Appends what the device remembered under `key`; if nothing (or `key` is empty), runs `build`,
// which appends to `out`, and remembers what it appended under `key`. Errors: build's.
template <typename Build>
absl::Status AppendRememberedOr(const Hasher& hasher, std::string key, std::string& out,
                                const Build& build) {
  if (!key.empty() && hasher.AppendRemembered(key, out)) return absl::OkStatus();
  const size_t start = out.size();
  WARD_RETURN_IF_ERROR(build());
  if (!key.empty()) hasher.Remember(std::move(key), out.substr(start));
  return absl::OkStatus();
}

}  // namespace

RecordBuilder::~RecordBuilder() {
  for (auto& [raw, hashed] : hashed_) core::SecureZero(raw);
}

absl::StatusOr<std::string> RecordBuilder::HashOnce(std::string_view value) {
  if (value.empty()) return std::string();
  for (const auto& [raw, hashed] : hashed_) {
    if (raw == value) return hashed;
  }
  WARD_ASSIGN_OR_RETURN(std::string h, hasher_->Hash(value));
  // Remembered only while there is room: growing the vector would move (and so leave behind)
  // raw copies that are never zeroed.
  if (hashed_.size() < hashed_.capacity()) hashed_.emplace_back(std::string(value), h);
  return h;
}

absl::Status RecordBuilder::AppendHashedDataJson(std::string& out, const ResponseInfo& response) {
  std::string key;
  if (response.data_identity != nullptr) {
    const auto address = reinterpret_cast<uintptr_t>(response.data_identity.get());
    key = absl::StrCat("data:", absl::Hex(address), ":", core::ToAbsl(response.data_detail));
    if (hasher_->AppendRemembered(key, out, response.data_identity)) return absl::OkStatus();
  }
  boost::system::error_code ec;
  json::value data =
      json::parse(json::string_view(response.data_json.data(), response.data_json.size()), ec);
  if (ec) return absl::InternalError("audit: response data is not JSON: " + ec.message());
  std::string hashed;
  absl::Status s = AppendHashed(hashed, *hasher_, data);
  ZeroStrings(data);  // the parsed secret values
  WARD_RETURN_IF_ERROR(s);
  out.append(hashed);
  if (!key.empty()) hasher_->Remember(std::move(key), std::move(hashed), response.data_identity);
  return absl::OkStatus();
}

absl::StatusOr<RecordBuilder> RecordBuilder::Create(const Hasher& hasher, absl::Time time,
                                                    const AuthInfo& auth,
                                                    const RequestInfo& r) {
  RecordBuilder b(hasher);
  b.hashed_.reserve(4);  // never reallocated: every raw copy is zeroed where it was made
  b.head_ = "{\"time\":";
  core::AppendJsonString(b.head_, core::FormatRfc3339Nanos(time));
  b.head_.append(",\"type\":\"");

  std::string& out = b.tail_;
  out.reserve(1024);
  out.append("\",\"auth\":{");
  if (auth.known) {
    // Everything but the use count and TTL left is the same for every request with this token.
    std::string key = TokenPartKey("auth:", auth.client_token, auth.accessor);
    WARD_RETURN_IF_ERROR(AppendRememberedOr(hasher, std::move(key), out, [&]() -> absl::Status {
      WARD_ASSIGN_OR_RETURN(std::string token, b.HashOnce(auth.client_token));
      WARD_ASSIGN_OR_RETURN(std::string accessor, b.HashOnce(auth.accessor));
      StringField(out, "client_token", token);
      StringField(out, "accessor", accessor);
      StringField(out, "display_name", auth.display_name);
      StringsField(out, "policies", auth.policies);
      StringsField(out, "token_policies", auth.policies);
      Key(out, "metadata");
      if (auth.metadata.empty()) {
        out.append("null,");
      } else {
        out.push_back('{');
        for (const auto& [k, v] : auth.metadata) StringField(out, k, v);
        Close(out, '}');
        out.push_back(',');
      }
      StringField(out, "entity_id", "");
      StringField(out, "token_type", auth.token_type);
      StringField(out, "token_issue_time", core::FormatRfc3339Nanos(auth.token_issue_time));
      return absl::OkStatus();
    }));
    absl::StrAppend(&out, "\"num_uses\":", auth.num_uses, ",\"token_ttl\":", auth.token_ttl, ",");
  }
  Close(out, '}');

  out.append(",\"request\":{");
  StringField(out, "id", r.id);
  StringField(out, "operation", r.operation);
  StringField(out, "mount_type", r.mount_type);
  StringField(out, "mount_point", r.mount_point);
  // The hashed token and accessor, remembered together under a valid token's accessor.
  std::string key = TokenPartKey("request:", r.client_token, r.client_token_accessor);
  WARD_RETURN_IF_ERROR(AppendRememberedOr(hasher, std::move(key), out, [&]() -> absl::Status {
    WARD_ASSIGN_OR_RETURN(std::string token, b.HashOnce(r.client_token));
    WARD_ASSIGN_OR_RETURN(std::string accessor, b.HashOnce(r.client_token_accessor));
    StringField(out, "client_token", token);
    StringField(out, "client_token_accessor", accessor);
    return absl::OkStatus();
  }));
  out.append("\"namespace\":{\"id\":\"root\"},");
  StringField(out, "path", r.path);
  if (!r.data.is_null()) {
    Key(out, "data");
    WARD_RETURN_IF_ERROR(AppendHashed(out, hasher, r.data));
    out.push_back(',');
  }
  StringField(out, "remote_address", r.remote_address);
  absl::StrAppend(&out, "\"remote_port\":", r.remote_port, "}");
  b.mount_type_ = r.mount_type;
  b.mount_point_ = r.mount_point;
  return b;
}

std::string RecordBuilder::RequestRecord() const {
  return absl::StrCat(head_, "request", tail_, ",\"error\":\"\"}");
}

absl::StatusOr<std::string> RecordBuilder::ResponseRecord(const ResponseInfo& response) {
  std::string out = absl::StrCat(head_, "response", tail_, ",\"response\":{");
  StringField(out, "mount_type", mount_type_);
  StringField(out, "mount_point", mount_point_);
  absl::StrAppend(&out, "\"status_code\":", response.status_code, ",");
  if (!response.data.is_null()) {
    Key(out, "data");
    WARD_RETURN_IF_ERROR(AppendHashed(out, *hasher_, response.data));
    out.push_back(',');
  } else if (!response.data_json.empty()) {
    Key(out, "data");
    WARD_RETURN_IF_ERROR(AppendHashedDataJson(out, response));
    out.push_back(',');
  }
  if (response.auth.is_object()) {
    Key(out, "auth");
    out.push_back('{');
    for (const auto& kv : response.auth.get_object()) {
      const std::string_view key(kv.key());
      Key(out, key);
      if ((key == "client_token" || key == "accessor") && kv.value().is_string() &&
          !kv.value().get_string().empty()) {
        WARD_ASSIGN_OR_RETURN(std::string h, HashOnce(std::string_view(kv.value().get_string())));
        core::AppendJsonString(out, h);
      } else {
        out.append(json::serialize(kv.value()));
      }
      out.push_back(',');
    }
    Close(out, '}');
    out.push_back(',');
  }
  if (!response.warnings.empty()) StringsField(out, "warnings", response.warnings);
  Close(out, '}');
  out.append(",\"error\":");
  core::AppendJsonString(out, response.error);
  out.push_back('}');
  return out;
}

absl::Status HashStrings(const Hasher& hasher, json::value& v) {
  if (v.is_string()) {
    WARD_ASSIGN_OR_RETURN(std::string h, hasher.Hash(std::string_view(v.as_string())));
    v = h;
  } else if (v.is_object()) {
    for (auto& kv : v.as_object()) WARD_RETURN_IF_ERROR(HashStrings(hasher, kv.value()));
  } else if (v.is_array()) {
    for (json::value& e : v.as_array()) WARD_RETURN_IF_ERROR(HashStrings(hasher, e));
  }
  return absl::OkStatus();
}

namespace {

// A record's text as a JSON object. Errors: kInternal if it does not parse (a string that is not
// UTF-8 in the record's input).
absl::StatusOr<json::object> ParseRecord(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) {
    return absl::InternalError("audit: record is not a JSON object: " + ec.message());
  }
  return std::move(v.as_object());
}

}  // namespace

absl::StatusOr<json::object> BuildRequestRecord(const Hasher& hasher, absl::Time time,
                                                const AuthInfo& auth, const RequestInfo& request) {
  WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(hasher, time, auth, request));
  return ParseRecord(b.RequestRecord());
}

absl::StatusOr<json::object> BuildResponseRecord(const Hasher& hasher, absl::Time time,
                                                 const AuthInfo& auth, const RequestInfo& request,
                                                 const ResponseInfo& response) {
  WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(hasher, time, auth, request));
  WARD_ASSIGN_OR_RETURN(std::string text, b.ResponseRecord(response));
  return ParseRecord(text);
}

}  // namespace ward::audit
