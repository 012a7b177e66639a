// PKI routes of VaultHandler (docs/api.md "PKI", docs/pki.md "Route mapping"): Vault's
// pki/... paths on a mount of type "pki", mapped onto pki::PkiEngine.
//
// Two entry points: HandlePkiUnauthenticated serves the CA, CRL, certificate and trust-bundle
// reads that Vault serves without a token (called before Authenticate), and HandlePki serves
// everything else after authentication and authorisation (the paths are ordinary ACL paths).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Data of root/generate and issuers/prepare-next (Vault's field names, plus issuer_id/name).
json::object GeneratedRootJson(const pki::GeneratedIssuer& g) {
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
  }
  return o;
}

// Data of issue, sign and sign-intermediate: exactly Vault's fields (vault-api.md 4.8).
json::object IssuedJson(const pki::IssuedCertificate& c) {
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

bool IsMergePatch(const Request& req) {
  std::string_view ct = req.http.Header("content-type");
  return ct.substr(0, kMergePatch.size()) == kMergePatch;
}

// The unauthenticated reads (Vault's PathsSpecial.Unauthenticated for PKI): GET (or HEAD)
// ca, ca/pem, ca_chain, cert/ca, cert/ca_chain, cert/<serial>, crl, crl/pem,
// issuer/<ref>/{pem,der,json}, issuer/<ref>/crl[/pem|/der], LIST issuers, and Ward's
// bundle and bundle.jwks. nullopt for every other path or method.
std::optional<net::HttpResponse> PublicRoute(const Request& req, pki::PkiEngine& pki,
                                             const std::vector<std::string>& seg) {
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

  auto pem_or = [](absl::StatusOr<std::string> pem) -> net::HttpResponse {
    if (!pem.ok()) return ErrorResponse(pem.status());
    return Raw(kPemChain, *std::move(pem));
  };
  auto der_of = [](absl::StatusOr<std::string> pem) -> net::HttpResponse {
    if (!pem.ok()) return ErrorResponse(pem.status());
    auto der = pki::PemToDer(*pem);
    if (!der.ok()) return ErrorResponse(der.status());
    return Raw("application/pkix-cert", *std::move(der));
  };
  auto crl = [](absl::StatusOr<std::string> body, bool pem) -> net::HttpResponse {
    if (!body.ok()) return ErrorResponse(body.status());
    return Raw(pem ? "application/x-pem-file" : "application/pkix-crl", *std::move(body));
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
  if (Is(seg, {"crl"})) return crl(pki.CrlDer(), false);
  if (Is(seg, {"crl", "pem"})) return crl(pki.CrlPem(), true);
  if (Is(seg, {"bundle"})) {
    std::string pem = pki.TrustBundlePem();
    if (pem.empty()) return ErrorResponse(404, "");
    return Raw(kPemChain, std::move(pem));
  }
  if (Is(seg, {"bundle.jwks"})) return Raw("application/json", pki.TrustBundleJwks());
  if (seg.size() >= 3 && seg[0] == "issuer") {
    const std::string& ref = seg[1];
    if (Is(seg, {"issuer", "", "crl"}) || Is(seg, {"issuer", "", "crl", "der"})) {
      return crl(pki.CrlDer(ref), false);
    }
    if (Is(seg, {"issuer", "", "crl", "pem"})) return crl(pki.CrlPem(ref), true);
    if (seg.size() != 3) return std::nullopt;
    if (seg[2] != "pem" && seg[2] != "der" && seg[2] != "json") return std::nullopt;
    auto issuer = pki.ReadIssuer(ref);
    if (!issuer.ok()) return ErrorResponse(issuer.status());
    // A pending intermediate has no certificate to serve yet.
    if (issuer->certificate.empty()) return ErrorResponse(404, "");
    if (seg[2] == "pem") return Raw(kPemChain, issuer->certificate);
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
  std::optional<net::HttpResponse> r = PublicRoute(req, *mount->pki, Segments(mount->rest));
  if (r && req.method == "HEAD") r->body.clear();
  return r;
}

net::HttpResponse VaultHandler::HandlePki(Request& req, const MountMatch& mount) {
  pki::PkiEngine& pki = *mount.pki;
  const std::vector<std::string> seg = Segments(mount.rest);
  const std::string& m = req.method;
  if (auto r = PublicRoute(req, pki, seg)) return *std::move(r);
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
    auto g = prepare_next ? pki.PrepareNext(*request) : pki.GenerateRoot(*request);
    if (!g.ok()) return ErrorResponse(g.status());
    spdlog::info("event=pki_root_generated mount={} issuer_id={} prepare_next={} request_id={}",
                 mount.entry.path, g->issuer.issuer_id, prepare_next, rid);
    return PkiEnvelope(req, GeneratedRootJson(*g));
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
    for (const absl::Status& s : {csr.status(), cn.status(), td.status(), uris.status(),
                                  ttl.status(), path_len.status(), ref.status()}) {
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
    return PkiEnvelope(req, IssuedJson(*issued), issued->warnings);
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
    spdlog::info("event=pki_issuer_imported mount={} issuer_id={} request_id={}", mount.entry.path,
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
    spdlog::info("event=pki_default_issuer_set mount={} request_id={}", mount.entry.path, rid);
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
      return ErrorResponse(405,
                           "deleting an issuer is not supported: take it out of the trust "
                           "bundle with pki/issuer/:ref/retire");
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
    spdlog::info("event=pki_issuer_{} mount={} request_id={}", seg[2], mount.entry.path, rid);
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
    auto format = internal::GetString(*body, "format");
    if (!format.ok()) return ErrorResponse(format.status());
    if (format->value_or("pem") != "pem") {
      return ErrorResponse(
          400, absl::StrCat("format \"", **format, "\" is not supported: Ward returns \"pem\""));
    }
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
                 mount.entry.path, role, issued->serial_number, rid);
    return PkiEnvelope(req, IssuedJson(*issued), issued->warnings);
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
    spdlog::info("event=pki_revoke mount={} serial={} request_id={}", mount.entry.path, target,
                 rid);
    return PkiEnvelope(req,
                       json::object{{"revocation_time", absl::ToUnixSeconds(*when)},
                                    {"revocation_time_rfc3339", core::FormatRfc3339Nanos(*when)},
                                    {"state", "revoked"}});
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
                 mount.entry.path, result->certs_deleted, result->revoked_deleted, rid);
    return PkiEnvelope(req, data);
  }

  return ErrorResponse(
      404, absl::StrCat("no handler for route \"", req.path, "\". route entry not found."));
}

}  // namespace ward::api
