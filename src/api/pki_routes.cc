// PKI routes of VaultHandler (docs/api.md "PKI", docs/pki.md "Route mapping"): Vault's
// pki/... paths on a mount of type "pki", mapped onto pki::PkiEngine.
//
// Two entry points: HandlePkiUnauthenticated serves the CA, CRL, certificate and trust-bundle
// reads that Vault serves without a token (called before Authenticate), and HandlePki serves
// everything else after authentication and authorisation (the paths are ordinary ACL paths).

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "api/handler.h"
#include "api/internal/http_metrics.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "pki/certs.h"
#include "pki/engine.h"
#include "pki/role.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;

namespace {

constexpr std::string_view kMountType = "pki";
constexpr std::string_view kPemChain = "application/pem-certificate-chain";
constexpr std::string_view kMergePatch = "application/merge-patch+json";

// The path under the mount split on '/', without empty segments from leading/trailing slashes
// ("issuer/default/pem" -> {"issuer","default","pem"}).
std::vector<std::string> Segments(std::string_view rest) {
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(core::ToAbsl(rest), '/', absl::SkipEmpty())) {
    out.emplace_back(s);
  }
  return out;
}

bool Is(const std::vector<std::string>& seg, std::initializer_list<std::string_view> want) {
  if (seg.size() != want.size()) return false;
  size_t i = 0;
  for (std::string_view w : want) {
    if (!w.empty() && seg[i] != w) return false;  // "" matches any one segment
    ++i;
  }
  return true;
}

net::HttpResponse Raw(std::string_view content_type, std::string body) {
  net::HttpResponse r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", std::string(content_type));
  r.body = std::move(body);
  return r;
}

// Vault's envelope with mount_type "pki" and the engine's warnings (null when none).
net::HttpResponse PkiEnvelope(const Request& req, json::value data,
                              const std::vector<std::string>& warnings = {}) {
  json::object o;
  o["request_id"] = std::string(req.request_id());
  o["lease_id"] = "";
  o["renewable"] = false;
  o["lease_duration"] = 0;
  o["data"] = std::move(data);
  o["wrap_info"] = nullptr;
  o["warnings"] = warnings.empty() ? json::value(nullptr) : internal::StringsToJson(warnings);
  o["auth"] = nullptr;
  o["mount_type"] = kMountType;
  return internal::JsonResponse(200, o);
}

// For operations that name what they act on in the body or in a write path (a role to issue
// from, an issuer to sign with, a serial to revoke), Vault answers a missing referent with 400
// and a message, not with 404: kNotFound becomes 400 here, keeping the engine's message.
net::HttpResponse WriteError(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kNotFound) {
    return ErrorResponse(400, core::FromAbsl(status.message()));
  }
  return ErrorResponse(status);
}

net::HttpResponse Unsupported() { return ErrorResponse(405, "unsupported operation"); }

json::value UnixOrNull(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return nullptr;
  return absl::ToUnixSeconds(t);
}

json::object IssuerJson(const pki::IssuerInfo& i) {
  json::object o{{"issuer_id", i.issuer_id},
                 {"issuer_name", i.issuer_name},
                 {"state", std::string(pki::IssuerStateName(i.state))},
                 {"is_default", i.is_default},
                 {"certificate", i.certificate},
                 {"ca_chain", internal::StringsToJson(i.ca_chain)},
                 {"key_type", i.key_type},
                 {"key_bits", i.key_bits},
                 {"serial_number", i.serial_number},
                 {"common_name", i.common_name},
                 {"trust_domain", i.trust_domain_id},
                 {"not_before", UnixOrNull(i.not_before)},
                 {"not_after", UnixOrNull(i.not_after)},
                 {"max_path_length", i.path_len},
                 {"latest_leaf_not_after", UnixOrNull(i.latest_leaf_not_after)},
                 {"revoked", false}};
  if (!i.csr.empty()) o["csr"] = i.csr;
  return o;
}

// Vault's `format` parameter of issue, sign, sign-intermediate and root/intermediate
// generation: "pem" (the default), "der" (each certificate, CSR and key field holds the
// base64 of its DER) or "pem_bundle" (the certificate, or CSR, field holds the PEM bundle:
// the private key when returned, the certificate, then, for issue and sign, the CA chain).
enum class OutFormat { kPem, kDer, kPemBundle };

absl::StatusOr<OutFormat> ParseFormat(const json::object& body) {
  auto format = internal::GetString(body, "format");
  if (!format.ok()) return format.status();
  const std::string f = format->value_or("pem");
  if (f == "pem" || f.empty()) return OutFormat::kPem;
  if (f == "der") return OutFormat::kDer;
  if (f == "pem_bundle") return OutFormat::kPemBundle;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid format \"", f, "\": use \"pem\", \"der\" or \"pem_bundle\""));
}

// Base64 of the DER in `pem` (format "der"). kInternal if the engine's own PEM does not decode.
absl::StatusOr<std::string> DerBase64(std::string_view pem) {
  auto der = pki::PemBlockToDer(pem);
  if (!der.ok()) return absl::InternalError("cannot re-encode a PEM block as DER");
  return absl::Base64Escape(core::ToAbsl(der->view()));
}

absl::StatusOr<json::array> DerBase64List(const std::vector<std::string>& pems) {
  json::array out;
  for (const std::string& pem : pems) {
    WARD_ASSIGN_OR_RETURN(std::string b64, DerBase64(pem));
    out.emplace_back(b64);
  }
  return out;
}

// PEM blocks joined into one bundle, each ending with a newline.
std::string PemBundle(std::initializer_list<std::string_view> parts,
                      const std::vector<std::string>& tail = {}) {
  std::string out;
  auto add = [&out](std::string_view p) {
    if (p.empty()) return;
    out.append(p);
    if (out.back() != '\n') out.push_back('\n');
  };
  for (std::string_view p : parts) add(p);
  for (const std::string& p : tail) add(p);
  return out;
}

// Rewrites the PEM fields `cert_fields` (strings) and `list_fields` (arrays of strings) of `o`,
// and private_key, as base64 DER.
absl::Status ToDer(json::object& o, std::initializer_list<std::string_view> cert_fields) {
  for (std::string_view k : cert_fields) {
    json::value* v = o.if_contains(k);
    if (v == nullptr) continue;
    if (v->is_string()) {
      WARD_ASSIGN_OR_RETURN(std::string b64, DerBase64(std::string_view(v->get_string())));
      *v = b64;
    } else if (v->is_array()) {
      std::vector<std::string> pems;
      for (const json::value& e : v->get_array()) pems.emplace_back(e.as_string());
      WARD_ASSIGN_OR_RETURN(json::array ders, DerBase64List(pems));
      *v = std::move(ders);
    }
  }
  return absl::OkStatus();
}

// Data of root/generate and issuers/prepare-next (Vault's field names, plus issuer_id/name).
absl::StatusOr<json::object> GeneratedRootJson(const pki::GeneratedIssuer& g,
                                               OutFormat format = OutFormat::kPem) {
  json::object o{{"certificate", g.issuer.certificate},
                 {"issuing_ca", g.issuer.certificate},
                 {"ca_chain", internal::StringsToJson(g.issuer.ca_chain)},
                 {"serial_number", g.issuer.serial_number},
                 {"expiration", UnixOrNull(g.issuer.not_after)},
                 {"issuer_id", g.issuer.issuer_id},
                 {"issuer_name", g.issuer.issuer_name},
                 {"state", std::string(pki::IssuerStateName(g.issuer.state))}};
  if (g.private_key.has_value()) {
    o["private_key"] = std::string(g.private_key->view());
    o["private_key_type"] = g.private_key_type;
    if (format == OutFormat::kPemBundle) {
      o["certificate"] = PemBundle({g.private_key->view(), g.issuer.certificate});
    }
  }
  if (format == OutFormat::kDer) {
    WARD_RETURN_IF_ERROR(ToDer(o, {"certificate", "issuing_ca", "ca_chain", "private_key"}));
  }
  return o;
}

// Data of issue, sign and sign-intermediate: exactly Vault's fields (vault-api.md 4.8).
absl::StatusOr<json::object> IssuedJson(const pki::IssuedCertificate& c,
                                        OutFormat format = OutFormat::kPem) {
  json::object o{{"certificate", c.certificate},
                 {"issuing_ca", c.issuing_ca},
                 {"ca_chain", internal::StringsToJson(c.ca_chain)},
                 {"serial_number", c.serial_number},
                 {"expiration", c.expiration},
                 {"not_before", c.not_before}};
  if (c.private_key.has_value()) {
    o["private_key"] = std::string(c.private_key->view());
    o["private_key_type"] = c.private_key_type;
  }
  if (format == OutFormat::kPemBundle) {
    std::string_view key = c.private_key.has_value() ? c.private_key->view() : "";
    o["certificate"] = PemBundle({key, c.certificate}, c.ca_chain);
  } else if (format == OutFormat::kDer) {
    WARD_RETURN_IF_ERROR(ToDer(o, {"certificate", "issuing_ca", "ca_chain", "private_key"}));
  }
  return o;
}

// Common fields of root and intermediate generation. `trust_domain` (Ward's parameter:
// "example.org" or "spiffe://example.org"); Vault's uri_sans with one spiffe:// URI is taken as
// the trust domain too.
struct CaParams {
  std::string common_name;
  std::string trust_domain;
  pki::KeySpec key;
  std::string issuer_name;
};

absl::StatusOr<CaParams> ParseCaParams(const json::object& body) {
  CaParams p;
  auto cn = internal::GetString(body, "common_name");
  auto td = internal::GetString(body, "trust_domain");
  auto uris = internal::GetStringList(body, "uri_sans");
  auto key_type = internal::GetString(body, "key_type");
  auto key_bits = internal::GetInt(body, "key_bits");
  auto name = internal::GetString(body, "issuer_name");
  for (const absl::Status& s : {cn.status(), td.status(), uris.status(), key_type.status(),
                                key_bits.status(), name.status()}) {
    if (!s.ok()) return s;
  }
  p.common_name = cn->value_or("");
  if (p.common_name.empty()) return absl::InvalidArgumentError("missing common_name");
  p.trust_domain = td->value_or("");
  if (uris->has_value() && !(*uris)->empty()) {
    if ((*uris)->size() != 1 || !p.trust_domain.empty()) {
      return absl::InvalidArgumentError(
          "a CA takes at most one URI SAN, its trust domain: give trust_domain or one uri_sans");
    }
    p.trust_domain = (**uris)[0];
  }
  auto spec = pki::ParseKeySpec(key_type->value_or("ec"), static_cast<int>(key_bits->value_or(0)));
  if (!spec.ok()) return spec.status();
  p.key = *spec;
  p.issuer_name = name->value_or("");
  return p;
}

absl::StatusOr<pki::RootRequest> ParseRootRequest(const json::object& body, bool exported) {
  WARD_ASSIGN_OR_RETURN(CaParams p, ParseCaParams(body));
  auto ttl = internal::GetDuration(body, "ttl");
  auto path_len = internal::GetInt(body, "max_path_length");
  if (!ttl.ok()) return ttl.status();
  if (!path_len.ok()) return path_len.status();
  pki::RootRequest r;
  r.exported = exported;
  r.common_name = std::move(p.common_name);
  r.trust_domain = std::move(p.trust_domain);
  r.key = p.key;
  if (ttl->has_value()) r.ttl = **ttl;
  r.max_path_length = static_cast<int>(path_len->value_or(-1));
  r.issuer_name = std::move(p.issuer_name);
  WARD_ASSIGN_OR_RETURN(r.not_after, pki::ParseNotAfter(body));
  if (r.not_after.has_value() && ttl->has_value() && **ttl > absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Either ttl or not_after should be provided. Both should not be provided in the same "
        "request.");
  }
  return r;
}

// ":type" of root/intermediate generation. Errors: kInvalidArgument for anything but
// "internal" or "exported" ("kms" and "existing" are Vault features Ward lacks).
absl::StatusOr<bool> ExportedType(std::string_view type) {
  if (type == "exported") return true;
  if (type == "internal") return false;
  return absl::InvalidArgumentError(absl::StrCat("unsupported type \"", core::ToAbsl(type),
                                                 "\": use \"internal\" or \"exported\""));
}

// The identity substituted for {{identity}} in allowed_uri_sans templates (docs/pki.md): the
// AppRole role name for an AppRole login token, the cert role name for a cert login token or
// direct certificate identity, otherwise the token's display name ("root", "token-<name>").
// Only what a login method wrote counts: metadata a token creator chose (auth/token/create
// with meta) is never read, because such tokens carry path auth/token/...
std::string CallerIdentity(const auth::TokenEntry& token) {
  bool login = absl::StartsWith(token.path, "auth/") &&
               !absl::StartsWith(token.path, "auth/token/") && absl::EndsWith(token.path, "/login");
  if (login) {
    auto meta = [&token](const char* key) -> std::string {
      auto it = token.meta.find(key);
      return it == token.meta.end() ? "" : it->second;
    };
    if (token.display_name == "approle" && !meta("role_name").empty()) return meta("role_name");
    if (!meta("cert_name").empty()) return meta("cert_name");
  }
  return token.display_name;
}

// HTTP dates (RFC 9110 IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT".
constexpr char kHttpDate[] = "%a, %d %b %Y %H:%M:%S GMT";

// Conditional GET for the unauthenticated CA and CRL reads (Vault 1.12+): a 200 `r` becomes
// 304 Not Modified with no body when If-Modified-Since is at or after `modified` (to the
// second), and otherwise carries Last-Modified. HTTP dates have one-second resolution, so
// Last-Modified is sent only once the second of `modified` has passed (RFC 9110 8.8.2.2): a
// client can then never hold a date that hides a later change made within the same second.
// An If-Modified-Since that does not parse is ignored (RFC 9110 13.1.3).
net::HttpResponse Conditional(const Request& req, absl::Time modified, absl::Time now,
                              net::HttpResponse r) {
  if (r.status != 200 || modified == absl::InfinitePast()) return r;
  const absl::Time second = absl::FromUnixSeconds(absl::ToUnixSeconds(modified));  // floor
  std::string_view since = req.http.Header("if-modified-since");
  absl::Time client;
  std::string err;
  if (!since.empty() &&
      absl::ParseTime(kHttpDate, core::ToAbsl(since), absl::UTCTimeZone(), &client, &err) &&
      second <= client) {
    net::HttpResponse not_modified;
    not_modified.status = 304;
    not_modified.headers.emplace_back("Last-Modified",
                                      absl::FormatTime(kHttpDate, second, absl::UTCTimeZone()));
    return not_modified;
  }
  if (second + absl::Seconds(1) <= now) {
    r.headers.emplace_back("Last-Modified",
                           absl::FormatTime(kHttpDate, second, absl::UTCTimeZone()));
  }
  return r;
}

bool IsMergePatch(const Request& req) {
  std::string_view ct = req.http.Header("content-type");
  return ct.substr(0, kMergePatch.size()) == kMergePatch;
}

// The unauthenticated reads (Vault's PathsSpecial.Unauthenticated for PKI): GET (or HEAD)
// ca, ca/pem, ca_chain, cert/ca, cert/ca_chain, cert/<serial>, crl, crl/pem,
// issuer/<ref>/{pem,der,json}, issuer/<ref>/crl[/pem|/der], LIST issuers, and Ward's
// bundle and bundle.jwks. nullopt for every other path or method.
std::optional<net::HttpResponse> PublicRoute(const Request& req, pki::PkiEngine& pki,
                                             const std::vector<std::string>& seg, absl::Time now) {
  const std::string& m = req.method;
  if (m == "LIST" && Is(seg, {"issuers"})) {
    std::vector<pki::IssuerInfo> issuers = pki.ListIssuers();
    if (issuers.empty()) return ErrorResponse(404, "");
    json::array keys;
    json::object info;
    for (const pki::IssuerInfo& i : issuers) {
      keys.emplace_back(i.issuer_id);
      info[i.issuer_id] = json::object{{"issuer_name", i.issuer_name},
                                       {"is_default", i.is_default},
                                       {"state", std::string(pki::IssuerStateName(i.state))},
                                       {"serial_number", i.serial_number}};
    }
    return PkiEnvelope(req, json::object{{"keys", keys}, {"key_info", info}});
  }
  if (m != "GET" && m != "HEAD") return std::nullopt;

  // Issuer certificates change only with the issuers; a CRL also on every rebuild.
  const absl::Time issuers_modified = pki.IssuersModified();
  auto cond = [&](net::HttpResponse r) {
    return Conditional(req, issuers_modified, now, std::move(r));
  };
  auto pem_or = [&](absl::StatusOr<std::string> pem) -> net::HttpResponse {
    if (!pem.ok()) return ErrorResponse(pem.status());
    return cond(Raw(kPemChain, *std::move(pem)));
  };
  auto der_of = [&](absl::StatusOr<std::string> pem) -> net::HttpResponse {
    if (!pem.ok()) return ErrorResponse(pem.status());
    auto der = pki::PemToDer(*pem);
    if (!der.ok()) return ErrorResponse(der.status());
    return cond(Raw("application/pkix-cert", *std::move(der)));
  };
  auto crl = [&](std::string_view ref, bool pem) -> net::HttpResponse {
    // The times first: a rebuild between the two reads then only makes the date older.
    auto times = pki.CrlTimes(ref);
    auto body = pem ? pki.CrlPem(ref) : pki.CrlDer(ref);
    if (!body.ok()) return ErrorResponse(body.status());
    net::HttpResponse r =
        Raw(pem ? "application/x-pem-file" : "application/pkix-crl", *std::move(body));
    if (!times.ok()) return r;
    return Conditional(req, std::max(issuers_modified, times->first), now, std::move(r));
  };
  auto cert_json = [&req](absl::StatusOr<std::string> pem, std::string chain) -> net::HttpResponse {
    if (!pem.ok()) return ErrorResponse(pem.status());
    json::object data{
        {"certificate", *pem}, {"revocation_time", 0}, {"revocation_time_rfc3339", ""}};
    if (!chain.empty()) data["ca_chain"] = chain;
    return PkiEnvelope(req, data);
  };

  if (Is(seg, {"ca"})) return der_of(pki.CaPem());
  if (Is(seg, {"ca", "pem"})) return pem_or(pki.CaPem());
  if (Is(seg, {"ca_chain"})) return pem_or(pki.CaChainPem());
  if (Is(seg, {"cert", "ca"})) return cert_json(pki.CaPem(), "");
  if (Is(seg, {"cert", "ca_chain"})) {
    auto chain = pki.CaChainPem();
    return cert_json(chain, chain.ok() ? *chain : "");
  }
  if (Is(seg, {"cert", ""})) {
    auto rec = pki.ReadCertificate(seg[1]);
    if (!rec.ok()) return ErrorResponse(rec.status());
    std::optional<absl::Time> revoked = rec->revocation_time;
    json::object data{
        {"certificate", rec->certificate},
        {"serial_number", rec->serial_number},
        {"issuer_id", rec->issuer_id},
        {"expiration", absl::ToUnixSeconds(rec->not_after)},
        {"revocation_time", revoked ? absl::ToUnixSeconds(*revoked) : 0},
        {"revocation_time_rfc3339", revoked ? core::FormatRfc3339Nanos(*revoked) : ""}};
    return PkiEnvelope(req, data);
  }
  if (Is(seg, {"crl"})) return crl("default", false);
  if (Is(seg, {"crl", "pem"})) return crl("default", true);
  if (Is(seg, {"bundle"})) {
    std::string pem = pki.TrustBundlePem();
    if (pem.empty()) return ErrorResponse(404, "");
    return cond(Raw(kPemChain, std::move(pem)));
  }
  if (Is(seg, {"bundle.jwks"})) return Raw("application/json", pki.TrustBundleJwks());
  if (seg.size() >= 3 && seg[0] == "issuer") {
    const std::string& ref = seg[1];
    if (Is(seg, {"issuer", "", "crl"}) || Is(seg, {"issuer", "", "crl", "der"})) {
      return crl(ref, false);
    }
    if (Is(seg, {"issuer", "", "crl", "pem"})) return crl(ref, true);
    if (seg.size() != 3) return std::nullopt;
    if (seg[2] != "pem" && seg[2] != "der" && seg[2] != "json") return std::nullopt;
    auto issuer = pki.ReadIssuer(ref);
    if (!issuer.ok()) return ErrorResponse(issuer.status());
    // A pending intermediate has no certificate to serve yet.
    if (issuer->certificate.empty()) return ErrorResponse(404, "");
    if (seg[2] == "pem") return cond(Raw(kPemChain, issuer->certificate));
    if (seg[2] == "der") return der_of(issuer->certificate);
    return PkiEnvelope(req, json::object{{"issuer_id", issuer->issuer_id},
                                         {"issuer_name", issuer->issuer_name},
                                         {"certificate", issuer->certificate},
                                         {"ca_chain", internal::StringsToJson(issuer->ca_chain)}});
  }
  return std::nullopt;
}

}  // namespace

std::optional<net::HttpResponse> VaultHandler::HandlePkiUnauthenticated(Request& req) {
  if (req.method != "GET" && req.method != "HEAD" && req.method != "LIST") return std::nullopt;
  auto mount = req.state->mounts->Find(req.path);
  if (!mount || mount->pki == nullptr) return std::nullopt;
  std::optional<net::HttpResponse> r =
      PublicRoute(req, *mount->pki, Segments(mount->rest), clock_.Now());
  if (r && req.method == "HEAD") r->body.clear();
  return r;
}

net::HttpResponse VaultHandler::HandlePki(Request& req, const MountMatch& mount) {
  pki::PkiEngine& pki = *mount.pki;
  const std::vector<std::string> seg = Segments(mount.rest);
  const std::string& m = req.method;
  if (auto r = PublicRoute(req, pki, seg, clock_.Now())) return *std::move(r);
  if (seg.empty()) return ErrorResponse(404, "");

  absl::StatusOr<json::object> body = json::object();
  if (m == "PUT" || m == "PATCH") body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  const std::string rid(req.request_id());

  // ---- Issuers ----------------------------------------------------------------------------
  auto generate_root = [&](std::string_view type, bool prepare_next) -> net::HttpResponse {
    if (m != "PUT") return Unsupported();
    auto exported = prepare_next ? absl::StatusOr<bool>(false) : ExportedType(type);
    if (!exported.ok()) return ErrorResponse(exported.status());
    auto request = ParseRootRequest(*body, *exported);
    if (!request.ok()) return ErrorResponse(request.status());
    auto format = ParseFormat(*body);
    if (!format.ok()) return ErrorResponse(format.status());
    auto g = prepare_next ? pki.PrepareNext(*request) : pki.GenerateRoot(*request);
    if (!g.ok()) return ErrorResponse(g.status());
    spdlog::info("event=pki_root_generated mount={} issuer_id={} prepare_next={} request_id={}",
                 mount.entry->path, g->issuer.issuer_id, prepare_next, rid);
    auto data = GeneratedRootJson(*g, *format);
    if (!data.ok()) return ErrorResponse(data.status());
    return PkiEnvelope(req, *std::move(data));
  };
  if (Is(seg, {"root", "generate", ""})) return generate_root(seg[2], false);
  if (Is(seg, {"issuers", "generate", "root", ""})) return generate_root(seg[3], false);
  if (Is(seg, {"issuers", "prepare-next"})) return generate_root("", true);

  auto generate_intermediate = [&](std::string_view type) -> net::HttpResponse {
    if (m != "PUT") return Unsupported();
    auto exported = ExportedType(type);
    if (!exported.ok()) return ErrorResponse(exported.status());
    auto p = ParseCaParams(*body);
    if (!p.ok()) return ErrorResponse(p.status());
    auto format = ParseFormat(*body);
    if (!format.ok()) return ErrorResponse(format.status());
    pki::IntermediateRequest r;
    r.exported = *exported;
    r.common_name = p->common_name;
    r.trust_domain = p->trust_domain;
    r.key = p->key;
    r.issuer_name = p->issuer_name;
    auto g = pki.GenerateIntermediate(r);
    if (!g.ok()) return ErrorResponse(g.status());
    // Ward has no separate key objects: the pending issuer's id names the key.
    json::object data{{"csr", g->issuer.csr},
                      {"key_id", g->issuer.issuer_id},
                      {"issuer_id", g->issuer.issuer_id}};
    if (g->private_key.has_value()) {
      data["private_key"] = std::string(g->private_key->view());
      data["private_key_type"] = g->private_key_type;
      if (*format == OutFormat::kPemBundle) {
        data["csr"] = PemBundle({g->private_key->view(), g->issuer.csr});
      }
    }
    if (*format == OutFormat::kDer) {
      absl::Status s = ToDer(data, {"csr", "private_key"});
      if (!s.ok()) return ErrorResponse(s);
    }
    return PkiEnvelope(req, data);
  };
  if (Is(seg, {"intermediate", "generate", ""})) return generate_intermediate(seg[2]);
  if (Is(seg, {"issuers", "generate", "intermediate", ""})) return generate_intermediate(seg[3]);

  auto sign_intermediate = [&](std::string issuer_ref) -> net::HttpResponse {
    if (m != "PUT") return Unsupported();
    auto csr = internal::GetString(*body, "csr");
    auto cn = internal::GetString(*body, "common_name");
    auto td = internal::GetString(*body, "trust_domain");
    auto uris = internal::GetStringList(*body, "uri_sans");
    auto ttl = internal::GetDuration(*body, "ttl");
    auto path_len = internal::GetInt(*body, "max_path_length");
    auto ref = internal::GetString(*body, "issuer_ref");
    auto format = ParseFormat(*body);
    for (const absl::Status& s : {csr.status(), cn.status(), td.status(), uris.status(),
                                  ttl.status(), path_len.status(), ref.status(), format.status()}) {
      if (!s.ok()) return ErrorResponse(s);
    }
    pki::SignIntermediateRequest r;
    if (issuer_ref.empty()) issuer_ref = ref->value_or("default");
    r.issuer_ref = issuer_ref;
    r.csr = csr->value_or("");
    if (r.csr.empty()) return ErrorResponse(400, "missing csr");
    r.common_name = cn->value_or("");
    r.trust_domain = td->value_or("");
    if (uris->has_value() && (*uris)->size() == 1 && r.trust_domain.empty()) {
      r.trust_domain = (**uris)[0];
    }
    if (ttl->has_value()) r.ttl = **ttl;
    r.max_path_length = static_cast<int>(path_len->value_or(-1));
    auto issued = pki.SignIntermediate(r);
    if (!issued.ok()) return WriteError(issued.status());
    auto data = IssuedJson(*issued, *format);
    if (!data.ok()) return ErrorResponse(data.status());
    return PkiEnvelope(req, *std::move(data), issued->warnings);
  };
  if (Is(seg, {"root", "sign-intermediate"})) return sign_intermediate("");
  if (Is(seg, {"issuer", "", "sign-intermediate"})) return sign_intermediate(seg[1]);

  if (Is(seg, {"intermediate", "set-signed"})) {
    if (m != "PUT") return Unsupported();
    auto cert = internal::GetString(*body, "certificate");
    if (!cert.ok()) return ErrorResponse(cert.status());
    if (cert->value_or("").empty()) return ErrorResponse(400, "missing certificate");
    auto issuer = pki.SetSignedIntermediate(**cert);
    if (!issuer.ok()) return WriteError(issuer.status());
    return PkiEnvelope(
        req, json::object{{"imported_issuers", json::array{json::value(issuer->issuer_id)}},
                          {"imported_keys", nullptr},
                          {"mapping", json::object{{issuer->issuer_id, issuer->issuer_id}}}});
  }
  if (Is(seg, {"config", "ca"}) || Is(seg, {"issuers", "import", "bundle"})) {
    if (m != "PUT") return Unsupported();
    auto bundle = internal::GetString(*body, "pem_bundle");
    auto name = internal::GetString(*body, "issuer_name");
    if (!bundle.ok()) return ErrorResponse(bundle.status());
    if (!name.ok()) return ErrorResponse(name.status());
    if (bundle->value_or("").empty()) return ErrorResponse(400, "missing pem_bundle");
    auto issuer = pki.ImportIssuer(**bundle, name->value_or(""));
    if (!issuer.ok()) return ErrorResponse(issuer.status());
    spdlog::info("event=pki_issuer_imported mount={} issuer_id={} request_id={}", mount.entry->path,
                 issuer->issuer_id, rid);
    return PkiEnvelope(
        req, json::object{{"imported_issuers", json::array{json::value(issuer->issuer_id)}},
                          {"imported_keys", nullptr},
                          {"mapping", json::object{{issuer->issuer_id, issuer->issuer_id}}}});
  }
  if (Is(seg, {"issuers"})) return Unsupported();  // LIST is a public route
  if (Is(seg, {"config", "issuers"}) || Is(seg, {"root", "replace"})) {
    auto default_json = [&]() -> net::HttpResponse {
      auto d = pki.ReadIssuer("default");
      if (!d.ok() && d.status().code() != absl::StatusCode::kNotFound)
        return ErrorResponse(d.status());
      return PkiEnvelope(req, json::object{{"default", d.ok() ? d->issuer_id : ""},
                                           {"default_follows_latest_issuer", false}});
    };
    if (m == "GET" && seg[0] == "config") return default_json();
    if (m != "PUT") return Unsupported();
    auto ref = internal::GetString(*body, "default");
    if (!ref.ok()) return ErrorResponse(ref.status());
    if (ref->value_or("").empty()) return ErrorResponse(400, "missing default");
    absl::Status s = pki.SetDefaultIssuer(**ref);
    if (!s.ok()) return WriteError(s);
    spdlog::info("event=pki_default_issuer_set mount={} request_id={}", mount.entry->path, rid);
    return default_json();
  }
  if (Is(seg, {"issuer", ""})) {
    const std::string& ref = seg[1];
    if (m == "GET") {
      auto issuer = pki.ReadIssuer(ref);
      if (!issuer.ok()) return ErrorResponse(issuer.status());
      return PkiEnvelope(req, IssuerJson(*issuer));
    }
    if (m == "PUT" || m == "PATCH") {
      auto name = internal::GetString(*body, "issuer_name");
      if (!name.ok()) return ErrorResponse(name.status());
      auto issuer = name->has_value() ? pki.RenameIssuer(ref, **name) : pki.ReadIssuer(ref);
      if (!issuer.ok()) return ErrorResponse(issuer.status());
      return PkiEnvelope(req, IssuerJson(*issuer));
    }
    if (m == "DELETE") {
      auto deleted = pki.DeleteIssuer(ref);
      if (!deleted.ok()) return ErrorResponse(deleted.status());
      if (!deleted->found) return internal::NoContent();  // as Vault: nothing to delete
      spdlog::info("event=pki_issuer_deleted mount={} issuer_id={} was_default={} request_id={}",
                   mount.entry->path, deleted->issuer_id, deleted->was_default, rid);
      std::vector<std::string> warnings;
      if (deleted->was_default) {
        warnings.push_back(absl::StrCat(
            "Deleted issuer ", deleted->issuer_id, " (via issuer_ref ", ref,
            "); this was configured as the default issuer. Operations without an explicit "
            "issuer will not work until a new default is configured."));
      }
      for (const std::string& role : deleted->roles) {
        warnings.push_back(absl::StrCat("role ", role, " refers to the deleted issuer ",
                                        deleted->issuer_id,
                                        " through its issuer_ref and cannot issue until that "
                                        "is updated"));
      }
      if (warnings.empty()) return internal::NoContent();
      return PkiEnvelope(req, nullptr, warnings);
    }
    return Unsupported();
  }
  if (Is(seg, {"issuer", "", "activate"}) || Is(seg, {"issuer", "", "retire"})) {
    if (m != "PUT") return Unsupported();
    const std::string& ref = seg[1];
    absl::Status s;
    if (seg[2] == "activate") {
      s = pki.Activate(ref);
    } else {
      auto force = internal::GetBool(*body, "force");
      if (!force.ok()) return ErrorResponse(force.status());
      s = pki.Retire(ref, force->value_or(false));
    }
    if (!s.ok()) return WriteError(s);
    spdlog::info("event=pki_issuer_{} mount={} request_id={}", seg[2], mount.entry->path, rid);
    auto issuer = pki.ReadIssuer(ref);
    if (!issuer.ok()) return ErrorResponse(issuer.status());
    return PkiEnvelope(req, IssuerJson(*issuer));
  }

  // ---- Roles --------------------------------------------------------------------------------
  if (Is(seg, {"roles"})) {
    if (m != "LIST") return Unsupported();
    std::vector<std::string> roles = pki.ListRoles();
    if (roles.empty()) return ErrorResponse(404, "");
    return PkiEnvelope(req, json::object{{"keys", internal::StringsToJson(roles)}});
  }
  if (Is(seg, {"roles", ""})) {
    const std::string& name = seg[1];
    if (m == "GET") {
      auto role = pki.ReadRole(name);
      if (!role.ok()) return ErrorResponse(role.status());
      return PkiEnvelope(req, pki::RenderRole(*role));
    }
    if (m == "DELETE") {
      absl::Status s = pki.DeleteRole(name);
      return s.ok() ? internal::NoContent() : ErrorResponse(s);
    }
    if (m == "PUT" || m == "PATCH") {
      std::optional<pki::Role> base;
      if (m == "PATCH") {
        if (!IsMergePatch(req)) {
          return ErrorResponse(415, "PATCH requires Content-Type of application/merge-patch+json");
        }
        auto existing = pki.ReadRole(name);
        if (!existing.ok()) return ErrorResponse(existing.status());
        base = *std::move(existing);
      }
      auto role = pki::ParseRole(name, *body, base ? &*base : nullptr);
      if (!role.ok()) return ErrorResponse(role.status());
      absl::Status s = pki.WriteRole(*role);
      if (!s.ok()) return ErrorResponse(s);
      return PkiEnvelope(req, pki::RenderRole(*role));
    }
    return Unsupported();
  }

  // ---- Issuance -----------------------------------------------------------------------------
  auto issue = [&](bool sign, const std::string& issuer_ref,
                   const std::string& role) -> net::HttpResponse {
    if (m != "PUT") return Unsupported();
    auto format = ParseFormat(*body);
    if (!format.ok()) return ErrorResponse(format.status());
    auto request = pki::ParseIssueRequest(*body);
    if (!request.ok()) return ErrorResponse(request.status());
    request->issuer_ref = issuer_ref;
    // Never from the body: the identity is the authenticated caller's.
    if (req.token.has_value()) request->caller_identity = CallerIdentity(*req.token);
    absl::StatusOr<pki::IssuedCertificate> issued;
    const absl::Time start = clock_.Now();
    if (sign) {
      auto csr = internal::GetString(*body, "csr");
      if (!csr.ok()) return ErrorResponse(csr.status());
      if (csr->value_or("").empty()) return ErrorResponse(400, "missing csr");
      issued = pki.Sign(role, **csr, *request);
    } else {
      issued = pki.Issue(role, *request);
    }
    if (!issued.ok()) return WriteError(issued.status());
    metrics_->pki_issue_duration.WithLabels({sign ? "sign" : "issue"})
        .Observe(absl::ToDoubleSeconds(clock_.Now() - start));
    spdlog::info("event=pki_{} mount={} role={} serial={} request_id={}", sign ? "sign" : "issue",
                 mount.entry->path, role, issued->serial_number, rid);
    auto data = IssuedJson(*issued, *format);
    if (!data.ok()) return ErrorResponse(data.status());
    return PkiEnvelope(req, *std::move(data), issued->warnings);
  };
  if (Is(seg, {"issue", ""})) return issue(false, "", seg[1]);
  if (Is(seg, {"sign", ""})) return issue(true, "", seg[1]);
  if (Is(seg, {"issuer", "", "issue", ""})) return issue(false, seg[1], seg[3]);
  if (Is(seg, {"issuer", "", "sign", ""})) return issue(true, seg[1], seg[3]);

  // ---- Records, revocation, CRL, tidy -------------------------------------------------------
  if (Is(seg, {"certs"})) {
    if (m != "LIST") return Unsupported();
    std::vector<std::string> serials = pki.ListCertificates();
    if (serials.empty()) return ErrorResponse(404, "");
    return PkiEnvelope(req, json::object{{"keys", internal::StringsToJson(serials)}});
  }
  if (Is(seg, {"revoke"})) {
    if (m != "PUT") return Unsupported();
    auto serial = internal::GetString(*body, "serial_number");
    auto cert = internal::GetString(*body, "certificate");
    if (!serial.ok()) return ErrorResponse(serial.status());
    if (!cert.ok()) return ErrorResponse(cert.status());
    std::string target = serial->value_or("");
    if (target.empty() && !cert->value_or("").empty()) {
      auto parsed = pki::ParseCertificatePem(**cert);
      if (!parsed.ok()) return ErrorResponse(parsed.status());
      target = pki::SerialColonHex(parsed->get());
    }
    if (target.empty()) return ErrorResponse(400, "missing serial_number or certificate");
    auto when = pki.Revoke(target);
    if (!when.ok()) return WriteError(when.status());
    spdlog::info("event=pki_revoke mount={} serial={} request_id={}", mount.entry->path, target,
                 rid);
    return PkiEnvelope(req,
                       json::object{{"revocation_time", absl::ToUnixSeconds(*when)},
                                    {"revocation_time_rfc3339", core::FormatRfc3339Nanos(*when)},
                                    {"state", "revoked"}});
  }
  if (Is(seg, {"config", "crl"})) {
    if (m == "GET") return PkiEnvelope(req, pki::RenderCrlConfig(pki.GetCrlConfig()));
    if (m != "PUT") return Unsupported();
    auto config = pki::ParseCrlConfig(*body, pki.GetCrlConfig());
    if (!config.ok()) return ErrorResponse(config.status());
    auto stored = pki.SetCrlConfig(*config);
    if (!stored.ok()) return ErrorResponse(stored.status());
    spdlog::info("event=pki_crl_config mount={} auto_rebuild={} disable={} request_id={}",
                 mount.entry->path, stored->auto_rebuild, stored->disable, rid);
    return PkiEnvelope(req, pki::RenderCrlConfig(*stored));
  }
  if (Is(seg, {"crl", "rotate"})) {
    if (m != "GET" && m != "PUT") return Unsupported();
    absl::Status s = pki.RebuildCrls();
    if (!s.ok()) return ErrorResponse(s);
    return PkiEnvelope(req, json::object{{"success", true}});
  }
  if (Is(seg, {"tidy"})) {
    if (m != "PUT") return Unsupported();
    auto cert_store = internal::GetBool(*body, "tidy_cert_store");
    auto revoked = internal::GetBool(*body, "tidy_revoked_certs");
    auto buffer = internal::GetDuration(*body, "safety_buffer");
    for (const absl::Status& s : {cert_store.status(), revoked.status(), buffer.status()}) {
      if (!s.ok()) return ErrorResponse(s);
    }
    absl::Duration safety = buffer->value_or(absl::Hours(72));  // Vault's default
    if (safety < absl::ZeroDuration())
      return ErrorResponse(400, "safety_buffer must not be negative");
    json::object data{{"tidy_cert_store", cert_store->value_or(false)},
                      {"tidy_revoked_certs", revoked->value_or(false)},
                      {"safety_buffer", absl::ToInt64Seconds(safety)},
                      {"cert_store_deleted_count", 0},
                      {"revoked_cert_deleted_count", 0}};
    if (!cert_store->value_or(false) && !revoked->value_or(false)) {
      return PkiEnvelope(req, data,
                         {"No targets to tidy; specify tidy_cert_store=true or "
                          "tidy_revoked_certs=true to start a tidy operation."});
    }
    // Ward keeps one record per certificate (revoked or not), so either flag tidies both.
    auto result = pki.Tidy(safety);
    if (!result.ok()) return ErrorResponse(result.status());
    data["cert_store_deleted_count"] = result->certs_deleted;
    data["revoked_cert_deleted_count"] = result->revoked_deleted;
    spdlog::info("event=pki_tidy mount={} deleted={} revoked_deleted={} request_id={}",
                 mount.entry->path, result->certs_deleted, result->revoked_deleted, rid);
    return PkiEnvelope(req, data);
  }

  return ErrorResponse(
      404, absl::StrCat("no handler for route \"", req.path, "\". route entry not found."));
}

}  // namespace ward::api
