#pragma once

// PKI roles: the parameters of `pki/roles/:name` (Vault's names and, where Ward differs, Ward's
// defaults), their parsing from a request body, their rendering for GET, and the name checks
// every issue/sign request passes. Also the parsing of issue/sign request bodies, so the API
// layer maps a Vault route onto the engine without knowing the parameter rules.
//
// Plain values and free functions: thread-compatible.

#include <boost/json/object.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pki/certs.h"

namespace ward::pki {

// What happens when a leaf's notAfter would pass its issuer's (Vault's leaf_not_after_behavior).
enum class NotAfterBehavior {
  kTruncate,  // clamp to the issuer's notAfter (Ward's default)
  kErr,       // refuse the request (Vault's default)
};

// One role. Defaults are Ward's: an X509-SVID profile (EC P-256, no CN required, 1h / 24h).
struct Role {
  std::string name;

  // URI SANs the role allows, as globs ('*' matches any run of characters, '/' included, as in
  // Vault). With allowed_uri_sans_template, "{{identity}}" in a pattern stands for the
  // caller's identity (IssueRequest::caller_identity, e.g. the AppRole role name); a pattern
  // with the template never matches when the caller has no identity.
  std::vector<std::string> allowed_uri_sans;
  bool allowed_uri_sans_template = false;

  // DNS names (common_name, alt_names), with Vault's semantics.
  std::vector<std::string> allowed_domains;
  bool allow_subdomains = false;    // "a.b.example.org" under "example.org"
  bool allow_bare_domains = false;  // "example.org" itself
  bool allow_glob_domains = false;  // allowed_domains entries with '*' are globs
  bool allow_any_name = false;      // any DNS name / CN
  bool allow_localhost = true;      // "localhost" and "localdomain"
  bool enforce_hostnames = true;    // DNS names must be hostnames (or "*." wildcards)
  bool allow_ip_sans = true;        // ip_sans allowed (any address)
  bool require_cn = false;          // Ward default: SVIDs need no CN (Vault: true)
  bool use_csr_common_name = true;  // sign: take the CN from the CSR when none is given
  bool use_csr_sans = true;         // sign: take the CSR's SANs too

  absl::Duration ttl = absl::Hours(1);       // default lifetime of a leaf
  absl::Duration max_ttl = absl::Hours(24);  // longer requests are capped to this (as Vault)
  NotAfterBehavior not_after_behavior = NotAfterBehavior::kTruncate;

  // Keys the role issues (issue) or accepts (sign). key_type "any" accepts every supported
  // key on sign and is refused by issue.
  std::string key_type = "ec";
  int key_bits = 256;

  bool server_flag = true;             // extendedKeyUsage serverAuth
  bool client_flag = true;             // extendedKeyUsage clientAuth
  bool no_store = false;               // do not record issued certificates (they cannot be revoked)
  std::string issuer_ref = "default";  // issuer id, name, or "default"
};

// Builds role `name` from request parameters, starting from `base` (nullptr: Ward's defaults,
// for POST roles/:name, which replaces the role as Vault does; the existing role: for PATCH).
// Values may be typed JSON or strings as Vault accepts them: booleans "true"/"false",
// durations as seconds or Go duration text ("90s", "1h"), lists as arrays or comma-separated
// strings. Unknown parameters are ignored (as Vault).
// Errors: kInvalidArgument naming the parameter for a mistyped value, an unknown key_type, a
//         key_bits the type does not support, ttl above max_ttl, a negative duration, an
//         invalid role name, or an allowed_uri_sans entry that is not a spiffe:// pattern.
absl::StatusOr<Role> ParseRole(std::string_view name, const boost::json::object& params,
                               const Role* base);
// The same from a string map (form parameters, CLI key=value pairs).
absl::StatusOr<Role> ParseRole(std::string_view name,
                               const std::map<std::string, std::string>& params, const Role* base);

// The role as Vault's GET pki/roles/:name `data` renders it (durations in seconds, lists as
// arrays, leaf_not_after_behavior as "truncate"/"err"). Role names are not included.
boost::json::object RenderRole(const Role& role);

// The storage form (JSON text) of a role, and its parser.
// Errors (parse): kDataLoss if the text is not a stored role.
std::string SerializeRole(const Role& role);
absl::StatusOr<Role> DeserializeRole(std::string_view text);

// Whether `name` is a valid role name (Vault's: word characters, with '-', '.', '@' inside).
bool ValidRoleName(std::string_view name);

// The parameters of issue/:role and sign/:role that shape the certificate.
struct IssueRequest {
  std::string common_name;
  std::vector<std::string> alt_names;  // DNS names
  std::vector<std::string> ip_sans;
  std::vector<std::string> uri_sans;  // an SVID has exactly one, spiffe://<td>/<path>
  std::optional<absl::Duration> ttl;  // nullopt: the role's ttl
  // Vault's not_after (RFC 3339): an exact notAfter instead of a ttl (never both).
  std::optional<absl::Time> not_after;
  bool exclude_cn_from_sans = false;  // otherwise a hostname CN is also added as a DNS SAN
  // Overrides the role's issuer_ref (the pki/issuer/:ref/issue/:role route form).
  std::string issuer_ref;
  // Who is asking, substituted for {{identity}} in allowed_uri_sans templates. Set by the API
  // layer from the caller's authentication (never from the request body).
  std::string caller_identity;
};

// Parses the body of issue/sign (common_name, alt_names, ip_sans, uri_sans, ttl, not_after,
// exclude_cn_from_sans); the `csr` and `format` parameters are the caller's to read. Sets
// neither issuer_ref nor caller_identity.
// Errors: kInvalidArgument naming the parameter for a mistyped value, a bad ttl, a not_after
//         that is not RFC 3339, or both ttl and not_after (Vault's message).
absl::StatusOr<IssueRequest> ParseIssueRequest(const boost::json::object& params);

// The names a certificate will carry after the role's checks.
struct CheckedNames {
  std::string common_name;
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;
  std::string spiffe_id;  // the one URI SAN
};

// Checks every requested name against `role` and assembles the certificate's names. `csr` is
// the CSR's names for sign (the CSR's CN and SANs are used per use_csr_common_name /
// use_csr_sans, and checked as well), nullptr for issue.
// Errors: kInvalidArgument with a message naming the parameter, the value and the role, e.g.
//         "uri_sans spiffe://x/y not allowed by role web", "common_name a.b not allowed by role
//         web", "ip_sans not allowed by role web"; "common_name is required by role web";
//         "an X509-SVID needs exactly one URI SAN (spiffe://...): none requested" / "2
//         requested"; a SPIFFE ID syntax error.
absl::StatusOr<CheckedNames> CheckNames(const Role& role, const IssueRequest& request,
                                        const Names* csr);

// Parses Vault's not_after parameter of issue, sign and root generation: RFC 3339 with a
// time zone ("2030-01-02T03:04:05Z", "9999-12-31T23:59:59Z"); nullopt if absent or "".
// Errors: kInvalidArgument "invalid not_after: ..." for another type or format.
absl::StatusOr<std::optional<absl::Time>> ParseNotAfter(const boost::json::object& params);

// pki/config/crl, with Vault's fields and defaults. The duration fields keep the text the
// client gave ("72h", "3600"), which GET returns as Vault does; `*_duration` is its value.
struct CrlConfig {
  std::string expiry = "72h";  // CRL validity: nextUpdate - thisUpdate
  absl::Duration expiry_duration = absl::Hours(72);
  bool disable = false;       // CRLs are still published, but empty (Vault: "disables building")
  bool auto_rebuild = false;  // rebuild CRLs before they expire (PkiEngine::RebuildDueCrls)
  std::string auto_rebuild_grace_period = "12h";  // rebuild once nextUpdate is this close
  absl::Duration auto_rebuild_grace_period_duration = absl::Hours(12);
  bool enable_delta = false;                   // true is refused: Ward builds no delta CRLs
  std::string delta_rebuild_interval = "15m";  // stored and validated as Vault does
  absl::Duration delta_rebuild_interval_duration = absl::Minutes(15);
  bool ocsp_disable = false;        // stored only: Ward has no OCSP responder
  std::string ocsp_expiry = "12h";  // stored only
};

// Applies the parameters present in `params` (POST pki/config/crl) onto `base`, as Vault's
// update does: absent parameters keep their value. Durations are seconds or Go duration text.
// Errors: kInvalidArgument with Vault's messages: "given expiry could not be decoded: ...",
//         the same for auto_rebuild_grace_period / delta_rebuild_interval / ocsp_expiry, a
//         non-positive expiry or a negative duration, a grace period (delta interval) not
//         strictly shorter than expiry while auto_rebuild is set, enable_delta true (not
//         supported), and a mistyped boolean.
absl::StatusOr<CrlConfig> ParseCrlConfig(const boost::json::object& params, const CrlConfig& base);
// GET pki/config/crl `data`: every field with Vault's names (durations as text).
boost::json::object RenderCrlConfig(const CrlConfig& config);
// The storage form and its parser. Errors (parse): kDataLoss if the text is not a config.
std::string SerializeCrlConfig(const CrlConfig& config);
absl::StatusOr<CrlConfig> DeserializeCrlConfig(std::string_view text);

// Whether `text` matches the glob `pattern` ('*' matches any run of characters, including
// none; no other metacharacters), as Vault's glob matching.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace ward::pki
