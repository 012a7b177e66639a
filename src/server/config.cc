#include "server/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::server {
namespace {

absl::Status FieldError(std::string_view field, std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(core::ToAbsl(field), ": ", core::ToAbsl(message)));
}

// Checks that `node` is a map holding only `allowed` keys.
absl::Status CheckKeys(const YAML::Node& node, std::string_view field,
                       const std::set<std::string>& allowed) {
  if (!node.IsMap()) return FieldError(field.empty() ? "config" : field, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (allowed.count(key) == 0) {
      std::string name = field.empty() ? key : absl::StrCat(core::ToAbsl(field), ".", key);
      return FieldError(name, "unknown field");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Scalar(const YAML::Node& node, std::string_view field) {
  if (!node.IsScalar()) return FieldError(field, "must be a string");
  return node.as<std::string>();
}

absl::StatusOr<absl::Duration> Duration(const YAML::Node& node, std::string_view field) {
  auto text = Scalar(node, field);
  if (!text.ok()) return text.status();
  auto d = core::ParseVaultDuration(*text, field);
  if (!d.ok()) return d.status();
  if (*d <= absl::ZeroDuration()) return FieldError(field, "must be positive");
  return *d;
}

// Options each audit device type accepts; the first is required.
absl::Status CheckAuditOptions(const YAML::Node& options, const std::string& field,
                               AuditDeviceConfig& out) {
  if (!options) return FieldError(absl::StrCat(field, ".file_path"), "required");
  if (auto s = CheckKeys(options, field, {"file_path"}); !s.ok()) return s;
  std::string fp_field = absl::StrCat(field, ".file_path");
  if (!options["file_path"]) return FieldError(fp_field, "required");
  auto fp = Scalar(options["file_path"], fp_field);
  if (!fp.ok()) return fp.status();
  if (fp->empty()) return FieldError(fp_field, "required");
  if (*fp == "stdout" || *fp == "discard") {
    return FieldError(fp_field, "must be a file path (\"stdout\" and \"discard\" are not supported)");
  }
  if (fp->front() != '/') return FieldError(fp_field, "must be an absolute path");
  out.options["file_path"] = *fp;
  return absl::OkStatus();
}

// `audit:`: a list of devices (docs/audit.md).
absl::StatusOr<std::vector<AuditDeviceConfig>> ParseAudit(const YAML::Node& node) {
  if (!node.IsSequence()) return FieldError("audit", "must be a list");
  std::vector<AuditDeviceConfig> devices;
  for (size_t i = 0; i < node.size(); ++i) {
    std::string field = absl::StrCat("audit[", i, "]");
    const YAML::Node entry = node[i];
    if (auto s = CheckKeys(entry, field, {"type", "path", "description", "options"}); !s.ok()) {
      return s;
    }
    AuditDeviceConfig d;
    for (auto [key, target, required] :
         {std::tuple{"type", &d.type, true}, std::tuple{"path", &d.path, true},
          std::tuple{"description", &d.description, false}}) {
      std::string name = absl::StrCat(field, ".", key);
      if (!entry[key]) {
        if (required) return FieldError(name, "required");
        continue;
      }
      auto v = Scalar(entry[key], name);
      if (!v.ok()) return v.status();
      *target = *v;
    }
    if (d.type != "file") {
      return FieldError(absl::StrCat(field, ".type"), "only \"file\" is supported");
    }
    // Normalised as sys/audit does: no leading or trailing '/'.
    size_t b = d.path.find_first_not_of('/');
    size_t e = d.path.find_last_not_of('/');
    d.path = b == std::string::npos ? "" : d.path.substr(b, e - b + 1);
    if (d.path.empty()) return FieldError(absl::StrCat(field, ".path"), "required");
    if (auto s = CheckAuditOptions(entry["options"], absl::StrCat(field, ".options"), d); !s.ok()) {
      return s;
    }
    for (size_t j = 0; j < devices.size(); ++j) {
      if (devices[j].path == d.path) {
        return FieldError(absl::StrCat(field, ".path"),
                          absl::StrCat("\"", d.path, "\" is already used by audit[", j, "]"));
      }
      // Two devices on one file would interleave two hash chains: neither would verify.
      if (devices[j].options["file_path"] == d.options["file_path"]) {
        return FieldError(absl::StrCat(field, ".options.file_path"),
                          absl::StrCat("already used by audit[", j, "]"));
      }
    }
    devices.push_back(std::move(d));
  }
  return devices;
}

absl::StatusOr<Config> ParseNode(const YAML::Node& root) {
  Config c;
  if (!root || root.IsNull()) return FieldError("config", "empty document");
  if (auto s = CheckKeys(root, "", {"listener", "storage", "seal", "log_level", "shutdown_grace",
                                     "disable_mlock", "disable_core_dumps", "audit"});
      !s.ok()) {
    return s;
  }
  const YAML::Node listener = root["listener"];
  if (!listener) return FieldError("listener", "required");
  if (auto s = CheckKeys(listener, "listener",
                         {"address", "tls_cert_file", "tls_key_file", "max_request_size",
                          "read_timeout", "idle_timeout", "tls_handshake_timeout",
                          "unauthenticated_metrics_access",
                          "tls_client_ca_file", "tls_require_client_cert", "tls_crl_file",
                          "tls_trust_pki_mounts", "tls_ticket_key_rotation",
                          "tls_session_resumption", "tls_session_cache_size", "event_loops"});
      !s.ok()) {
    return s;
  }
  if (listener["address"]) {
    auto v = Scalar(listener["address"], "listener.address");
    if (!v.ok()) return v.status();
    c.listener.address = *v;
  }
  if (auto hp = SplitHostPort(c.listener.address, "listener.address"); !hp.ok()) return hp.status();
  for (auto [key, target] : {std::pair{"tls_cert_file", &c.listener.tls_cert_file},
                             std::pair{"tls_key_file", &c.listener.tls_key_file}}) {
    std::string field = absl::StrCat("listener.", key);
    if (!listener[key]) return FieldError(field, "required");
    auto v = Scalar(listener[key], field);
    if (!v.ok()) return v.status();
    if (v->empty()) return FieldError(field, "required");
    *target = *v;
  }
  if (listener["max_request_size"]) {
    auto v = Scalar(listener["max_request_size"], "listener.max_request_size");
    if (!v.ok()) return v.status();
    auto n = core::ParseInt64(*v);
    if (!n || *n <= 0) return FieldError("listener.max_request_size", "must be a positive integer");
    c.listener.max_request_size = static_cast<size_t>(*n);
  }
  if (listener["read_timeout"]) {
    auto d = Duration(listener["read_timeout"], "listener.read_timeout");
    if (!d.ok()) return d.status();
    c.listener.read_timeout = *d;
  }
  if (listener["idle_timeout"]) {
    auto d = Duration(listener["idle_timeout"], "listener.idle_timeout");
    if (!d.ok()) return d.status();
    c.listener.idle_timeout = *d;
  }
  if (listener["tls_handshake_timeout"]) {
    auto d = Duration(listener["tls_handshake_timeout"], "listener.tls_handshake_timeout");
    if (!d.ok()) return d.status();
    c.listener.tls_handshake_timeout = *d;
  }
  if (listener["unauthenticated_metrics_access"]) {
    auto v = Scalar(listener["unauthenticated_metrics_access"],
                    "listener.unauthenticated_metrics_access");
    if (!v.ok()) return v.status();
    if (*v != "true" && *v != "false") {
      return FieldError("listener.unauthenticated_metrics_access", "must be true or false");
    }
    c.listener.unauthenticated_metrics_access = *v == "true";
  }
  for (auto [key, target] : {std::pair{"tls_client_ca_file", &c.listener.tls_client_ca_file},
                             std::pair{"tls_crl_file", &c.listener.tls_crl_file}}) {
    if (!listener[key]) continue;
    std::string field = absl::StrCat("listener.", key);
    auto v = Scalar(listener[key], field);
    if (!v.ok()) return v.status();
    if (v->empty()) return FieldError(field, "must not be empty (omit the field instead)");
    *target = *v;
  }
  if (listener["tls_require_client_cert"]) {
    auto v = Scalar(listener["tls_require_client_cert"], "listener.tls_require_client_cert");
    if (!v.ok()) return v.status();
    if (*v != "true" && *v != "false") {
      return FieldError("listener.tls_require_client_cert", "must be true or false");
    }
    c.listener.tls_require_client_cert = *v == "true";
  }
  if (listener["tls_trust_pki_mounts"]) {
    auto v = Scalar(listener["tls_trust_pki_mounts"], "listener.tls_trust_pki_mounts");
    if (!v.ok()) return v.status();
    if (*v != "true" && *v != "false") {
      return FieldError("listener.tls_trust_pki_mounts", "must be true or false");
    }
    c.listener.tls_trust_pki_mounts = *v == "true";
  }
  if (listener["tls_ticket_key_rotation"]) {
    auto d = Duration(listener["tls_ticket_key_rotation"], "listener.tls_ticket_key_rotation");
    if (!d.ok()) return d.status();
    if (*d < absl::Minutes(1)) {
      return FieldError("listener.tls_ticket_key_rotation", "must be at least 1m");
    }
    c.listener.tls_ticket_key_rotation = *d;
  }
  if (listener["tls_session_resumption"]) {
    auto v = Scalar(listener["tls_session_resumption"], "listener.tls_session_resumption");
    if (!v.ok()) return v.status();
    if (*v == "node") {
      c.listener.tls_session_resumption = ListenerConfig::SessionResumption::kNode;
    } else if (*v == "tickets") {
      c.listener.tls_session_resumption = ListenerConfig::SessionResumption::kTickets;
    } else {
      return FieldError("listener.tls_session_resumption", "must be node or tickets");
    }
  }
  if (listener["tls_session_cache_size"]) {
    auto v = Scalar(listener["tls_session_cache_size"], "listener.tls_session_cache_size");
    if (!v.ok()) return v.status();
    auto n = core::ParseInt64(*v);
    if (!n || *n <= 0) {
      return FieldError("listener.tls_session_cache_size", "must be a positive integer");
    }
    c.listener.tls_session_cache_size = static_cast<size_t>(*n);
  }
  if (listener["event_loops"]) {
    auto v = Scalar(listener["event_loops"], "listener.event_loops");
    if (!v.ok()) return v.status();
    auto n = core::ParseInt64(*v);
    if (!n || *n < 1 || *n > kMaxEventLoops) {
      return FieldError("listener.event_loops",
                        absl::StrCat("must be an integer from 1 to ", kMaxEventLoops,
                                     " (omit it for one per CPU)"));
    }
    c.listener.event_loops = static_cast<int>(*n);
  }
  if (c.listener.tls_require_client_cert && c.listener.tls_client_ca_file.empty()) {
    return FieldError("listener.tls_require_client_cert",
                      "requires listener.tls_client_ca_file (the CAs client certificates must "
                      "chain to)");
  }
  if (!c.listener.tls_crl_file.empty() && c.listener.tls_client_ca_file.empty()) {
    return FieldError("listener.tls_crl_file", "requires listener.tls_client_ca_file");
  }

  const YAML::Node storage = root["storage"];
  if (!storage) return FieldError("storage", "required");
  if (auto s = CheckKeys(storage, "storage", {"path"}); !s.ok()) return s;
  if (!storage["path"]) return FieldError("storage.path", "required");
  auto path = Scalar(storage["path"], "storage.path");
  if (!path.ok()) return path.status();
  if (path->empty()) return FieldError("storage.path", "required");
  c.storage.path = *path;

  if (const YAML::Node seal = root["seal"]) {
    if (auto s = CheckKeys(seal, "seal", {"type"}); !s.ok()) return s;
    if (seal["type"]) {
      auto t = Scalar(seal["type"], "seal.type");
      if (!t.ok()) return t.status();
      if (*t != "shamir") return FieldError("seal.type", "only \"shamir\" is supported");
      c.seal.type = *t;
    }
  }
  if (root["log_level"]) {
    auto v = Scalar(root["log_level"], "log_level");
    if (!v.ok()) return v.status();
    if (!core::IsValidLogLevel(*v)) {
      return FieldError("log_level", "must be one of trace, debug, info, warn, error, off");
    }
    c.log_level = *v;
  }
  if (root["shutdown_grace"]) {
    auto d = Duration(root["shutdown_grace"], "shutdown_grace");
    if (!d.ok()) return d.status();
    c.shutdown_grace = *d;
  }
  for (auto [key, target] : {std::pair{"disable_mlock", &c.disable_mlock},
                             std::pair{"disable_core_dumps", &c.disable_core_dumps}}) {
    if (!root[key]) continue;
    auto v = Scalar(root[key], key);
    if (!v.ok()) return v.status();
    if (*v != "true" && *v != "false") return FieldError(key, "must be true or false");
    *target = *v == "true";
  }
  if (root["audit"]) {
    auto audit = ParseAudit(root["audit"]);
    if (!audit.ok()) return audit.status();
    c.audit = *std::move(audit);
  }
  return c;
}

}  // namespace

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view address,
                                                              std::string_view field) {
  std::string_view host, port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return FieldError(field, "must be host:port");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return FieldError(field, "must be host:port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  auto n = core::ParseInt64(port);
  if (host.empty() || !n || *n < 0 || *n > 65535) return FieldError(field, "must be host:port");
  return std::pair<std::string, uint16_t>(std::string(host), static_cast<uint16_t>(*n));
}

absl::StatusOr<Config> ParseConfig(std::string_view yaml_text) {
  try {
    return ParseNode(YAML::Load(std::string(yaml_text)));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: invalid YAML at line ", e.mark.line + 1, ", column ",
                     e.mark.column + 1, ": ", e.msg));
  }
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

}  // namespace ward::server
