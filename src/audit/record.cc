#include "audit/record.h"

#include "absl/strings/str_cat.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "core/time_format.h"

namespace ward::audit {
namespace json = boost::json;

namespace {

std::string Quoted(std::string_view s) { return json::serialize(json::string_view(s.data(), s.size())); }

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& str : v) a.emplace_back(str);
  return a;
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
  hashed_.emplace_back(std::string(value), h);
  return h;
}

absl::StatusOr<RecordBuilder> RecordBuilder::Create(const Hasher& hasher, absl::Time time,
                                                    const AuthInfo& auth,
                                                    const RequestInfo& r) {
  RecordBuilder b(hasher);
  json::object a;
  if (auth.known) {
    WARD_ASSIGN_OR_RETURN(std::string token, b.HashOnce(auth.client_token));
    WARD_ASSIGN_OR_RETURN(std::string accessor, b.HashOnce(auth.accessor));
    a["client_token"] = token;
    a["accessor"] = accessor;
    a["display_name"] = auth.display_name;
    a["policies"] = Strings(auth.policies);
    a["token_policies"] = Strings(auth.policies);
    json::object meta;
    for (const auto& [k, v] : auth.metadata) meta[k] = v;
    a["metadata"] = auth.metadata.empty() ? json::value(nullptr) : json::value(std::move(meta));
    a["entity_id"] = "";
    a["token_type"] = auth.token_type;
    a["num_uses"] = auth.num_uses;
    a["token_ttl"] = auth.token_ttl;
    a["token_issue_time"] = auth.token_issue_time;
  }
  json::object q;
  q["id"] = r.id;
  q["operation"] = r.operation;
  q["mount_type"] = r.mount_type;
  q["mount_point"] = r.mount_point;
  WARD_ASSIGN_OR_RETURN(std::string token, b.HashOnce(r.client_token));
  WARD_ASSIGN_OR_RETURN(std::string accessor, b.HashOnce(r.client_token_accessor));
  q["client_token"] = token;
  q["client_token_accessor"] = accessor;
  q["namespace"] = json::object{{"id", "root"}};
  q["path"] = r.path;
  if (!r.data.is_null()) {
    json::value data = r.data;
    WARD_RETURN_IF_ERROR(HashStrings(hasher, data));
    q["data"] = std::move(data);
  }
  q["remote_address"] = r.remote_address;
  q["remote_port"] = r.remote_port;
  b.head_ = absl::StrCat("{\"time\":", Quoted(core::FormatRfc3339Nanos(time)), ",\"type\":\"");
  b.tail_ = absl::StrCat("\",\"auth\":", json::serialize(a), ",\"request\":", json::serialize(q));
  b.mount_type_ = r.mount_type;
  b.mount_point_ = r.mount_point;
  return b;
}

std::string RecordBuilder::RequestRecord() const {
  return absl::StrCat(head_, "request", tail_, ",\"error\":\"\"}");
}

absl::StatusOr<std::string> RecordBuilder::ResponseRecord(const ResponseInfo& response) {
  json::object resp;
  resp["mount_type"] = mount_type_;
  resp["mount_point"] = mount_point_;
  resp["status_code"] = response.status_code;
  if (!response.data.is_null()) {
    json::value data = response.data;
    WARD_RETURN_IF_ERROR(HashStrings(*hasher_, data));
    resp["data"] = std::move(data);
  }
  if (response.auth.is_object()) {
    json::object a = response.auth.as_object();
    for (const char* key : {"client_token", "accessor"}) {
      auto it = a.find(key);
      if (it != a.end() && it->value().is_string() && !it->value().as_string().empty()) {
        WARD_ASSIGN_OR_RETURN(std::string h, HashOnce(std::string_view(it->value().as_string())));
        it->value() = h;
      }
    }
    resp["auth"] = std::move(a);
  }
  if (!response.warnings.empty()) resp["warnings"] = Strings(response.warnings);
  return absl::StrCat(head_, "response", tail_, ",\"response\":", json::serialize(resp),
                      ",\"error\":", Quoted(response.error), "}");
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

absl::StatusOr<json::object> BuildRequestRecord(const Hasher& hasher, absl::Time time,
                                                const AuthInfo& auth, const RequestInfo& request) {
  WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(hasher, time, auth, request));
  return json::parse(b.RequestRecord()).as_object();
}

absl::StatusOr<json::object> BuildResponseRecord(const Hasher& hasher, absl::Time time,
                                                 const AuthInfo& auth, const RequestInfo& request,
                                                 const ResponseInfo& response) {
  WARD_ASSIGN_OR_RETURN(RecordBuilder b, RecordBuilder::Create(hasher, time, auth, request));
  WARD_ASSIGN_OR_RETURN(std::string text, b.ResponseRecord(response));
  return json::parse(text).as_object();
}

}  // namespace ward::audit
