// KV v2 routes and the mount routes (sys/mounts, sys/internal/ui/mounts) of VaultHandler.

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;

namespace {

constexpr std::string_view kMergePatch = "application/merge-patch+json";

json::value TimeOrEmpty(const std::optional<absl::Time>& t) {
  return t ? json::value(core::FormatRfc3339Nanos(*t)) : json::value("");
}

std::string_view OutageText(secrets::OutageBehavior b) {
  switch (b) {
    case secrets::OutageBehavior::kServeStale:
      return "serve-stale";
    case secrets::OutageBehavior::kFailClosed:
      return "fail-closed";
    default:
      return "";
  }
}

// The per-version metadata object Vault returns beside data.
json::object VersionJson(const secrets::VersionInfo& v,
                         const std::map<std::string, std::string>& custom) {
  return json::object{{"created_time", core::FormatRfc3339Nanos(v.created_time)},
                      {"custom_metadata", custom.empty() ? json::value(nullptr)
                                                         : internal::StringMapToJson(custom)},
                      {"deletion_time", TimeOrEmpty(v.deletion_time)},
                      {"destroyed", v.destroyed},
                      {"version", v.version}};
}

// VersionJson written straight into `out` (the KV read path builds no JSON tree).
void AppendVersionJson(std::string& out, const secrets::VersionInfo& v,
                       const std::map<std::string, std::string>& custom) {
  out.append(R"({"created_time":)");
  internal::AppendJsonString(out, core::FormatRfc3339Nanos(v.created_time));
  out.append(R"(,"custom_metadata":)");
  if (custom.empty()) {
    out.append("null");
  } else {
    char sep = '{';
    for (const auto& [key, value] : custom) {
      out.push_back(sep);
      sep = ',';
      internal::AppendJsonString(out, key);
      out.push_back(':');
      internal::AppendJsonString(out, value);
    }
    out.push_back('}');
  }
  out.append(R"(,"deletion_time":)");
  internal::AppendJsonString(out, v.deletion_time ? core::FormatRfc3339Nanos(*v.deletion_time) : "");
  out.append(v.destroyed ? R"(,"destroyed":true,"version":)" : R"(,"destroyed":false,"version":)");
  out.append(std::to_string(v.version));
  out.push_back('}');
}

json::object MountJson(const MountEntry& e) {
  json::object options;
  for (const auto& [k, v] : e.options) options[k] = v;
  return json::object{
      {"type", e.type},
      {"description", e.description},
      {"accessor", e.accessor},
      {"uuid", e.uuid},
      {"options", options},
      {"config", json::object{{"default_lease_ttl", 0}, {"max_lease_ttl", 0}, {"force_no_cache", false}}},
      {"local", false},
      {"seal_wrap", false},
      {"external_entropy_access", false},
      {"plugin_version", ""},
      {"running_plugin_version", ""}};
}

json::object SystemMountJson() {
  return json::object{{"type", "system"},
                      {"description", "system endpoints used for control, policy and debugging"},
                      {"accessor", "system"},
                      {"uuid", "system"},
                      {"options", nullptr},
                      {"config", json::object{{"default_lease_ttl", 0}, {"max_lease_ttl", 0}}},
                      {"local", false},
                      {"seal_wrap", true},
                      {"external_entropy_access", false}};
}

// Parses ?version= (absent: 0, the current version). Errors: kInvalidArgument.
absl::StatusOr<uint64_t> VersionParam(const Request& req) {
  std::string v = req.Query("version");
  if (v.empty()) return 0;
  auto n = core::ParseUint64(v);
  if (!n) return absl::InvalidArgumentError("invalid version: must be a non-negative integer");
  return *n;
}

// Reads options.cas from a write body. Errors: kInvalidArgument for a malformed value.
absl::StatusOr<std::optional<uint64_t>> CasOption(const json::object& body) {
  auto it = body.find("options");
  if (it == body.end() || it->value().is_null()) return std::optional<uint64_t>();
  if (!it->value().is_object()) return absl::InvalidArgumentError("options must be an object");
  auto cas = internal::GetInt(it->value().as_object(), "cas");
  if (!cas.ok()) return cas.status();
  if (!cas->has_value()) return std::optional<uint64_t>();
  if (**cas < 0) return absl::InvalidArgumentError("cas must not be negative");
  return std::optional<uint64_t>(static_cast<uint64_t>(**cas));
}

bool IsMergePatch(const Request& req) {
  std::string ct = absl::AsciiStrToLower(core::ToAbsl(req.http.Header("content-type")));
  return absl::StartsWith(ct, core::ToAbsl(kMergePatch));
}

// Parses a metadata write body into an update. With `merge`, null custom_metadata values
// remove keys (merge-patch semantics).
absl::StatusOr<secrets::MetadataUpdate> MetadataUpdateFrom(const json::object& body, bool merge) {
  secrets::MetadataUpdate u;
  auto max_versions = internal::GetInt(body, "max_versions");
  if (!max_versions.ok()) return max_versions.status();
  if (max_versions->has_value()) {
    if (**max_versions < 0) return absl::InvalidArgumentError("max_versions must not be negative");
    u.max_versions = static_cast<uint32_t>(**max_versions);
  }
  auto cas_required = internal::GetBool(body, "cas_required");
  if (!cas_required.ok()) return cas_required.status();
  u.cas_required = *cas_required;
  auto dva = internal::GetDuration(body, "delete_version_after");
  if (!dva.ok()) return dva.status();
  u.delete_version_after = *dva;
  if (auto it = body.find("custom_metadata"); it != body.end() && it->value().is_object()) {
    std::map<std::string, std::string> set;
    std::vector<std::string> remove;
    for (const auto& kv : it->value().as_object()) {
      if (kv.value().is_null() && merge) {
        remove.emplace_back(kv.key());
      } else if (kv.value().is_string()) {
        set[std::string(kv.key())] = std::string(kv.value().as_string());
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("custom_metadata value for \"", std::string(kv.key()), "\" must be a string"));
      }
    }
    u.custom_metadata = std::move(set);
    if (!remove.empty()) u.remove_custom_metadata_keys = std::move(remove);
  } else if (it != body.end() && !it->value().is_null()) {
    return absl::InvalidArgumentError("custom_metadata must be a map of strings");
  }
  // Ward's classification, beside custom_metadata (docs/kv-format.md).
  if (auto it = body.find("classification"); it != body.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return absl::InvalidArgumentError("classification must be an object");
    const json::object& c = it->value().as_object();
    secrets::Classification cls;
    auto owner = internal::GetString(c, "owner");
    auto max_cache_age = internal::GetDuration(c, "max_cache_age");
    auto rotation = internal::GetDuration(c, "rotation_period");
    auto outage = internal::GetString(c, "outage_behavior");
    for (const absl::Status& s : {owner.status(), max_cache_age.status(), rotation.status(),
                                  outage.status()}) {
      if (!s.ok()) return s;
    }
    cls.owner = owner->value_or("");
    cls.max_cache_age = max_cache_age->value_or(absl::ZeroDuration());
    cls.rotation_period = rotation->value_or(absl::ZeroDuration());
    std::string o = outage->value_or("");
    if (o == "serve-stale") {
      cls.outage_behavior = secrets::OutageBehavior::kServeStale;
    } else if (o == "fail-closed") {
      cls.outage_behavior = secrets::OutageBehavior::kFailClosed;
    } else if (!o.empty()) {
      return absl::InvalidArgumentError(
          "classification.outage_behavior must be \"serve-stale\" or \"fail-closed\"");
    }
    u.classification = cls;
  }
  return u;
}

json::object MetadataJson(const secrets::SecretMetadata& m) {
  json::object versions;
  for (const auto& [n, v] : m.versions) {
    versions[std::to_string(n)] = json::object{{"created_time", core::FormatRfc3339Nanos(v.created_time)},
                                               {"deletion_time", TimeOrEmpty(v.deletion_time)},
                                               {"destroyed", v.destroyed}};
  }
  json::object stages;
  for (const auto& [label, n] : m.stages) stages[label] = n;
  const secrets::Classification& c = m.classification;
  return json::object{
      {"cas_required", m.cas_required},
      {"created_time", core::FormatRfc3339Nanos(m.created_time)},
      {"current_version", m.current_version},
      {"custom_metadata",
       m.custom_metadata.empty() ? json::value(nullptr) : internal::StringMapToJson(m.custom_metadata)},
      {"delete_version_after", core::FormatGoDuration(m.delete_version_after)},
      {"max_versions", m.max_versions},
      {"oldest_version", m.oldest_version},
      {"updated_time", core::FormatRfc3339Nanos(m.updated_time)},
      {"versions", versions},
      {"stages", stages},
      {"classification", json::object{{"owner", c.owner},
                                      {"max_cache_age", core::FormatGoDuration(c.max_cache_age)},
                                      {"outage_behavior", OutageText(c.outage_behavior)},
                                      {"rotation_period", core::FormatGoDuration(c.rotation_period)}}}};
}

}  // namespace

net::HttpResponse VaultHandler::HandleMounts(Request& req) {
  std::string_view rest = req.path;
  rest.remove_prefix(std::string_view("sys/mounts").size());
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  MountTable& mounts = *req.state->mounts;
  if (rest.empty()) {
    if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
    json::object data;
    for (const MountEntry& e : mounts.List()) data[e.path] = MountJson(e);
    data["sys/"] = SystemMountJson();
    return internal::Envelope(req.request_id(), data, nullptr, "system", true);
  }
  std::string path = NormaliseMountPath(rest);
  if (req.method == "GET") {
    for (const MountEntry& e : mounts.List()) {
      if (e.path == path) return internal::Envelope(req.request_id(), MountJson(e), nullptr, "system", true);
    }
    return ErrorResponse(400, absl::StrCat("no mount found at ", path));
  }
  if (req.method == "DELETE") {
    absl::Status s = mounts.Unmount(path);
    if (!s.ok()) return ErrorResponse(s);
    spdlog::info("event=unmounted path={} request_id={}", path, req.request_id());
    return internal::NoContent();
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto type = internal::GetString(*body, "type");
  auto description = internal::GetString(*body, "description");
  if (!type.ok()) return ErrorResponse(type.status());
  if (!description.ok()) return ErrorResponse(description.status());
  if (!type->has_value() || (*type)->empty()) return ErrorResponse(400, "missing type");
  std::map<std::string, std::string> options;
  if (auto it = body->find("options"); it != body->end() && it->value().is_object()) {
    auto parsed = internal::GetStringMap(*body, "options");
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    options = parsed->value_or(options);
  }
  absl::Status s = mounts.Mount(path, **type, description->value_or(""), options);
  if (!s.ok()) return ErrorResponse(s);
  spdlog::info("event=mounted path={} type={} request_id={}", path, **type, req.request_id());
  return internal::NoContent();
}

net::HttpResponse VaultHandler::HandleUiMounts(Request& req) {
  if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
  std::string_view rest = req.path;
  rest.remove_prefix(std::string_view("sys/internal/ui/mounts").size());
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  MountTable& mounts = *req.state->mounts;
  if (rest.empty()) {
    json::object secret;
    for (const MountEntry& e : mounts.List()) secret[e.path] = MountJson(e);
    json::object data{{"secret", secret}, {"auth", json::object{}}};
    return internal::Envelope(req.request_id(), data, nullptr, "system", true);
  }
  auto match = mounts.Find(rest);
  if (!match) {
    return ErrorResponse(400, absl::StrCat("no mount found for path \"", std::string(rest), "\""));
  }
  json::object data = MountJson(*match->entry);
  data["path"] = match->entry->path;
  return internal::Envelope(req.request_id(), data, nullptr, "system", true);
}

net::HttpResponse VaultHandler::HandleKv(Request& req, const MountMatch& mount) {
  secrets::KvEngine& kv = *mount.engine;
  const std::string& m = req.method;
  std::string_view rest = mount.rest;
  auto split = [&rest](std::string_view op) -> std::optional<std::string> {
    if (rest == op) return std::string();
    if (rest.size() > op.size() && rest.substr(0, op.size()) == op && rest[op.size()] == '/') {
      return std::string(rest.substr(op.size() + 1));
    }
    return std::nullopt;
  };
  auto body_or = [&req]() { return internal::ParseBody(req.http.body); };
  const std::string& rid = req.http.request_id;

  if (rest == "config") {
    if (m == "GET") {
      auto c = kv.ReadConfig();
      if (!c.ok()) return ErrorResponse(c.status());
      json::object data{{"cas_required", c->cas_required},
                        {"delete_version_after", core::FormatGoDuration(c->delete_version_after)},
                        {"max_versions", c->max_versions}};
      return internal::Envelope(rid, data, nullptr, "kv");
    }
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto body = body_or();
    if (!body.ok()) return ErrorResponse(body.status());
    auto current = kv.ReadConfig();
    if (!current.ok()) return ErrorResponse(current.status());
    secrets::KvConfig c = *current;
    auto mv = internal::GetInt(*body, "max_versions");
    auto cas = internal::GetBool(*body, "cas_required");
    auto dva = internal::GetDuration(*body, "delete_version_after");
    for (const absl::Status& s : {mv.status(), cas.status(), dva.status()}) {
      if (!s.ok()) return ErrorResponse(s);
    }
    if (mv->has_value()) {
      if (**mv < 0) return ErrorResponse(400, "max_versions must not be negative");
      c.max_versions = static_cast<uint32_t>(**mv);
    }
    if (cas->has_value()) c.cas_required = **cas;
    if (dva->has_value()) c.delete_version_after = **dva;
    absl::Status s = kv.WriteConfig(c);
    return s.ok() ? internal::NoContent() : ErrorResponse(s);
  }

  if (auto path = split("data")) {
    if (path->empty()) return ErrorResponse(404, "");
    if (m == "GET") {
      auto version = VersionParam(req);
      if (!version.ok()) return ErrorResponse(version.status());
      auto r = kv.Read(*path, *version);
      if (!r.ok()) return ErrorResponse(r.status());
      // The hot path: the envelope is written around the stored JSON text, which the engine
      // canonicalised (parsed and re-serialized) when it was written and the barrier
      // authenticates, so it is spliced in verbatim rather than parsed into a tree again.
      const std::string* stored = r->data_json ? &*r->data_json : nullptr;
      if (stored != nullptr &&
          (stored->size() < 2 || stored->front() != '{' || stored->back() != '}')) {
        return ErrorResponse(500, "stored secret is not valid JSON");
      }
      std::string metadata;
      AppendVersionJson(metadata, r->version, r->custom_metadata);
      std::string data;
      data.reserve((stored != nullptr ? stored->size() : 4) + metadata.size() + 24);
      data.append(R"({"data":)");
      // Deleted or destroyed: data is null and the answer 404 with the metadata, as Vault's.
      data.append(stored != nullptr ? std::string_view(*stored) : std::string_view("null"));
      data.append(R"(,"metadata":)");
      data.append(metadata);
      data.push_back('}');
      if (r->data_json) core::SecureZero(*r->data_json);
      net::HttpResponse resp =
          internal::RawEnvelope(rid, data, "kv", stored != nullptr ? 200 : 404);
      // For the audit records: this data is the stored version's plus `metadata`.
      req.response_data = Request::ResponseData{std::move(data), r->data_identity,
                                                std::move(metadata)};
      return resp;
    }
    if (m == "PUT" || m == "PATCH") {
      if (m == "PATCH" && !IsMergePatch(req)) {
        return ErrorResponse(415, "PATCH requires Content-Type of application/merge-patch+json");
      }
      auto body = body_or();
      if (!body.ok()) return ErrorResponse(body.status());
      auto cas = CasOption(*body);
      if (!cas.ok()) return ErrorResponse(cas.status());
      auto it = body->find("data");
      if (it == body->end() || it->value().is_null()) return ErrorResponse(400, "no data provided");
      if (!it->value().is_object()) return ErrorResponse(400, "data must be a JSON object");
      std::string data_json = json::serialize(it->value());
      auto w = m == "PUT" ? kv.Write(*path, data_json, *cas) : kv.Patch(*path, data_json, *cas);
      core::SecureZero(data_json);
      if (!w.ok()) return ErrorResponse(w.status());
      return internal::Envelope(rid, VersionJson(w->version, w->custom_metadata), nullptr, "kv");
    }
    if (m == "DELETE") {
      absl::Status s = kv.DeleteLatest(*path);
      return s.ok() ? internal::NoContent() : ErrorResponse(s);
    }
    return ErrorResponse(405, "unsupported operation");
  }

  for (std::string_view op : {"delete", "undelete", "destroy"}) {
    auto path = split(op);
    if (!path) continue;
    if (path->empty()) return ErrorResponse(404, "");
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto body = body_or();
    if (!body.ok()) return ErrorResponse(body.status());
    auto versions = internal::GetUintList(*body, "versions");
    if (!versions.ok()) return ErrorResponse(versions.status());
    if (!versions->has_value() || (*versions)->empty()) {
      return ErrorResponse(400, "no version number provided");
    }
    absl::Status s = op == "delete"     ? kv.DeleteVersions(*path, **versions)
                     : op == "undelete" ? kv.UndeleteVersions(*path, **versions)
                                        : kv.DestroyVersions(*path, **versions);
    return s.ok() ? internal::NoContent() : ErrorResponse(s);
  }

  if (auto path = split("metadata")) {
    if (m == "LIST") {
      std::string folder = *path;
      if (!folder.empty() && folder.back() != '/') folder.push_back('/');
      auto limit = core::ParseUint64(req.Query("limit"));
      auto list = kv.List(folder, req.Query("after"), limit.value_or(0));
      if (!list.ok()) return ErrorResponse(list.status());
      return internal::Envelope(rid, json::object{{"keys", internal::StringsToJson(list->keys)}},
                                nullptr, "kv");
    }
    if (path->empty()) return ErrorResponse(404, "");
    if (m == "GET") {
      auto meta = kv.ReadMetadata(*path);
      if (!meta.ok()) return ErrorResponse(meta.status());
      return internal::Envelope(rid, MetadataJson(*meta), nullptr, "kv");
    }
    if (m == "PUT" || m == "PATCH") {
      if (m == "PATCH" && !IsMergePatch(req)) {
        return ErrorResponse(415, "PATCH requires Content-Type of application/merge-patch+json");
      }
      auto body = body_or();
      if (!body.ok()) return ErrorResponse(body.status());
      auto update = MetadataUpdateFrom(*body, m == "PATCH");
      if (!update.ok()) return ErrorResponse(update.status());
      absl::Status s = m == "PUT" ? kv.WriteMetadata(*path, *update) : kv.PatchMetadata(*path, *update);
      return s.ok() ? internal::NoContent() : ErrorResponse(s);
    }
    if (m == "DELETE") {
      absl::Status s = kv.DeleteMetadata(*path);
      return s.ok() ? internal::NoContent() : ErrorResponse(s);
    }
    return ErrorResponse(405, "unsupported operation");
  }

  if (auto path = split("subkeys")) {
    if (path->empty()) return ErrorResponse(404, "");
    if (m != "GET") return ErrorResponse(405, "unsupported operation");
    auto version = VersionParam(req);
    if (!version.ok()) return ErrorResponse(version.status());
    int depth = 0;
    if (std::string d = req.Query("depth"); !d.empty()) {
      auto n = core::ParseInt64(d);
      if (!n || *n < 0) return ErrorResponse(400, "depth must be a non-negative integer");
      depth = static_cast<int>(*n);
    }
    auto sub = kv.Subkeys(*path, *version, depth);
    if (!sub.ok()) return ErrorResponse(sub.status());
    boost::system::error_code ec;
    json::value subkeys = json::parse(sub->first, ec);
    if (ec) return ErrorResponse(500, "subkeys are not valid JSON");
    json::object meta = VersionJson(sub->second, {});
    return internal::Envelope(rid, json::object{{"subkeys", subkeys}, {"metadata", meta}}, nullptr, "kv");
  }

  return ErrorResponse(404, absl::StrCat("no handler for route \"", req.path, "\". route entry not found."));
}

}  // namespace ward::api
