#include "api/internal/json.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "api/http_status.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::api::internal {
namespace {

const json::value* Find(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

absl::Status WrongType(std::string_view key, std::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("error parsing field \"", core::ToAbsl(key), "\": expected ", core::ToAbsl(want)));
}

std::vector<std::string> SplitCommaList(std::string_view s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(core::ToAbsl(s), ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

}  // namespace

absl::StatusOr<json::object> ParseBody(std::string_view body) {
  std::string_view trimmed = core::FromAbsl(absl::StripAsciiWhitespace(core::ToAbsl(body)));
  if (trimmed.empty()) return json::object();
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(trimmed.data(), trimmed.size()), ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("failed to parse JSON input: ", ec.message()));
  }
  if (!v.is_object()) {
    return absl::InvalidArgumentError("failed to parse JSON input: body must be a JSON object");
  }
  return std::move(v.as_object());
}

absl::StatusOr<std::optional<std::string>> GetString(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(std::string(v->as_string()));
  if (v->is_int64()) return std::optional<std::string>(std::to_string(v->as_int64()));
  if (v->is_uint64()) return std::optional<std::string>(std::to_string(v->as_uint64()));
  if (v->is_bool()) return std::optional<std::string>(v->as_bool() ? "true" : "false");
  return WrongType(key, "a string");
}

absl::StatusOr<std::optional<int64_t>> GetInt(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(v->as_uint64()));
  }
  if (v->is_double()) {
    double d = v->as_double();
    if (d == static_cast<double>(static_cast<int64_t>(d))) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  if (v->is_string()) {
    auto parsed = core::ParseInt64(std::string_view(v->as_string().data(), v->as_string().size()));
    if (parsed) return std::optional<int64_t>(*parsed);
  }
  return WrongType(key, "an integer");
}

absl::StatusOr<std::optional<bool>> GetBool(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<bool>();
  if (v->is_bool()) return std::optional<bool>(v->as_bool());
  if (v->is_string()) {
    std::string_view s(v->as_string().data(), v->as_string().size());
    if (s == "true" || s == "1") return std::optional<bool>(true);
    if (s == "false" || s == "0") return std::optional<bool>(false);
  }
  if (v->is_int64()) return std::optional<bool>(v->as_int64() != 0);
  return WrongType(key, "a boolean");
}

absl::StatusOr<std::optional<absl::Duration>> GetDuration(const json::object& o,
                                                          std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<absl::Duration>();
  if (v->is_int64() || v->is_uint64()) {
    auto i = GetInt(o, key);
    if (!i.ok()) return i.status();
    if (**i < 0) return WrongType(key, "a non-negative duration");
    return std::optional<absl::Duration>(absl::Seconds(**i));
  }
  if (v->is_string()) {
    auto d = core::ParseVaultDuration(
        std::string_view(v->as_string().data(), v->as_string().size()), key);
    if (!d.ok()) return d.status();
    return std::optional<absl::Duration>(*d);
  }
  return WrongType(key, "a duration");
}

absl::StatusOr<std::optional<std::vector<std::string>>> GetStringList(const json::object& o,
                                                                      std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  if (v->is_string()) {
    out = SplitCommaList(std::string_view(v->as_string().data(), v->as_string().size()));
  } else if (v->is_array()) {
    for (const json::value& item : v->as_array()) {
      if (!item.is_string()) return WrongType(key, "a list of strings");
      out.emplace_back(item.as_string());
    }
  } else {
    return WrongType(key, "a list of strings");
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

absl::StatusOr<std::optional<std::vector<uint64_t>>> GetUintList(const json::object& o,
                                                                 std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<std::vector<uint64_t>>();
  std::vector<uint64_t> out;
  auto add_text = [&out](std::string_view s) {
    auto n = core::ParseUint64(s);
    if (!n) return false;
    out.push_back(*n);
    return true;
  };
  if (v->is_string()) {
    for (const std::string& part :
         SplitCommaList(std::string_view(v->as_string().data(), v->as_string().size()))) {
      if (!add_text(part)) return WrongType(key, "a list of version numbers");
    }
  } else if (v->is_array()) {
    for (const json::value& item : v->as_array()) {
      if (item.is_uint64()) {
        out.push_back(item.as_uint64());
      } else if (item.is_int64() && item.as_int64() >= 0) {
        out.push_back(static_cast<uint64_t>(item.as_int64()));
      } else if (item.is_string() &&
                 add_text(std::string_view(item.as_string().data(), item.as_string().size()))) {
      } else {
        return WrongType(key, "a list of version numbers");
      }
    }
  } else if (v->is_int64() || v->is_uint64()) {
    out.push_back(v->is_uint64() ? v->as_uint64() : static_cast<uint64_t>(v->as_int64()));
  } else {
    return WrongType(key, "a list of version numbers");
  }
  return std::optional<std::vector<uint64_t>>(std::move(out));
}

absl::StatusOr<std::optional<std::map<std::string, std::string>>> GetStringMap(
    const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::optional<std::map<std::string, std::string>>();
  if (!v->is_object()) return WrongType(key, "a map of strings");
  std::map<std::string, std::string> out;
  for (const auto& kv : v->as_object()) {
    const json::value& item = kv.value();
    std::string k(kv.key());
    if (item.is_string()) {
      out[k] = std::string(item.as_string());
    } else if (item.is_int64() || item.is_uint64() || item.is_double() || item.is_bool()) {
      out[k] = json::serialize(item);
    } else {
      return WrongType(key, "a map of strings");
    }
  }
  return std::optional<std::map<std::string, std::string>>(std::move(out));
}

json::value StringMapToJson(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

json::array StringsToJson(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

net::HttpResponse JsonResponse(int status, const json::value& body) {
  net::HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = json::serialize(body);
  r.body.push_back('\n');
  return r;
}

net::HttpResponse NoContent() {
  net::HttpResponse r;
  r.status = 204;
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

net::HttpResponse ErrorResponse(int status, std::string_view message) {
  json::array errors;
  if (!message.empty()) errors.emplace_back(json::string_view(message.data(), message.size()));
  return JsonResponse(status, json::object{{"errors", std::move(errors)}});
}

net::HttpResponse ErrorResponse(const absl::Status& status) {
  int code = HttpStatusFor(status);
  if (status.code() == absl::StatusCode::kNotFound) return ErrorResponse(404, "");
  return ErrorResponse(code, core::FromAbsl(status.message()));
}

net::HttpResponse RawEnvelope(std::string_view request_id, std::string_view data_json,
                              std::string_view mount_type, int status) {
  net::HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  std::string& b = r.body;
  b.reserve(data_json.size() + request_id.size() + mount_type.size() + 160);
  b.append(R"({"request_id":)");
  AppendJsonString(b, request_id);
  b.append(R"(,"lease_id":"","renewable":false,"lease_duration":0,"data":)");
  b.append(data_json);
  b.append(R"(,"wrap_info":null,"warnings":null,"auth":null,"mount_type":)");
  AppendJsonString(b, mount_type);
  b.append("}\n");
  return r;
}

net::HttpResponse Envelope(std::string_view request_id, json::value data, json::value auth,
                           std::string_view mount_type, bool sys_inject, int status) {
  json::object o;
  if (sys_inject && data.is_object()) {
    for (const auto& kv : data.as_object()) o[kv.key()] = kv.value();
  }
  o["request_id"] = json::string_view(request_id.data(), request_id.size());
  o["lease_id"] = "";
  o["renewable"] = false;
  o["lease_duration"] = 0;
  o["data"] = std::move(data);
  o["wrap_info"] = nullptr;
  o["warnings"] = nullptr;
  o["auth"] = std::move(auth);
  o["mount_type"] = json::string_view(mount_type.data(), mount_type.size());
  return JsonResponse(status, o);
}

}  // namespace ward::api::internal
