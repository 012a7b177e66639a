#include "audit/record.h"

#include "core/status_macros.h"
#include "core/time_format.h"

namespace ward::audit {
namespace json = boost::json;

namespace {

absl::StatusOr<json::value> HashedOrEmpty(const Hasher& hasher, const std::string& value) {
  if (value.empty()) return json::value("");
  WARD_ASSIGN_OR_RETURN(std::string h, hasher.Hash(value));
  return json::value(h);
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

absl::StatusOr<json::object> AuthJson(const Hasher& hasher, const AuthInfo& auth) {
  json::object o;
  if (!auth.known) return o;
  WARD_ASSIGN_OR_RETURN(o["client_token"], HashedOrEmpty(hasher, auth.client_token));
  WARD_ASSIGN_OR_RETURN(o["accessor"], HashedOrEmpty(hasher, auth.accessor));
  o["display_name"] = auth.display_name;
  o["policies"] = Strings(auth.policies);
  o["token_policies"] = Strings(auth.policies);
  json::object meta;
  for (const auto& [k, v] : auth.metadata) meta[k] = v;
  o["metadata"] = auth.metadata.empty() ? json::value(nullptr) : json::value(std::move(meta));
  o["entity_id"] = "";
  o["token_type"] = auth.token_type;
  o["num_uses"] = auth.num_uses;
  o["token_ttl"] = auth.token_ttl;
  o["token_issue_time"] = auth.token_issue_time;
  return o;
}

absl::StatusOr<json::object> RequestJson(const Hasher& hasher, const RequestInfo& r) {
  json::object o;
  o["id"] = r.id;
  o["operation"] = r.operation;
  o["mount_type"] = r.mount_type;
  o["mount_point"] = r.mount_point;
  WARD_ASSIGN_OR_RETURN(o["client_token"], HashedOrEmpty(hasher, r.client_token));
  WARD_ASSIGN_OR_RETURN(o["client_token_accessor"], HashedOrEmpty(hasher, r.client_token_accessor));
  o["namespace"] = json::object{{"id", "root"}};
  o["path"] = r.path;
  if (!r.data.is_null()) {
    json::value data = r.data;
    WARD_RETURN_IF_ERROR(HashStrings(hasher, data));
    o["data"] = std::move(data);
  }
  o["remote_address"] = r.remote_address;
  o["remote_port"] = r.remote_port;
  return o;
}

absl::StatusOr<json::object> Base(const Hasher& hasher, absl::Time time, std::string_view type,
                                  const AuthInfo& auth, const RequestInfo& request) {
  json::object o;
  o["time"] = core::FormatRfc3339Nanos(time);
  o["type"] = type;
  WARD_ASSIGN_OR_RETURN(o["auth"], AuthJson(hasher, auth));
  WARD_ASSIGN_OR_RETURN(o["request"], RequestJson(hasher, request));
  return o;
}

}  // namespace

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
  WARD_ASSIGN_OR_RETURN(json::object o, Base(hasher, time, "request", auth, request));
  o["error"] = "";
  return o;
}

absl::StatusOr<json::object> BuildResponseRecord(const Hasher& hasher, absl::Time time,
                                                 const AuthInfo& auth, const RequestInfo& request,
                                                 const ResponseInfo& response) {
  WARD_ASSIGN_OR_RETURN(json::object o, Base(hasher, time, "response", auth, request));
  json::object resp;
  resp["mount_type"] = request.mount_type;
  resp["mount_point"] = request.mount_point;
  resp["status_code"] = response.status_code;
  if (!response.data.is_null()) {
    json::value data = response.data;
    WARD_RETURN_IF_ERROR(HashStrings(hasher, data));
    resp["data"] = std::move(data);
  }
  if (response.auth.is_object()) {
    json::object a = response.auth.as_object();
    for (const char* key : {"client_token", "accessor"}) {
      auto it = a.find(key);
      if (it != a.end() && it->value().is_string() && !it->value().as_string().empty()) {
        WARD_ASSIGN_OR_RETURN(std::string h,
                              hasher.Hash(std::string_view(it->value().as_string())));
        it->value() = h;
      }
    }
    resp["auth"] = std::move(a);
  }
  if (!response.warnings.empty()) resp["warnings"] = Strings(response.warnings);
  o["response"] = std::move(resp);
  o["error"] = response.error;
  return o;
}

}  // namespace ward::audit
