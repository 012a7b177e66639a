#include "pki/role.h"

#include <arpa/inet.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::pki {
namespace {

namespace json = boost::json;

constexpr int64_t kFormatVersion = 1;
constexpr std::string_view kIdentityTemplate = "{{identity}}";

absl::Status BadParam(std::string_view key, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", core::ToAbsl(key), ": ", core::ToAbsl(why)));
}

// Typed readers over a request body: nullopt if absent (or JSON null).
absl::StatusOr<std::optional<bool>> GetBool(const json::object& p, std::string_view key) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<bool>();
  if (v->is_bool()) return std::optional<bool>(v->get_bool());
  if (v->is_string()) {
    std::string_view s = v->get_string();
    if (s == "true" || s == "1") return std::optional<bool>(true);
    if (s == "false" || s == "0") return std::optional<bool>(false);
  }
  if (v->is_int64()) return std::optional<bool>(v->get_int64() != 0);
  return BadParam(key, "expected a boolean");
}

absl::StatusOr<std::optional<std::string>> GetString(const json::object& p, std::string_view key) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(std::string(v->get_string()));
  return BadParam(key, "expected a string");
}

absl::StatusOr<std::optional<int64_t>> GetInt(const json::object& p, std::string_view key) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->get_int64());
  if (v->is_uint64() && v->get_uint64() <= INT64_MAX) {
    return std::optional<int64_t>(static_cast<int64_t>(v->get_uint64()));
  }
  if (v->is_string()) {
    if (std::optional<int64_t> n = core::ParseInt64(v->get_string())) return n;
  }
  return BadParam(key, "expected an integer");
}

absl::StatusOr<std::optional<absl::Duration>> GetDuration(const json::object& p,
                                                          std::string_view key) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<absl::Duration>();
  if (v->is_int64() || v->is_uint64()) {
    WARD_ASSIGN_OR_RETURN(std::optional<int64_t> n, GetInt(p, key));
    if (*n < 0) return BadParam(key, "must not be negative");
    return std::optional<absl::Duration>(absl::Seconds(*n));
  }
  if (v->is_string()) {
    std::string_view text = v->get_string();
    WARD_ASSIGN_OR_RETURN(absl::Duration d, core::ParseVaultDuration(text, key));
    return std::optional<absl::Duration>(d);
  }
  return BadParam(key, "expected a duration");
}

// Arrays of strings, or one comma-separated string (entries trimmed, empty ones dropped).
absl::StatusOr<std::optional<std::vector<std::string>>> GetList(const json::object& p,
                                                                std::string_view key) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  if (v->is_string()) {
    for (absl::string_view part : absl::StrSplit(v->get_string().c_str(), ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) out.emplace_back(part);
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  if (v->is_array()) {
    for (const json::value& e : v->get_array()) {
      if (!e.is_string()) return BadParam(key, "expected a list of strings");
      if (!e.get_string().empty()) out.emplace_back(e.get_string());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  return BadParam(key, "expected a list of strings");
}

// Applies an optional value onto a field when present.
template <typename T, typename Getter>
absl::Status Apply(const json::object& p, std::string_view key, Getter getter, T& field) {
  WARD_ASSIGN_OR_RETURN(auto value, getter(p, key));
  if (value.has_value()) field = std::move(*value);
  return absl::OkStatus();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsHostname(std::string_view name) {
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(core::ToAbsl(name), '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

// Vault's validateNames for one DNS name / CN.
bool DomainAllowed(const Role& role, std::string_view name) {
  std::string lower = Lower(name);
  std::string_view sanitized = lower;
  const bool wildcard = sanitized.substr(0, 2) == "*.";
  if (wildcard) sanitized.remove_prefix(2);
  if (role.allow_localhost && (sanitized == "localhost" || sanitized == "localdomain")) {
    return true;
  }
  if (role.allow_any_name) return true;
  for (const std::string& allowed : role.allowed_domains) {
    std::string d = Lower(allowed);
    if (d.empty()) continue;
    if (role.allow_bare_domains && lower == d) return true;
    if (role.allow_subdomains) {
      std::string suffix = "." + d;
      if ((sanitized.size() > suffix.size() &&
           sanitized.substr(sanitized.size() - suffix.size()) == suffix) ||
          (wildcard && sanitized == d)) {
        return true;
      }
    }
    if (role.allow_glob_domains && d.find('*') != std::string::npos && GlobMatch(d, lower)) {
      return true;
    }
  }
  return false;
}

bool UriAllowed(const Role& role, std::string_view uri, std::string_view identity) {
  for (const std::string& pattern : role.allowed_uri_sans) {
    std::string expanded = pattern;
    if (role.allowed_uri_sans_template) {
      size_t at = expanded.find(kIdentityTemplate);
      if (at != std::string::npos) {
        // A '*' or '/' in the identity would widen the pattern: such an identity matches
        // nothing rather than more than intended.
        if (identity.empty() || identity.find_first_of("*/") != std::string_view::npos) continue;
        while (at != std::string::npos) {
          expanded.replace(at, kIdentityTemplate.size(), identity);
          at = expanded.find(kIdentityTemplate, at + identity.size());
        }
      }
      if (expanded.find("{{") != std::string::npos) continue;  // unknown template
    }
    if (GlobMatch(expanded, uri)) return true;
  }
  return false;
}

void AddUnique(std::vector<std::string>& list, const std::string& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

json::array ToJson(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

bool ReadStrings(const json::object& o, std::string_view k, std::vector<std::string>& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_array()) return false;
  out.clear();
  for (const json::value& s : v->get_array()) {
    if (!s.is_string()) return false;
    out.emplace_back(s.get_string());
  }
  return true;
}

}  // namespace

bool ValidRoleName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool inner = i > 0 && i + 1 < name.size();
    if (!word(c) && !(inner && (c == '-' || c == '.' || c == '@'))) return false;
  }
  return true;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative wildcard matching with one backtrack point: linear in practice, no recursion.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::StatusOr<Role> ParseRole(std::string_view name, const json::object& p, const Role* base) {
  if (!ValidRoleName(name)) {
    return absl::InvalidArgumentError("invalid role name \"" + std::string(name) + "\"");
  }
  Role r = base != nullptr ? *base : Role{};
  r.name = std::string(name);
  WARD_RETURN_IF_ERROR(Apply(p, "allowed_uri_sans", GetList, r.allowed_uri_sans));
  WARD_RETURN_IF_ERROR(Apply(p, "allowed_uri_sans_template", GetBool, r.allowed_uri_sans_template));
  WARD_RETURN_IF_ERROR(Apply(p, "allowed_domains", GetList, r.allowed_domains));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_subdomains", GetBool, r.allow_subdomains));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_bare_domains", GetBool, r.allow_bare_domains));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_glob_domains", GetBool, r.allow_glob_domains));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_any_name", GetBool, r.allow_any_name));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_localhost", GetBool, r.allow_localhost));
  WARD_RETURN_IF_ERROR(Apply(p, "enforce_hostnames", GetBool, r.enforce_hostnames));
  WARD_RETURN_IF_ERROR(Apply(p, "allow_ip_sans", GetBool, r.allow_ip_sans));
  WARD_RETURN_IF_ERROR(Apply(p, "require_cn", GetBool, r.require_cn));
  WARD_RETURN_IF_ERROR(Apply(p, "use_csr_common_name", GetBool, r.use_csr_common_name));
  WARD_RETURN_IF_ERROR(Apply(p, "use_csr_sans", GetBool, r.use_csr_sans));
  WARD_RETURN_IF_ERROR(Apply(p, "ttl", GetDuration, r.ttl));
  WARD_RETURN_IF_ERROR(Apply(p, "max_ttl", GetDuration, r.max_ttl));
  WARD_RETURN_IF_ERROR(Apply(p, "server_flag", GetBool, r.server_flag));
  WARD_RETURN_IF_ERROR(Apply(p, "client_flag", GetBool, r.client_flag));
  WARD_RETURN_IF_ERROR(Apply(p, "no_store", GetBool, r.no_store));
  WARD_RETURN_IF_ERROR(Apply(p, "issuer_ref", GetString, r.issuer_ref));

  WARD_ASSIGN_OR_RETURN(std::optional<std::string> behavior,
                        GetString(p, "leaf_not_after_behavior"));
  if (behavior.has_value()) {
    if (*behavior == "truncate") {
      r.not_after_behavior = NotAfterBehavior::kTruncate;
    } else if (*behavior == "err") {
      r.not_after_behavior = NotAfterBehavior::kErr;
    } else {
      return BadParam("leaf_not_after_behavior", "must be \"truncate\" or \"err\"");
    }
  }

  WARD_ASSIGN_OR_RETURN(std::optional<std::string> key_type, GetString(p, "key_type"));
  WARD_ASSIGN_OR_RETURN(std::optional<int64_t> key_bits, GetInt(p, "key_bits"));
  if (key_type.has_value()) {
    r.key_type = *key_type;
    if (!key_bits.has_value()) r.key_bits = 0;  // the new type's default
  }
  if (key_bits.has_value()) {
    if (*key_bits < 0 || *key_bits > 16384) return BadParam("key_bits", "out of range");
    r.key_bits = static_cast<int>(*key_bits);
  }
  if (r.key_type == "any") {
    r.key_bits = 0;
  } else {
    WARD_ASSIGN_OR_RETURN(KeySpec spec, ParseKeySpec(r.key_type, r.key_bits));
    r.key_bits = spec.bits;
  }

  if (r.issuer_ref.empty()) r.issuer_ref = "default";
  if (r.ttl == absl::ZeroDuration()) r.ttl = absl::Hours(1);
  if (r.max_ttl == absl::ZeroDuration()) r.max_ttl = absl::Hours(24);
  if (r.ttl > r.max_ttl) {
    return absl::InvalidArgumentError("ttl cannot be larger than max_ttl");
  }
  for (const std::string& pattern : r.allowed_uri_sans) {
    if (pattern.rfind("spiffe://", 0) != 0) {
      return absl::InvalidArgumentError("invalid allowed_uri_sans entry \"" + pattern +
                                        "\": Ward issues X509-SVIDs, patterns must start "
                                        "with spiffe://");
    }
  }
  return r;
}

absl::StatusOr<Role> ParseRole(std::string_view name,
                               const std::map<std::string, std::string>& params, const Role* base) {
  json::object o;
  for (const auto& [k, v] : params) o[k] = v;
  return ParseRole(name, o, base);
}

json::object RenderRole(const Role& r) {
  return json::object{
      {"allowed_uri_sans", ToJson(r.allowed_uri_sans)},
      {"allowed_uri_sans_template", r.allowed_uri_sans_template},
      {"allowed_domains", ToJson(r.allowed_domains)},
      {"allow_subdomains", r.allow_subdomains},
      {"allow_bare_domains", r.allow_bare_domains},
      {"allow_glob_domains", r.allow_glob_domains},
      {"allow_any_name", r.allow_any_name},
      {"allow_localhost", r.allow_localhost},
      {"enforce_hostnames", r.enforce_hostnames},
      {"allow_ip_sans", r.allow_ip_sans},
      {"require_cn", r.require_cn},
      {"use_csr_common_name", r.use_csr_common_name},
      {"use_csr_sans", r.use_csr_sans},
      {"ttl", absl::ToInt64Seconds(r.ttl)},
      {"max_ttl", absl::ToInt64Seconds(r.max_ttl)},
      {"leaf_not_after_behavior",
       r.not_after_behavior == NotAfterBehavior::kErr ? "err" : "truncate"},
      {"key_type", r.key_type},
      {"key_bits", r.key_bits},
      {"server_flag", r.server_flag},
      {"client_flag", r.client_flag},
      {"no_store", r.no_store},
      {"issuer_ref", r.issuer_ref},
  };
}

std::string SerializeRole(const Role& r) {
  json::object o = RenderRole(r);
  // Stored with nanosecond durations; the rendered seconds would round sub-second values.
  o["ttl"] = absl::ToInt64Nanoseconds(r.ttl);
  o["max_ttl"] = absl::ToInt64Nanoseconds(r.max_ttl);
  o["name"] = r.name;
  o["version"] = kFormatVersion;
  return json::serialize(o);
}

absl::StatusOr<Role> DeserializeRole(std::string_view text) {
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  const absl::Status bad = absl::DataLossError("malformed pki role in storage");
  if (ec || !root.is_object()) return bad;
  const json::object& o = root.get_object();
  Role r;
  auto str = [&](std::string_view k, std::string& out) {
    const json::value* v = o.if_contains(k);
    if (v == nullptr || !v->is_string()) return false;
    out = std::string(v->get_string());
    return true;
  };
  auto boolean = [&](std::string_view k, bool& out) {
    const json::value* v = o.if_contains(k);
    if (v == nullptr || !v->is_bool()) return false;
    out = v->get_bool();
    return true;
  };
  auto integer = [&](std::string_view k, int64_t& out) {
    const json::value* v = o.if_contains(k);
    if (v == nullptr || !v->is_int64()) return false;
    out = v->get_int64();
    return true;
  };
  int64_t version = 0, ttl = 0, max_ttl = 0, key_bits = 0;
  std::string behavior;
  if (!integer("version", version) || version != kFormatVersion || !str("name", r.name) ||
      !ReadStrings(o, "allowed_uri_sans", r.allowed_uri_sans) ||
      !boolean("allowed_uri_sans_template", r.allowed_uri_sans_template) ||
      !ReadStrings(o, "allowed_domains", r.allowed_domains) ||
      !boolean("allow_subdomains", r.allow_subdomains) ||
      !boolean("allow_bare_domains", r.allow_bare_domains) ||
      !boolean("allow_glob_domains", r.allow_glob_domains) ||
      !boolean("allow_any_name", r.allow_any_name) ||
      !boolean("allow_localhost", r.allow_localhost) ||
      !boolean("enforce_hostnames", r.enforce_hostnames) ||
      !boolean("allow_ip_sans", r.allow_ip_sans) || !boolean("require_cn", r.require_cn) ||
      !boolean("use_csr_common_name", r.use_csr_common_name) ||
      !boolean("use_csr_sans", r.use_csr_sans) || !integer("ttl", ttl) ||
      !integer("max_ttl", max_ttl) || !str("leaf_not_after_behavior", behavior) ||
      !str("key_type", r.key_type) || !integer("key_bits", key_bits) ||
      !boolean("server_flag", r.server_flag) || !boolean("client_flag", r.client_flag) ||
      !boolean("no_store", r.no_store) || !str("issuer_ref", r.issuer_ref)) {
    return bad;
  }
  r.ttl = absl::Nanoseconds(ttl);
  r.max_ttl = absl::Nanoseconds(max_ttl);
  r.key_bits = static_cast<int>(key_bits);
  r.not_after_behavior = behavior == "err" ? NotAfterBehavior::kErr : NotAfterBehavior::kTruncate;
  return r;
}

absl::StatusOr<IssueRequest> ParseIssueRequest(const json::object& p) {
  IssueRequest r;
  WARD_ASSIGN_OR_RETURN(std::optional<std::string> cn, GetString(p, "common_name"));
  if (cn.has_value()) r.common_name = *cn;
  WARD_RETURN_IF_ERROR(Apply(p, "alt_names", GetList, r.alt_names));
  WARD_RETURN_IF_ERROR(Apply(p, "ip_sans", GetList, r.ip_sans));
  WARD_RETURN_IF_ERROR(Apply(p, "uri_sans", GetList, r.uri_sans));
  WARD_RETURN_IF_ERROR(Apply(p, "exclude_cn_from_sans", GetBool, r.exclude_cn_from_sans));
  WARD_ASSIGN_OR_RETURN(std::optional<absl::Duration> ttl, GetDuration(p, "ttl"));
  if (ttl.has_value() && *ttl > absl::ZeroDuration()) r.ttl = *ttl;
  WARD_ASSIGN_OR_RETURN(r.not_after, ParseNotAfter(p));
  if (r.ttl.has_value() && r.not_after.has_value()) {
    return absl::InvalidArgumentError(
        "Either ttl or not_after should be provided. Both should not be provided in the same "
        "request.");
  }
  return r;
}

absl::StatusOr<std::optional<absl::Time>> ParseNotAfter(const json::object& p) {
  WARD_ASSIGN_OR_RETURN(std::optional<std::string> text, GetString(p, "not_after"));
  if (!text.has_value() || text->empty()) return std::optional<absl::Time>();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, *text, &t, &err)) {
    return BadParam("not_after", absl::StrCat("\"", *text, "\" is not an RFC 3339 time (", err,
                                              "), e.g. 2030-01-02T03:04:05Z"));
  }
  return std::optional<absl::Time>(t);
}

namespace {

// A CRL config duration: Vault's ParseDurationSecond input (seconds or Go text), kept as text.
absl::Status ApplyConfigDuration(const json::object& p, std::string_view key, std::string& text,
                                 absl::Duration& value) {
  const json::value* v = p.if_contains(key);
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  std::string given;
  if (v->is_string()) {
    given = std::string(v->get_string());
  } else if (v->is_int64() || v->is_uint64()) {
    given = json::serialize(*v);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("given ", core::ToAbsl(key), " could not be decoded: expected a duration"));
  }
  absl::StatusOr<absl::Duration> d = core::ParseVaultDuration(given, key);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("given ", core::ToAbsl(key), " could not be decoded: ", d.status().message()));
  }
  text = std::move(given);
  value = *d;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CrlConfig> ParseCrlConfig(const json::object& p, const CrlConfig& base) {
  CrlConfig c = base;
  WARD_RETURN_IF_ERROR(ApplyConfigDuration(p, "expiry", c.expiry, c.expiry_duration));
  WARD_RETURN_IF_ERROR(Apply(p, "disable", GetBool, c.disable));
  WARD_RETURN_IF_ERROR(Apply(p, "ocsp_disable", GetBool, c.ocsp_disable));
  absl::Duration ocsp = absl::ZeroDuration();
  WARD_RETURN_IF_ERROR(ApplyConfigDuration(p, "ocsp_expiry", c.ocsp_expiry, ocsp));
  WARD_RETURN_IF_ERROR(Apply(p, "auto_rebuild", GetBool, c.auto_rebuild));
  WARD_RETURN_IF_ERROR(ApplyConfigDuration(p, "auto_rebuild_grace_period",
                                           c.auto_rebuild_grace_period,
                                           c.auto_rebuild_grace_period_duration));
  WARD_RETURN_IF_ERROR(Apply(p, "enable_delta", GetBool, c.enable_delta));
  WARD_RETURN_IF_ERROR(ApplyConfigDuration(p, "delta_rebuild_interval", c.delta_rebuild_interval,
                                           c.delta_rebuild_interval_duration));
  if (c.expiry_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("expiry must be positive");
  }
  if (c.auto_rebuild && c.auto_rebuild_grace_period_duration >= c.expiry_duration) {
    return absl::InvalidArgumentError(
        absl::StrCat("CRL auto-rebuilding grace period (", c.auto_rebuild_grace_period,
                     ") must be strictly shorter than CRL expiry (", c.expiry,
                     ") value when auto-rebuilding of CRLs is enabled"));
  }
  if (c.enable_delta) {
    if (!c.auto_rebuild) {
      return absl::InvalidArgumentError(
          "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL is "
          "always regenerated!");
    }
    return absl::InvalidArgumentError("enable_delta is not supported: Ward builds no delta CRLs");
  }
  return c;
}

json::object RenderCrlConfig(const CrlConfig& c) {
  return json::object{{"expiry", c.expiry},
                      {"disable", c.disable},
                      {"ocsp_disable", c.ocsp_disable},
                      {"ocsp_expiry", c.ocsp_expiry},
                      {"auto_rebuild", c.auto_rebuild},
                      {"auto_rebuild_grace_period", c.auto_rebuild_grace_period},
                      {"enable_delta", c.enable_delta},
                      {"delta_rebuild_interval", c.delta_rebuild_interval}};
}

std::string SerializeCrlConfig(const CrlConfig& c) {
  json::object o = RenderCrlConfig(c);
  o["version"] = kFormatVersion;
  return json::serialize(o);
}

absl::StatusOr<CrlConfig> DeserializeCrlConfig(std::string_view text) {
  const absl::Status bad = absl::DataLossError("malformed pki CRL config in storage");
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return bad;
  const json::object& o = root.get_object();
  const json::value* version = o.if_contains("version");
  if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion) {
    return bad;
  }
  json::object params = o;
  params.erase("version");
  // The stored config was valid when written; a config that no longer parses is corrupt.
  // enable_delta is never stored true (ParseCrlConfig refuses it).
  absl::StatusOr<CrlConfig> c = ParseCrlConfig(params, CrlConfig{});
  if (!c.ok()) return bad;
  return c;
}

absl::StatusOr<CheckedNames> CheckNames(const Role& role, const IssueRequest& request,
                                        const Names* csr) {
  auto refuse = [&](std::string_view param, std::string_view value) {
    return absl::InvalidArgumentError(absl::StrCat(core::ToAbsl(param), " ", core::ToAbsl(value),
                                                   " not allowed by role ", role.name));
  };
  CheckedNames out;
  out.common_name = request.common_name;
  if (out.common_name.empty() && csr != nullptr && role.use_csr_common_name) {
    out.common_name = csr->common_name;
  }
  if (out.common_name.empty() && role.require_cn) {
    return absl::InvalidArgumentError("common_name is required by role " + role.name);
  }

  std::vector<std::string> dns = request.alt_names;
  std::vector<std::string> ips = request.ip_sans;
  std::vector<std::string> uris = request.uri_sans;
  if (csr != nullptr && role.use_csr_sans) {
    for (const std::string& d : csr->dns_sans) AddUnique(dns, d);
    for (const std::string& i : csr->ip_sans) AddUnique(ips, i);
    for (const std::string& u : csr->uri_sans) AddUnique(uris, u);
    if (!csr->email_sans.empty()) {
      return absl::InvalidArgumentError("email SANs are not supported: " + csr->email_sans[0]);
    }
  }

  if (!out.common_name.empty()) {
    if (role.enforce_hostnames && !role.allow_any_name && !IsHostname(out.common_name)) {
      return refuse("common_name", out.common_name);
    }
    if (!DomainAllowed(role, out.common_name)) return refuse("common_name", out.common_name);
    if (!request.exclude_cn_from_sans && IsHostname(out.common_name)) {
      AddUnique(out.dns_sans, out.common_name);
    }
  }
  for (const std::string& d : dns) {
    if (role.enforce_hostnames && !IsHostname(d)) {
      return absl::InvalidArgumentError("alt_names " + d + " is not a valid hostname");
    }
    if (!DomainAllowed(role, d)) return refuse("alt_names", d);
    AddUnique(out.dns_sans, d);
  }
  for (const std::string& ip : ips) {
    if (!role.allow_ip_sans) return refuse("ip_sans", ip);
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return absl::InvalidArgumentError("ip_sans " + ip + " is not a valid IP address");
    }
    AddUnique(out.ip_sans, ip);
  }
  if (uris.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an X509-SVID needs exactly one URI SAN (spiffe://...): ",
        uris.empty() ? std::string("none") : std::to_string(uris.size()), " requested"));
  }
  WARD_RETURN_IF_ERROR(ValidateSpiffeId(uris[0], /*leaf=*/true));
  if (!UriAllowed(role, uris[0], request.caller_identity)) return refuse("uri_sans", uris[0]);
  out.spiffe_id = uris[0];
  return out;
}

}  // namespace ward::pki
