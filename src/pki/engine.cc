#include "pki/engine.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "crypto/random.h"

namespace ward::pki {

namespace json = boost::json;
using crypto::EvpPkeyPtr;
using crypto::X509Ptr;

namespace internal {

// One issuer; immutable once built (a change makes a new entry).
struct IssuerEntry {
  std::string id;
  std::string name;
  IssuerState state = IssuerState::kActive;
  std::shared_ptr<X509> cert;        // null while pending
  std::string cert_pem;              // "" while pending
  std::vector<std::string> parents;  // PEM chain above this certificate
  std::shared_ptr<EVP_PKEY> key;
  KeySpec spec;
  std::string csr_pem;  // pending intermediates
};

struct CertIndexEntry {
  std::string issuer_id;
  absl::Time not_after;
  std::optional<absl::Time> revocation_time;
};

struct CrlEntry {
  uint64_t number = 0;
  std::string der;
  std::string pem;
  absl::Time this_update = absl::InfinitePast();
  absl::Time next_update = absl::InfinitePast();  // InfinitePast if the CRL has none
};

}  // namespace internal

struct PkiEngine::Snapshot {
  std::map<std::string, std::shared_ptr<const IssuerEntry>> issuers;  // by id
  std::string default_id;
  uint64_t sequence = 0;
  std::string bundle_pem;
  std::vector<std::string> bundle_jwks;  // one compact JWK per bundle certificate
  // When this snapshot replaced the previous one (Load: when it was loaded). Not persisted:
  // after a restart everything counts as modified at load, which only costs a full response.
  absl::Time modified = absl::InfinitePast();
};

namespace {

constexpr int64_t kFormatVersion = 1;
constexpr char kConfigKey[] = "config";
constexpr char kIssuerPrefix[] = "issuer/";
constexpr char kRolePrefix[] = "role/";
constexpr char kCertPrefix[] = "certs/";
constexpr char kCrlPrefix[] = "crl/";
constexpr char kCrlConfigKey[] = "crl_config";

absl::Time AsnTime(const ASN1_TIME* t) {
  if (t == nullptr) return absl::InfinitePast();
  struct tm parts {};
  if (ASN1_TIME_to_tm(t, &parts) != 1) return absl::InfinitePast();
  return absl::FromCivil(absl::CivilSecond(parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                                           parts.tm_hour, parts.tm_min, parts.tm_sec),
                         absl::UTCTimeZone());
}

void SetCrlTimes(X509_CRL* crl, internal::CrlEntry& e) {
  e.this_update = AsnTime(X509_CRL_get0_lastUpdate(crl));
  e.next_update = AsnTime(X509_CRL_get0_nextUpdate(crl));
}

std::shared_ptr<X509> Share(X509Ptr cert) {
  return std::shared_ptr<X509>(cert.release(), X509_free);
}
std::shared_ptr<EVP_PKEY> Share(EvpPkeyPtr key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
}

// Storage keys use '-' between serial bytes, as Vault does.
std::string SerialKey(std::string_view colon_serial) {
  return absl::StrReplaceAll(core::ToAbsl(colon_serial), {{":", "-"}});
}

IssuerState ParseState(std::string_view s, bool& ok) {
  ok = true;
  if (s == "pending") return IssuerState::kPending;
  if (s == "published") return IssuerState::kPublished;
  if (s == "active") return IssuerState::kActive;
  if (s == "retired") return IssuerState::kRetired;
  ok = false;
  return IssuerState::kRetired;
}

bool IsSelfSigned(X509* cert) { return X509_check_issued(cert, cert) == X509_V_OK; }

absl::Status CheckIssuerName(std::string_view name) {
  if (name.empty()) return absl::OkStatus();
  if (name == "default" || name.size() > 128) {
    return absl::InvalidArgumentError("invalid issuer_name \"" + std::string(name) + "\"");
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return absl::InvalidArgumentError("invalid issuer_name \"" + std::string(name) +
                                        "\": only letters, digits, '-' and '_'");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> TrustDomainSans(std::string_view trust_domain) {
  if (trust_domain.empty()) return std::vector<std::string>{};
  std::string id = absl::StrCat("spiffe://", core::ToAbsl(trust_domain));
  if (trust_domain.substr(0, 9) == "spiffe://") id = std::string(trust_domain);
  WARD_RETURN_IF_ERROR(ValidateSpiffeId(id, /*leaf=*/false));
  return std::vector<std::string>{id};
}

absl::StatusOr<std::string> SerializeIssuer(const internal::IssuerEntry& e) {
  json::array parents;
  for (const std::string& p : e.parents) parents.emplace_back(p);
  WARD_ASSIGN_OR_RETURN(core::SecureBytes pem, PrivateKeyToPem(e.key.get()));
  std::string key_pem(pem.view());
  json::object o{{"version", kFormatVersion},
                 {"id", e.id},
                 {"name", e.name},
                 {"state", IssuerStateName(e.state)},
                 {"certificate", e.cert_pem},
                 {"parents", std::move(parents)},
                 {"key", key_pem},
                 {"csr", e.csr_pem}};
  core::SecureZero(key_pem);
  std::string out = json::serialize(o);
  json::string& stored_key = o["key"].as_string();
  core::SecureZero(stored_key.data(), stored_key.size());
  return out;
}

absl::StatusOr<std::shared_ptr<const internal::IssuerEntry>> ParseIssuer(std::string_view text) {
  const absl::Status bad = absl::DataLossError("malformed pki issuer in storage");
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return bad;
  const json::object& o = root.get_object();
  auto str = [&](std::string_view k) -> const json::string* {
    const json::value* v = o.if_contains(k);
    return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
  };
  const json::value* version = o.if_contains("version");
  const json::value* parents = o.if_contains("parents");
  const json::string *id = str("id"), *name = str("name"), *state = str("state"),
                     *cert = str("certificate"), *key = str("key"), *csr = str("csr");
  if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion ||
      id == nullptr || name == nullptr || state == nullptr || cert == nullptr || key == nullptr ||
      csr == nullptr || parents == nullptr || !parents->is_array()) {
    return bad;
  }
  auto e = std::make_shared<internal::IssuerEntry>();
  e->id = std::string(*id);
  e->name = std::string(*name);
  bool ok = false;
  e->state = ParseState(*state, ok);
  if (!ok) return bad;
  e->cert_pem = std::string(*cert);
  e->csr_pem = std::string(*csr);
  for (const json::value& p : parents->get_array()) {
    if (!p.is_string()) return bad;
    e->parents.emplace_back(p.get_string());
  }
  absl::StatusOr<EvpPkeyPtr> parsed_key =
      ParsePrivateKeyPem(std::string_view(key->data(), key->size()));
  if (!parsed_key.ok()) return bad;
  absl::StatusOr<KeySpec> spec = KeySpecOf(parsed_key->get());
  if (!spec.ok()) return bad;
  e->spec = *spec;
  e->key = Share(*std::move(parsed_key));
  if (e->state != IssuerState::kPending) {
    absl::StatusOr<X509Ptr> c = ParseCertificatePem(e->cert_pem);
    if (!c.ok()) return bad;
    e->cert = Share(*std::move(c));
  }
  return std::shared_ptr<const internal::IssuerEntry>(std::move(e));
}

std::string SerializeCert(const std::string& serial, const std::string& pem,
                          const internal::CertIndexEntry& c) {
  json::object o{{"version", kFormatVersion},
                 {"serial_number", serial},
                 {"certificate", pem},
                 {"issuer_id", c.issuer_id},
                 {"not_after", absl::ToUnixSeconds(c.not_after)}};
  if (c.revocation_time.has_value()) {
    o["revocation_time"] = absl::ToUnixNanos(*c.revocation_time);
  } else {
    o["revocation_time"] = nullptr;
  }
  return json::serialize(o);
}

absl::StatusOr<std::pair<CertRecord, internal::CertIndexEntry>> ParseCert(std::string_view text) {
  const absl::Status bad = absl::DataLossError("malformed pki certificate record in storage");
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return bad;
  const json::object& o = root.get_object();
  const json::value* version = o.if_contains("version");
  const json::value* serial = o.if_contains("serial_number");
  const json::value* cert = o.if_contains("certificate");
  const json::value* issuer = o.if_contains("issuer_id");
  const json::value* not_after = o.if_contains("not_after");
  const json::value* revoked = o.if_contains("revocation_time");
  if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion ||
      serial == nullptr || !serial->is_string() || cert == nullptr || !cert->is_string() ||
      issuer == nullptr || !issuer->is_string() || not_after == nullptr || !not_after->is_int64() ||
      revoked == nullptr || !(revoked->is_null() || revoked->is_int64())) {
    return bad;
  }
  CertRecord record;
  internal::CertIndexEntry index;
  record.serial_number = std::string(serial->get_string());
  record.certificate = std::string(cert->get_string());
  record.issuer_id = index.issuer_id = std::string(issuer->get_string());
  record.not_after = index.not_after = absl::FromUnixSeconds(not_after->get_int64());
  if (revoked->is_int64()) {
    record.revocation_time = index.revocation_time = absl::FromUnixNanos(revoked->get_int64());
  }
  return std::make_pair(std::move(record), std::move(index));
}

std::string SerializeCrl(const internal::CrlEntry& crl) {
  json::object o{{"version", kFormatVersion},
                 {"number", crl.number},
                 {"der", absl::Base64Escape(core::ToAbsl(crl.der))}};
  return json::serialize(o);
}

absl::StatusOr<std::shared_ptr<const internal::CrlEntry>> ParseCrl(std::string_view text) {
  const absl::Status bad = absl::DataLossError("malformed pki CRL in storage");
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return bad;
  const json::object& o = root.get_object();
  const json::value* number = o.if_contains("number");
  const json::value* der = o.if_contains("der");
  if (number == nullptr || !(number->is_uint64() || number->is_int64()) || der == nullptr ||
      !der->is_string()) {
    return bad;
  }
  auto e = std::make_shared<internal::CrlEntry>();
  e->number =
      number->is_uint64() ? number->get_uint64() : static_cast<uint64_t>(number->get_int64());
  std::string raw;
  if (!absl::Base64Unescape(absl::string_view(der->get_string().data(), der->get_string().size()),
                            &raw)) {
    return bad;
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(raw.data());
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(raw.size())));
  if (crl == nullptr) return bad;
  absl::StatusOr<std::string> pem = CrlToPem(crl.get());
  if (!pem.ok()) return bad;
  e->der = std::move(raw);
  e->pem = *std::move(pem);
  SetCrlTimes(crl.get(), *e);
  return std::shared_ptr<const internal::CrlEntry>(std::move(e));
}

// Every certificate of the trust bundle, in a stable order: published and active issuers by
// notBefore then id, each followed by the self-signed top of its chain when that root is not an
// issuer here. Deduplicated by DER.
std::vector<X509Ptr> BundleCertificates(
    const std::map<std::string, std::shared_ptr<const internal::IssuerEntry>>& issuers) {
  std::vector<const internal::IssuerEntry*> members;
  std::set<std::string> local_ders;
  for (const auto& [id, e] : issuers) {
    if (e->cert == nullptr) continue;
    absl::StatusOr<std::string> der = CertificateToDer(e->cert.get());
    if (der.ok()) local_ders.insert(*der);
    if (e->state == IssuerState::kPublished || e->state == IssuerState::kActive) {
      members.push_back(e.get());
    }
  }
  std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
    absl::Time na = NotBefore(a->cert.get()), nb = NotBefore(b->cert.get());
    return na != nb ? na < nb : a->id < b->id;
  });
  std::vector<X509Ptr> out;
  std::set<std::string> seen;
  auto add = [&](X509* cert) {
    absl::StatusOr<std::string> der = CertificateToDer(cert);
    if (!der.ok() || !seen.insert(*der).second) return;
    out.push_back(CopyCertificate(cert));
  };
  for (const internal::IssuerEntry* e : members) {
    add(e->cert.get());
    if (e->parents.empty()) continue;
    absl::StatusOr<X509Ptr> top = ParseCertificatePem(e->parents.back());
    if (!top.ok() || !IsSelfSigned(top->get())) continue;
    absl::StatusOr<std::string> der = CertificateToDer(top->get());
    if (der.ok() && local_ders.count(*der) == 0) add(top->get());
  }
  return out;
}

}  // namespace

std::string_view IssuerStateName(IssuerState state) {
  switch (state) {
    case IssuerState::kPending:
      return "pending";
    case IssuerState::kPublished:
      return "published";
    case IssuerState::kActive:
      return "active";
    case IssuerState::kRetired:
      return "retired";
  }
  return "retired";
}

PkiEngine::PkiEngine(barrier::Barrier& barrier, core::Clock& clock, std::string prefix,
                     PkiOptions options)
    : barrier_(barrier),
      clock_(clock),
      prefix_(std::move(prefix)),
      options_(options),
      snapshot_(std::make_shared<const Snapshot>()) {
  crl_config_.expiry = core::FormatGoDuration(options_.crl_expiry);
  crl_config_.expiry_duration = options_.crl_expiry;
}

PkiEngine::~PkiEngine() = default;

absl::StatusOr<std::unique_ptr<PkiEngine>> PkiEngine::Create(barrier::Barrier& barrier,
                                                             core::Clock& clock,
                                                             std::string storage_prefix,
                                                             PkiOptions options) {
  std::unique_ptr<PkiEngine> engine(
      new PkiEngine(barrier, clock, std::move(storage_prefix), options));
  WARD_RETURN_IF_ERROR(engine->Load());
  return engine;
}

absl::Status PkiEngine::Load() {
  auto list = [&](const char* sub) -> absl::StatusOr<std::vector<std::string>> {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier_.List(Key(sub), "", 0));
    return page.keys;
  };
  auto snap = std::make_shared<Snapshot>();
  absl::StatusOr<std::string> config = barrier_.Get(Key(kConfigKey));
  if (config.ok()) {
    json::error_code ec;
    json::value root = json::parse(*config, ec);
    const json::value* def = root.is_object() ? root.get_object().if_contains("default") : nullptr;
    const json::value* seq = root.is_object() ? root.get_object().if_contains("sequence") : nullptr;
    if (ec || def == nullptr || !def->is_string() || seq == nullptr ||
        !(seq->is_int64() || seq->is_uint64())) {
      return absl::DataLossError("malformed pki config in storage");
    }
    snap->default_id = std::string(def->get_string());
    snap->sequence = seq->is_uint64() ? seq->get_uint64() : static_cast<uint64_t>(seq->get_int64());
  } else if (config.status().code() != absl::StatusCode::kNotFound) {
    return config.status();
  }
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> issuer_keys, list(kIssuerPrefix));
  for (const std::string& key : issuer_keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    WARD_ASSIGN_OR_RETURN(std::shared_ptr<const IssuerEntry> e, ParseIssuer(text));
    core::SecureZero(text);
    snap->issuers[e->id] = std::move(e);
  }
  for (X509Ptr& cert : BundleCertificates(snap->issuers)) {
    absl::StatusOr<std::string> pem = CertificateToPem(cert.get());
    absl::StatusOr<std::string> jwk = SpiffeJwk(cert.get());
    if (pem.ok()) snap->bundle_pem += *pem;
    if (jwk.ok()) snap->bundle_jwks.push_back(*jwk);
  }

  std::map<std::string, Role, std::less<>> roles;
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> role_keys, list(kRolePrefix));
  for (const std::string& key : role_keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    WARD_ASSIGN_OR_RETURN(Role role, DeserializeRole(text));
    roles[role.name] = std::move(role);
  }
  std::map<std::string, CertIndexEntry> certs;
  std::map<std::string, absl::Time> latest;
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> cert_keys, list(kCertPrefix));
  for (const std::string& key : cert_keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    WARD_ASSIGN_OR_RETURN(auto parsed, ParseCert(text));
    absl::Time& l = latest.try_emplace(parsed.second.issuer_id, absl::InfinitePast()).first->second;
    l = std::max(l, parsed.second.not_after);
    certs[parsed.first.serial_number] = std::move(parsed.second);
  }
  std::map<std::string, std::shared_ptr<const CrlEntry>> crls;
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> crl_keys, list(kCrlPrefix));
  for (const std::string& key : crl_keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    WARD_ASSIGN_OR_RETURN(std::shared_ptr<const CrlEntry> crl, ParseCrl(text));
    crls[key.substr(Key(kCrlPrefix).size())] = std::move(crl);
  }
  CrlConfig crl_config = GetCrlConfig();  // the options' default until one is stored
  absl::StatusOr<std::string> crl_config_text = barrier_.Get(Key(kCrlConfigKey));
  if (crl_config_text.ok()) {
    WARD_ASSIGN_OR_RETURN(crl_config, DeserializeCrlConfig(*crl_config_text));
  } else if (crl_config_text.status().code() != absl::StatusCode::kNotFound) {
    return crl_config_text.status();
  }
  snap->modified = clock_.Now();
  absl::MutexLock lock(&mu_);
  crl_config_ = std::move(crl_config);
  snapshot_ = std::move(snap);
  roles_ = std::move(roles);
  certs_ = std::move(certs);
  latest_leaf_ = std::move(latest);
  crls_ = std::move(crls);
  return absl::OkStatus();
}

std::shared_ptr<const PkiEngine::Snapshot> PkiEngine::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return snapshot_;
}

std::shared_ptr<const internal::IssuerEntry> PkiEngine::Resolve(const Snapshot& snap,
                                                                std::string_view ref) {
  if (ref.empty() || ref == "default") {
    auto it = snap.issuers.find(snap.default_id);
    return it == snap.issuers.end() ? nullptr : it->second;
  }
  auto it = snap.issuers.find(std::string(ref));
  if (it != snap.issuers.end()) return it->second;
  for (const auto& [id, e] : snap.issuers) {
    if (!e->name.empty() && e->name == ref) return e;
  }
  return nullptr;
}

IssuerInfo PkiEngine::InfoOf(const IssuerEntry& e, const Snapshot& snap, absl::Time latest_leaf) {
  IssuerInfo info;
  info.issuer_id = e.id;
  info.issuer_name = e.name;
  info.state = e.state;
  info.is_default = e.id == snap.default_id;
  info.certificate = e.cert_pem;
  if (!e.cert_pem.empty()) info.ca_chain.push_back(e.cert_pem);
  info.ca_chain.insert(info.ca_chain.end(), e.parents.begin(), e.parents.end());
  info.key_type = std::string(KeyTypeName(e.spec.type));
  info.key_bits = e.spec.bits;
  info.csr = e.csr_pem;
  info.latest_leaf_not_after = latest_leaf;
  if (e.cert != nullptr) {
    X509* c = e.cert.get();
    info.serial_number = SerialColonHex(c);
    Names names = NamesOf(c);
    info.common_name = names.common_name;
    if (!names.uri_sans.empty()) info.trust_domain_id = names.uri_sans.front();
    info.not_before = NotBefore(c);
    info.not_after = NotAfter(c);
    info.path_len = static_cast<int>(X509_get_pathlen(c));
  }
  return info;
}

absl::Status PkiEngine::CheckNameFree(const Snapshot& snap, std::string_view name,
                                      std::string_view except_id) const {
  WARD_RETURN_IF_ERROR(CheckIssuerName(name));
  if (name.empty()) return absl::OkStatus();
  for (const auto& [id, e] : snap.issuers) {
    if (id != except_id && e->name == name) {
      return absl::InvalidArgumentError("issuer_name \"" + std::string(name) +
                                        "\" is already in use");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<storage::Op, std::shared_ptr<const internal::CrlEntry>>>
PkiEngine::BuildCrlFor(const IssuerEntry& issuer,
                       const std::map<std::string, CertIndexEntry>& index,
                       const CrlConfig* config_override) {
  uint64_t number = 1;
  CrlConfig config;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = crls_.find(issuer.id);
    if (it != crls_.end()) number = it->second->number + 1;
    config = config_override != nullptr ? *config_override : crl_config_;
  }
  std::vector<RevokedSerial> revoked;
  // A disabled CRL is still published and signed, but empty (as Vault).
  for (const auto& [serial, c] : index) {
    if (!config.disable && c.issuer_id == issuer.id && c.revocation_time.has_value()) {
      revoked.push_back(RevokedSerial{serial, *c.revocation_time});
    }
  }
  const absl::Time now = clock_.Now();
  WARD_ASSIGN_OR_RETURN(X509CrlPtr crl, BuildCrl(issuer.cert.get(), issuer.key.get(), revoked, now,
                                                 now + config.expiry_duration, number));
  auto entry = std::make_shared<CrlEntry>();
  entry->number = number;
  SetCrlTimes(crl.get(), *entry);
  WARD_ASSIGN_OR_RETURN(entry->der, CrlToDer(crl.get()));
  WARD_ASSIGN_OR_RETURN(entry->pem, CrlToPem(crl.get()));
  storage::Op op = storage::Op::Put(Key(kCrlPrefix) + issuer.id, SerializeCrl(*entry));
  return std::make_pair(std::move(op), std::shared_ptr<const CrlEntry>(std::move(entry)));
}

absl::Status PkiEngine::FillBundle(Snapshot& next) {
  next.bundle_pem.clear();
  next.bundle_jwks.clear();
  for (X509Ptr& cert : BundleCertificates(next.issuers)) {
    WARD_ASSIGN_OR_RETURN(std::string pem, CertificateToPem(cert.get()));
    next.bundle_pem += pem;
    absl::StatusOr<std::string> jwk = SpiffeJwk(cert.get());
    if (jwk.ok()) next.bundle_jwks.push_back(*jwk);  // an unsupported key stays PEM-only
  }
  return absl::OkStatus();
}

absl::Status PkiEngine::CommitIssuers(std::vector<std::shared_ptr<const IssuerEntry>> changed,
                                      std::optional<std::string> new_default,
                                      std::vector<storage::Op> extra) {
  absl::WriterMutexLock issue_lock(&issue_mu_);
  std::shared_ptr<const Snapshot> old = Current();
  auto next = std::make_shared<Snapshot>(*old);
  for (const auto& e : changed) next->issuers[e->id] = e;
  if (new_default.has_value()) next->default_id = *new_default;
  next->modified = clock_.Now();
  WARD_RETURN_IF_ERROR(FillBundle(*next));
  const bool bundle_changed = next->bundle_pem != old->bundle_pem;
  if (bundle_changed) next->sequence = old->sequence + 1;

  // New issuers with a certificate get their first (empty) CRL in the same commit.
  std::vector<std::pair<std::string, std::shared_ptr<const CrlEntry>>> new_crls;
  std::vector<storage::Op> ops;
  for (const auto& e : changed) {
    WARD_ASSIGN_OR_RETURN(std::string record, SerializeIssuer(*e));
    ops.push_back(storage::Op::Put(Key(kIssuerPrefix) + e->id, std::move(record)));
    bool has_crl;
    {
      absl::ReaderMutexLock lock(&mu_);
      has_crl = crls_.count(e->id) > 0;
    }
    if (e->cert != nullptr && !has_crl) {
      WARD_ASSIGN_OR_RETURN(auto built, BuildCrlFor(*e, {}));
      ops.push_back(std::move(built.first));
      new_crls.emplace_back(e->id, std::move(built.second));
    }
  }
  if (bundle_changed || new_default.has_value()) {
    json::object config{{"default", next->default_id}, {"sequence", next->sequence}};
    ops.push_back(storage::Op::Put(Key(kConfigKey), json::serialize(config)));
  }
  for (storage::Op& op : extra) ops.push_back(std::move(op));
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(next);
  for (auto& [id, crl] : new_crls) crls_[id] = std::move(crl);
  return absl::OkStatus();
}

absl::StatusOr<GeneratedIssuer> PkiEngine::AddGeneratedRoot(const RootRequest& request,
                                                            IssuerState state) {
  if (request.common_name.empty()) return absl::InvalidArgumentError("missing common_name");
  if (request.ttl <= absl::ZeroDuration())
    return absl::InvalidArgumentError("ttl must be positive");
  WARD_RETURN_IF_ERROR(CheckIssuerName(request.issuer_name));
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> uris, TrustDomainSans(request.trust_domain));
  // Key generation and signing happen before any lock is taken.
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(request.key));
  CertificateTemplate tmpl;
  tmpl.common_name = request.common_name;
  tmpl.uri_sans = uris;
  const absl::Time now = clock_.Now();
  tmpl.not_before = now - kBackdate;
  tmpl.not_after = now + request.ttl;
  if (request.not_after.has_value()) {
    if (*request.not_after <= now) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not_after ", core::FormatRfc3339Nanos(*request.not_after), " is not in the future"));
    }
    tmpl.not_after = *request.not_after;
  }
  tmpl.is_ca = true;
  tmpl.path_len = request.max_path_length;
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, BuildCertificate(tmpl, key.get(), nullptr, key.get()));
  auto e = std::make_shared<IssuerEntry>();
  WARD_ASSIGN_OR_RETURN(e->id, crypto::RandomUuid());
  e->name = request.issuer_name;
  e->state = state;
  WARD_ASSIGN_OR_RETURN(e->cert_pem, CertificateToPem(cert.get()));
  e->cert = Share(std::move(cert));
  e->spec = request.key;
  GeneratedIssuer out;
  if (request.exported) {
    WARD_ASSIGN_OR_RETURN(core::SecureBytes pem, PrivateKeyToPem(key.get()));
    out.private_key = std::move(pem);
    out.private_key_type = std::string(KeyTypeName(request.key.type));
  }
  e->key = Share(std::move(key));

  absl::MutexLock write(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  WARD_RETURN_IF_ERROR(CheckNameFree(*snap, e->name, ""));
  std::optional<std::string> new_default;
  if (Resolve(*snap, "default") == nullptr) {
    new_default = e->id;
    e->state = IssuerState::kActive;  // the mount's only issuer must be able to issue
  }
  std::shared_ptr<const IssuerEntry> entry = e;
  WARD_RETURN_IF_ERROR(CommitIssuers({entry}, new_default, {}));
  out.issuer = InfoOf(*entry, *Current(), absl::InfinitePast());
  return out;
}

absl::StatusOr<GeneratedIssuer> PkiEngine::GenerateRoot(const RootRequest& request) {
  return AddGeneratedRoot(request, IssuerState::kActive);
}

absl::StatusOr<GeneratedIssuer> PkiEngine::PrepareNext(const RootRequest& request) {
  return AddGeneratedRoot(request, IssuerState::kPublished);
}

absl::StatusOr<IssuerInfo> PkiEngine::ImportIssuer(std::string_view pem_bundle,
                                                   std::string_view issuer_name) {
  WARD_RETURN_IF_ERROR(CheckIssuerName(issuer_name));
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, ParsePrivateKeyPem(pem_bundle));
  WARD_ASSIGN_OR_RETURN(KeySpec spec, KeySpecOf(key.get()));
  WARD_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificatesPem(pem_bundle));
  auto match = std::find_if(certs.begin(), certs.end(), [&](const X509Ptr& c) {
    return KeyMatchesCertificate(c.get(), key.get());
  });
  if (match == certs.end()) {
    return absl::InvalidArgumentError("no certificate in the bundle matches the private key");
  }
  X509* ca = match->get();
  const uint32_t usage = X509_get_key_usage(ca);
  if (X509_check_ca(ca) == 0 || (usage != UINT32_MAX && (usage & KU_KEY_CERT_SIGN) == 0)) {
    return absl::InvalidArgumentError(
        "the certificate matching the key is not a CA (basicConstraints CA:TRUE, keyCertSign)");
  }
  for (const std::string& uri : NamesOf(ca).uri_sans) {
    WARD_RETURN_IF_ERROR(ValidateSpiffeId(uri, /*leaf=*/false));
  }
  auto e = std::make_shared<IssuerEntry>();
  WARD_ASSIGN_OR_RETURN(e->id, crypto::RandomUuid());
  e->name = std::string(issuer_name);
  e->state = IssuerState::kActive;
  WARD_ASSIGN_OR_RETURN(e->cert_pem, CertificateToPem(ca));
  e->spec = spec;
  // Order the other certificates by issuance, starting above the CA.
  X509* current = ca;
  std::set<X509*> used{ca};
  while (!IsSelfSigned(current)) {
    X509* parent = nullptr;
    for (const X509Ptr& c : certs) {
      if (used.count(c.get()) == 0 && X509_check_issued(c.get(), current) == X509_V_OK) {
        parent = c.get();
        break;
      }
    }
    if (parent == nullptr) break;
    WARD_ASSIGN_OR_RETURN(std::string pem, CertificateToPem(parent));
    e->parents.push_back(std::move(pem));
    used.insert(parent);
    current = parent;
  }
  e->cert = Share(CopyCertificate(ca));
  e->key = Share(std::move(key));

  absl::MutexLock write(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  WARD_RETURN_IF_ERROR(CheckNameFree(*snap, e->name, ""));
  for (const auto& [id, other] : snap->issuers) {
    if (other->cert_pem == e->cert_pem) {
      return absl::AlreadyExistsError("certificate is already issuer " + id);
    }
  }
  std::optional<std::string> new_default;
  if (Resolve(*snap, "default") == nullptr) new_default = e->id;
  std::shared_ptr<const IssuerEntry> entry = e;
  WARD_RETURN_IF_ERROR(CommitIssuers({entry}, new_default, {}));
  return InfoOf(*entry, *Current(), absl::InfinitePast());
}

absl::StatusOr<GeneratedIssuer> PkiEngine::GenerateIntermediate(
    const IntermediateRequest& request) {
  if (request.common_name.empty()) return absl::InvalidArgumentError("missing common_name");
  WARD_RETURN_IF_ERROR(CheckIssuerName(request.issuer_name));
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> uris, TrustDomainSans(request.trust_domain));
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(request.key));
  auto e = std::make_shared<IssuerEntry>();
  WARD_ASSIGN_OR_RETURN(e->id, crypto::RandomUuid());
  e->name = request.issuer_name;
  e->state = IssuerState::kPending;
  e->spec = request.key;
  WARD_ASSIGN_OR_RETURN(e->csr_pem, BuildCsr(key.get(), request.common_name, uris));
  GeneratedIssuer out;
  if (request.exported) {
    WARD_ASSIGN_OR_RETURN(core::SecureBytes pem, PrivateKeyToPem(key.get()));
    out.private_key = std::move(pem);
    out.private_key_type = std::string(KeyTypeName(request.key.type));
  }
  e->key = Share(std::move(key));

  absl::MutexLock write(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  WARD_RETURN_IF_ERROR(CheckNameFree(*snap, e->name, ""));
  std::shared_ptr<const IssuerEntry> entry = e;
  WARD_RETURN_IF_ERROR(CommitIssuers({entry}, std::nullopt, {}));
  out.issuer = InfoOf(*entry, *Current(), absl::InfinitePast());
  return out;
}

absl::StatusOr<IssuedCertificate> PkiEngine::SignIntermediate(
    const SignIntermediateRequest& request) {
  WARD_ASSIGN_OR_RETURN(Csr csr, ParseCsr(request.csr));
  WARD_RETURN_IF_ERROR(KeySpecOf(csr.public_key.get()).status());
  std::string cn = request.common_name.empty() ? csr.names.common_name : request.common_name;
  if (cn.empty()) return absl::InvalidArgumentError("missing common_name");
  std::vector<std::string> uris;
  if (!request.trust_domain.empty()) {
    WARD_ASSIGN_OR_RETURN(uris, TrustDomainSans(request.trust_domain));
  } else if (csr.names.uri_sans.size() > 1) {
    return absl::InvalidArgumentError("csr has more than one URI SAN");
  } else if (csr.names.uri_sans.size() == 1) {
    WARD_RETURN_IF_ERROR(ValidateSpiffeId(csr.names.uri_sans[0], /*leaf=*/false));
    uris = csr.names.uri_sans;
  }
  if (request.ttl <= absl::ZeroDuration())
    return absl::InvalidArgumentError("ttl must be positive");

  absl::ReaderMutexLock issue_lock(&issue_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*snap, request.issuer_ref);
  if (issuer == nullptr) {
    return absl::NotFoundError("issuer \"" + request.issuer_ref + "\" not found");
  }
  if (issuer->state != IssuerState::kActive) {
    return absl::FailedPreconditionError(absl::StrCat("issuer ", issuer->id, " is ",
                                                      core::ToAbsl(IssuerStateName(issuer->state)),
                                                      ", not active"));
  }
  const int parent_len = static_cast<int>(X509_get_pathlen(issuer->cert.get()));
  if (parent_len == 0) {
    return absl::FailedPreconditionError("issuer's pathlen is 0: it cannot sign a CA");
  }
  int path_len = request.max_path_length;
  if (path_len < 0 && parent_len > 0) path_len = parent_len - 1;
  if (parent_len > 0 && path_len >= parent_len) {
    return absl::FailedPreconditionError(absl::StrCat(
        "max_path_length ", path_len, " must be below the issuer's pathlen ", parent_len));
  }
  const absl::Time now = clock_.Now();
  const absl::Time issuer_end = NotAfter(issuer->cert.get());
  if (issuer_end <= now) return absl::FailedPreconditionError("issuer has expired");
  CertificateTemplate tmpl;
  tmpl.common_name = cn;
  tmpl.uri_sans = uris;
  tmpl.not_before = std::max(now - kBackdate, NotBefore(issuer->cert.get()));
  tmpl.not_after = std::min(now + request.ttl, issuer_end);
  tmpl.is_ca = true;
  tmpl.path_len = path_len;
  WARD_ASSIGN_OR_RETURN(X509Ptr cert, BuildCertificate(tmpl, csr.public_key.get(),
                                                       issuer->cert.get(), issuer->key.get()));
  IssuedCertificate out;
  WARD_ASSIGN_OR_RETURN(out.certificate, CertificateToPem(cert.get()));
  out.issuing_ca = issuer->cert_pem;
  out.ca_chain.push_back(issuer->cert_pem);
  out.ca_chain.insert(out.ca_chain.end(), issuer->parents.begin(), issuer->parents.end());
  out.serial_number = SerialColonHex(cert.get());
  out.expiration = absl::ToUnixSeconds(NotAfter(cert.get()));
  out.not_before = absl::ToUnixSeconds(NotBefore(cert.get()));
  out.issuer_id = issuer->id;
  CertIndexEntry index{issuer->id, NotAfter(cert.get()), std::nullopt};
  WARD_RETURN_IF_ERROR(barrier_
                           .Put(Key(kCertPrefix) + SerialKey(out.serial_number),
                                SerializeCert(out.serial_number, out.certificate, index))
                           .status());
  {
    absl::MutexLock lock(&mu_);
    certs_[out.serial_number] = index;
  }
  NoteLeaf(issuer->id, index.not_after);
  return out;
}

absl::StatusOr<IssuerInfo> PkiEngine::SetSignedIntermediate(std::string_view pem_bundle) {
  WARD_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificatesPem(pem_bundle));
  X509* cert = certs.front().get();
  if (X509_check_ca(cert) == 0) {
    return absl::InvalidArgumentError("the signed certificate is not a CA certificate");
  }
  absl::MutexLock write(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> pending;
  for (const auto& [id, e] : snap->issuers) {
    if (e->state == IssuerState::kPending && KeyMatchesCertificate(cert, e->key.get())) {
      pending = e;
      break;
    }
  }
  if (pending == nullptr) {
    return absl::NotFoundError("no pending intermediate has the key of this certificate");
  }
  auto e = std::make_shared<IssuerEntry>(*pending);
  e->state = IssuerState::kActive;
  e->csr_pem.clear();
  WARD_ASSIGN_OR_RETURN(e->cert_pem, CertificateToPem(cert));
  e->cert = Share(CopyCertificate(cert));
  e->parents.clear();
  for (size_t i = 1; i < certs.size(); ++i) {
    WARD_ASSIGN_OR_RETURN(std::string pem, CertificateToPem(certs[i].get()));
    e->parents.push_back(std::move(pem));
  }
  if (e->parents.empty()) {
    // Signed by an issuer of this mount: its chain is ours.
    for (const auto& [id, other] : snap->issuers) {
      if (other->cert != nullptr && X509_check_issued(other->cert.get(), cert) == X509_V_OK) {
        e->parents.push_back(other->cert_pem);
        e->parents.insert(e->parents.end(), other->parents.begin(), other->parents.end());
        break;
      }
    }
  }
  std::optional<std::string> new_default;
  if (Resolve(*snap, "default") == nullptr) new_default = e->id;
  std::shared_ptr<const IssuerEntry> entry = e;
  WARD_RETURN_IF_ERROR(CommitIssuers({entry}, new_default, {}));
  return InfoOf(*entry, *Current(), absl::InfinitePast());
}

std::vector<IssuerInfo> PkiEngine::ListIssuers() const {
  std::shared_ptr<const Snapshot> snap = Current();
  std::vector<IssuerInfo> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [id, e] : snap->issuers) {
    auto it = latest_leaf_.find(id);
    out.push_back(InfoOf(*e, *snap, it == latest_leaf_.end() ? absl::InfinitePast() : it->second));
  }
  return out;
}

absl::StatusOr<IssuerInfo> PkiEngine::ReadIssuer(std::string_view ref) const {
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> e = Resolve(*snap, ref);
  if (e == nullptr) return absl::NotFoundError("issuer \"" + std::string(ref) + "\" not found");
  absl::ReaderMutexLock lock(&mu_);
  auto it = latest_leaf_.find(e->id);
  return InfoOf(*e, *snap, it == latest_leaf_.end() ? absl::InfinitePast() : it->second);
}

absl::StatusOr<std::shared_ptr<const internal::IssuerEntry>> PkiEngine::ResolveForChange(
    std::string_view ref) const {
  std::shared_ptr<const IssuerEntry> e = Resolve(*Current(), ref);
  if (e == nullptr) return absl::NotFoundError("issuer \"" + std::string(ref) + "\" not found");
  return e;
}

absl::StatusOr<IssuerInfo> PkiEngine::RenameIssuer(std::string_view ref,
                                                   std::string_view issuer_name) {
  absl::MutexLock write(&write_mu_);
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const IssuerEntry> old, ResolveForChange(ref));
  WARD_RETURN_IF_ERROR(CheckNameFree(*Current(), issuer_name, old->id));
  auto e = std::make_shared<IssuerEntry>(*old);
  e->name = std::string(issuer_name);
  std::shared_ptr<const IssuerEntry> entry = e;
  WARD_RETURN_IF_ERROR(CommitIssuers({entry}, std::nullopt, {}));
  return ReadIssuer(entry->id);
}

absl::Status PkiEngine::SetDefaultIssuer(std::string_view ref) {
  absl::MutexLock write(&write_mu_);
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const IssuerEntry> old, ResolveForChange(ref));
  if (old->state == IssuerState::kPending || old->state == IssuerState::kRetired) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", old->id, " is ", core::ToAbsl(IssuerStateName(old->state))));
  }
  std::vector<std::shared_ptr<const IssuerEntry>> changed;
  if (old->state != IssuerState::kActive) {
    auto e = std::make_shared<IssuerEntry>(*old);
    e->state = IssuerState::kActive;
    changed.push_back(std::move(e));
  }
  return CommitIssuers(std::move(changed), old->id, {});
}

absl::Status PkiEngine::Activate(std::string_view ref) {
  absl::MutexLock write(&write_mu_);
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const IssuerEntry> next, ResolveForChange(ref));
  if (next->state == IssuerState::kPending || next->state == IssuerState::kRetired) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", next->id, " is ", core::ToAbsl(IssuerStateName(next->state))));
  }
  if (NotAfter(next->cert.get()) <= clock_.Now()) {
    return absl::FailedPreconditionError(absl::StrCat("issuer ", next->id, " has expired"));
  }
  std::shared_ptr<const Snapshot> snap = Current();
  std::vector<std::shared_ptr<const IssuerEntry>> changed;
  std::shared_ptr<const IssuerEntry> previous = Resolve(*snap, "default");
  if (previous != nullptr && previous->id != next->id) {
    auto demoted = std::make_shared<IssuerEntry>(*previous);
    demoted->state = IssuerState::kPublished;
    changed.push_back(std::move(demoted));
  }
  auto promoted = std::make_shared<IssuerEntry>(*next);
  promoted->state = IssuerState::kActive;
  changed.push_back(std::move(promoted));
  return CommitIssuers(std::move(changed), next->id, {});
}

absl::Status PkiEngine::Retire(std::string_view ref, bool force) {
  absl::MutexLock write(&write_mu_);
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const IssuerEntry> old, ResolveForChange(ref));
  std::shared_ptr<const Snapshot> snap = Current();
  if (old->id == snap->default_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", old->id, " is the default issuer; activate another first"));
  }
  if (old->state == IssuerState::kRetired) return absl::OkStatus();
  absl::Time latest = absl::InfinitePast();
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = latest_leaf_.find(old->id);
    if (it != latest_leaf_.end()) latest = it->second;
  }
  if (!force && latest > clock_.Now()) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", old->id, " signed certificates valid until ",
                     absl::FormatTime(absl::RFC3339_sec, latest, absl::UTCTimeZone()),
                     "; retire after that, or force"));
  }
  auto e = std::make_shared<IssuerEntry>(*old);
  e->state = IssuerState::kRetired;
  return CommitIssuers({std::shared_ptr<const IssuerEntry>(std::move(e))}, std::nullopt, {});
}

absl::StatusOr<DeletedIssuer> PkiEngine::DeleteIssuer(std::string_view ref) {
  absl::MutexLock write(&write_mu_);
  DeletedIssuer out;
  std::shared_ptr<const IssuerEntry> gone = Resolve(*Current(), ref);
  if (gone == nullptr) return out;
  out.found = true;
  out.issuer_id = gone->id;
  {
    // Issue/Sign hold issue_mu_ shared while signing: none signs with it after this returns.
    absl::WriterMutexLock issue_lock(&issue_mu_);
    std::shared_ptr<const Snapshot> old = Current();
    auto next = std::make_shared<Snapshot>(*old);
    next->issuers.erase(gone->id);
    out.was_default = next->default_id == gone->id;
    if (out.was_default) next->default_id.clear();
    next->modified = clock_.Now();
    WARD_RETURN_IF_ERROR(FillBundle(*next));
    if (next->bundle_pem != old->bundle_pem) next->sequence = old->sequence + 1;
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Delete(Key(kIssuerPrefix) + gone->id));
    ops.push_back(storage::Op::Delete(Key(kCrlPrefix) + gone->id));
    json::object config{{"default", next->default_id}, {"sequence", next->sequence}};
    ops.push_back(storage::Op::Put(Key(kConfigKey), json::serialize(config)));
    WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
    absl::MutexLock lock(&mu_);
    snapshot_ = std::move(next);
    crls_.erase(gone->id);
    latest_leaf_.erase(gone->id);
  }
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, role] : roles_) {
    if (role.issuer_ref == gone->id || (!gone->name.empty() && role.issuer_ref == gone->name) ||
        (out.was_default && (role.issuer_ref.empty() || role.issuer_ref == "default"))) {
      out.roles.push_back(name);
    }
  }
  return out;
}

absl::Status PkiEngine::WriteRole(const Role& role) {
  if (!ValidRoleName(role.name)) {
    return absl::InvalidArgumentError("invalid role name \"" + role.name + "\"");
  }
  absl::MutexLock write(&write_mu_);
  WARD_RETURN_IF_ERROR(barrier_.Put(Key(kRolePrefix) + role.name, SerializeRole(role)).status());
  absl::MutexLock lock(&mu_);
  roles_[role.name] = role;
  return absl::OkStatus();
}

absl::StatusOr<Role> PkiEngine::ReadRole(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return absl::NotFoundError("unknown role: " + std::string(name));
  return it->second;
}

std::vector<std::string> PkiEngine::ListRoles() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, role] : roles_) out.push_back(name);
  return out;
}

absl::Status PkiEngine::DeleteRole(std::string_view name) {
  absl::MutexLock write(&write_mu_);
  WARD_RETURN_IF_ERROR(barrier_.Delete(Key(kRolePrefix) + std::string(name)).status());
  absl::MutexLock lock(&mu_);
  auto it = roles_.find(name);
  if (it != roles_.end()) roles_.erase(it);
  return absl::OkStatus();
}

void PkiEngine::NoteLeaf(const std::string& issuer_id, absl::Time not_after) {
  absl::MutexLock lock(&mu_);
  absl::Time& l = latest_leaf_.try_emplace(issuer_id, absl::InfinitePast()).first->second;
  l = std::max(l, not_after);
}

absl::StatusOr<IssuedCertificate> PkiEngine::IssueFor(const Role& role, const IssueRequest& request,
                                                      const Names* csr, EVP_PKEY* subject_key) {
  WARD_ASSIGN_OR_RETURN(CheckedNames names, CheckNames(role, request, csr));
  IssuedCertificate out;
  absl::Duration ttl = request.ttl.value_or(role.ttl);
  if (ttl <= absl::ZeroDuration()) ttl = role.ttl;
  if (ttl > role.max_ttl && !request.not_after.has_value()) {
    // Vault caps a ttl above max_ttl and says so in a warning; it does not refuse.
    out.warnings.push_back(
        absl::StrCat("TTL \"", core::FormatGoDuration(ttl), "\" is longer than permitted maxTTL \"",
                     core::FormatGoDuration(role.max_ttl), "\", so maxTTL is being used"));
    ttl = role.max_ttl;
  }
  const std::string ref = request.issuer_ref.empty() ? role.issuer_ref : request.issuer_ref;

  absl::ReaderMutexLock issue_lock(&issue_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*snap, ref);
  if (issuer == nullptr) return absl::NotFoundError("issuer \"" + ref + "\" not found");
  if (issuer->state != IssuerState::kActive) {
    return absl::FailedPreconditionError(absl::StrCat("issuer ", issuer->id, " is ",
                                                      core::ToAbsl(IssuerStateName(issuer->state)),
                                                      ", not active"));
  }
  const absl::Time now = clock_.Now();
  const absl::Time issuer_end = NotAfter(issuer->cert.get());
  if (issuer_end <= now) {
    return absl::FailedPreconditionError(absl::StrCat("issuer ", issuer->id, " has expired"));
  }
  auto rfc3339 = [](absl::Time t) {
    return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
  };
  absl::Time not_after = now + ttl;
  if (request.not_after.has_value()) {
    not_after = *request.not_after;
    if (not_after <= now) {
      return absl::InvalidArgumentError(
          absl::StrCat("not_after ", rfc3339(not_after), " is not in the future"));
    }
    if (not_after > now + role.max_ttl) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not_after ", rfc3339(not_after), " is beyond the max_ttl of role ", role.name, " (",
          core::FormatGoDuration(role.max_ttl), ", until ", rfc3339(now + role.max_ttl), ")"));
    }
    if (not_after > issuer_end) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot satisfy request, as not_after ", rfc3339(not_after),
                       " is beyond the expiration of the CA certificate at ", rfc3339(issuer_end)));
    }
  }
  if (not_after > issuer_end) {
    if (role.not_after_behavior == NotAfterBehavior::kErr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot satisfy request, as TTL would result in notAfter ",
                       absl::FormatTime(absl::RFC3339_sec, not_after, absl::UTCTimeZone()),
                       " that is beyond the expiration of the CA certificate at ",
                       absl::FormatTime(absl::RFC3339_sec, issuer_end, absl::UTCTimeZone())));
    }
    not_after = issuer_end;
  }
  CertificateTemplate tmpl;
  tmpl.common_name = names.common_name;
  tmpl.dns_sans = names.dns_sans;
  tmpl.ip_sans = names.ip_sans;
  tmpl.uri_sans = {names.spiffe_id};
  tmpl.not_before = std::max(now - kBackdate, NotBefore(issuer->cert.get()));
  tmpl.not_after = not_after;
  tmpl.server_auth = role.server_flag;
  tmpl.client_auth = role.client_flag;
  WARD_ASSIGN_OR_RETURN(X509Ptr cert,
                        BuildCertificate(tmpl, subject_key, issuer->cert.get(), issuer->key.get()));
  WARD_ASSIGN_OR_RETURN(out.certificate, CertificateToPem(cert.get()));
  out.issuing_ca = issuer->cert_pem;
  out.ca_chain.push_back(issuer->cert_pem);
  out.ca_chain.insert(out.ca_chain.end(), issuer->parents.begin(), issuer->parents.end());
  out.serial_number = SerialColonHex(cert.get());
  out.expiration = absl::ToUnixSeconds(NotAfter(cert.get()));
  out.not_before = absl::ToUnixSeconds(NotBefore(cert.get()));
  out.issuer_id = issuer->id;
  if (!role.no_store) {
    CertIndexEntry index{issuer->id, NotAfter(cert.get()), std::nullopt};
    WARD_RETURN_IF_ERROR(barrier_
                             .Put(Key(kCertPrefix) + SerialKey(out.serial_number),
                                  SerializeCert(out.serial_number, out.certificate, index))
                             .status());
    absl::MutexLock lock(&mu_);
    certs_[out.serial_number] = index;
  }
  NoteLeaf(issuer->id, NotAfter(cert.get()));
  certificates_issued_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

absl::StatusOr<IssuedCertificate> PkiEngine::Issue(std::string_view role_name,
                                                   const IssueRequest& request) {
  WARD_ASSIGN_OR_RETURN(Role role, ReadRole(role_name));
  if (role.key_type == "any") {
    return absl::InvalidArgumentError("role " + role.name +
                                      " has key_type any, which can only sign CSRs");
  }
  WARD_ASSIGN_OR_RETURN(KeySpec spec, ParseKeySpec(role.key_type, role.key_bits));
  // Checked before generating a key, so a refused request costs no key generation.
  WARD_RETURN_IF_ERROR(CheckNames(role, request, nullptr).status());
  WARD_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(spec));  // outside every lock
  WARD_ASSIGN_OR_RETURN(IssuedCertificate out, IssueFor(role, request, nullptr, key.get()));
  WARD_ASSIGN_OR_RETURN(core::SecureBytes pem, PrivateKeyToPem(key.get()));
  out.private_key = std::move(pem);
  out.private_key_type = std::string(KeyTypeName(spec.type));
  return out;
}

absl::StatusOr<IssuedCertificate> PkiEngine::Sign(std::string_view role_name,
                                                  std::string_view csr_pem,
                                                  const IssueRequest& request) {
  WARD_ASSIGN_OR_RETURN(Role role, ReadRole(role_name));
  WARD_ASSIGN_OR_RETURN(Csr csr, ParseCsr(csr_pem));
  WARD_ASSIGN_OR_RETURN(KeySpec spec, KeySpecOf(csr.public_key.get()));
  if (role.key_type != "any") {
    if (KeyTypeName(spec.type) != role.key_type) {
      return absl::InvalidArgumentError(absl::StrCat("role ", role.name, " requires key_type ",
                                                     role.key_type, ", csr has ",
                                                     core::ToAbsl(KeyTypeName(spec.type))));
    }
    if (spec.type == KeyType::kRsa && spec.bits < role.key_bits) {
      return absl::InvalidArgumentError(absl::StrCat("role ", role.name, " requires key_bits ",
                                                     role.key_bits, ", csr has ", spec.bits));
    }
  } else if (spec.type == KeyType::kRsa && spec.bits < 2048) {
    return absl::InvalidArgumentError("csr RSA key is shorter than 2048 bits");
  }
  return IssueFor(role, request, &csr.names, csr.public_key.get());
}

std::vector<std::string> PkiEngine::ListCertificates() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [serial, c] : certs_) out.push_back(serial);
  return out;
}

absl::StatusOr<CertRecord> PkiEngine::ReadCertificate(std::string_view serial) const {
  WARD_ASSIGN_OR_RETURN(std::string normal, NormalizeSerial(serial));
  absl::StatusOr<std::string> text = barrier_.Get(Key(kCertPrefix) + SerialKey(normal));
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError("certificate " + normal + " not found");
    }
    return text.status();
  }
  WARD_ASSIGN_OR_RETURN(auto parsed, ParseCert(*text));
  return std::move(parsed.first);
}

absl::StatusOr<absl::Time> PkiEngine::Revoke(std::string_view serial) {
  WARD_ASSIGN_OR_RETURN(std::string normal, NormalizeSerial(serial));
  absl::MutexLock write(&write_mu_);
  std::map<std::string, CertIndexEntry> index;
  {
    absl::ReaderMutexLock lock(&mu_);
    index = certs_;
  }
  auto it = index.find(normal);
  if (it == index.end()) return absl::NotFoundError("certificate " + normal + " not found");
  if (it->second.revocation_time.has_value()) return *it->second.revocation_time;
  WARD_ASSIGN_OR_RETURN(CertRecord record, ReadCertificate(normal));
  const absl::Time now = clock_.Now();
  it->second.revocation_time = now;
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Put(Key(kCertPrefix) + SerialKey(normal),
                                 SerializeCert(normal, record.certificate, it->second)));
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*Current(), it->second.issuer_id);
  std::shared_ptr<const CrlEntry> crl;
  if (issuer != nullptr && issuer->cert != nullptr) {
    WARD_ASSIGN_OR_RETURN(auto built, BuildCrlFor(*issuer, index));
    ops.push_back(std::move(built.first));
    crl = std::move(built.second);
  }
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  certs_[normal].revocation_time = now;
  if (crl != nullptr) crls_[issuer->id] = std::move(crl);
  certificates_revoked_.fetch_add(1, std::memory_order_relaxed);
  return now;
}

PkiEngine::Stats PkiEngine::GetStats() const {
  return Stats{certificates_issued_.load(std::memory_order_relaxed),
               certificates_revoked_.load(std::memory_order_relaxed)};
}

std::vector<std::string> PkiEngine::RevokedSerials() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [serial, c] : certs_) {
    if (c.revocation_time.has_value()) out.push_back(serial);
  }
  return out;
}

absl::StatusOr<std::string> PkiEngine::CrlDer(std::string_view issuer_ref) const {
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*Current(), issuer_ref);
  if (issuer == nullptr) {
    return absl::NotFoundError("issuer \"" + std::string(issuer_ref) + "\" not found");
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = crls_.find(issuer->id);
  if (it == crls_.end()) return absl::NotFoundError("issuer " + issuer->id + " has no CRL");
  return it->second->der;
}

absl::StatusOr<std::string> PkiEngine::CrlPem(std::string_view issuer_ref) const {
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*Current(), issuer_ref);
  if (issuer == nullptr) {
    return absl::NotFoundError("issuer \"" + std::string(issuer_ref) + "\" not found");
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = crls_.find(issuer->id);
  if (it == crls_.end()) return absl::NotFoundError("issuer " + issuer->id + " has no CRL");
  return it->second->pem;
}

absl::StatusOr<std::vector<std::pair<std::string, std::shared_ptr<const internal::CrlEntry>>>>
PkiEngine::BuildCrls(const std::function<bool(const std::string& id)>& due,
                     std::vector<storage::Op>& ops, const CrlConfig* config) {
  std::map<std::string, CertIndexEntry> index;
  {
    absl::ReaderMutexLock lock(&mu_);
    index = certs_;
  }
  std::vector<std::pair<std::string, std::shared_ptr<const CrlEntry>>> built_crls;
  for (const auto& [id, e] : Current()->issuers) {
    if (e->cert == nullptr || (due && !due(id))) continue;
    WARD_ASSIGN_OR_RETURN(auto built, BuildCrlFor(*e, index, config));
    ops.push_back(std::move(built.first));
    built_crls.emplace_back(id, std::move(built.second));
  }
  return built_crls;
}

absl::Status PkiEngine::RebuildCrls() {
  absl::MutexLock write(&write_mu_);
  std::vector<storage::Op> ops;
  WARD_ASSIGN_OR_RETURN(auto built_crls, BuildCrls(nullptr, ops));
  if (ops.empty()) return absl::OkStatus();
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  for (auto& [id, crl] : built_crls) crls_[id] = std::move(crl);
  return absl::OkStatus();
}

absl::StatusOr<size_t> PkiEngine::RebuildDueCrls() {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, absl::Time> next_updates;
  CrlConfig config;
  {
    absl::ReaderMutexLock lock(&mu_);
    config = crl_config_;
    for (const auto& [id, crl] : crls_) next_updates[id] = crl->next_update;
  }
  if (!config.auto_rebuild) return 0;
  const absl::Time rebuild_from = clock_.Now() + config.auto_rebuild_grace_period_duration;
  auto due = [&](const std::string& id) {
    auto it = next_updates.find(id);
    return it == next_updates.end() || it->second <= rebuild_from;
  };
  std::vector<storage::Op> ops;
  WARD_ASSIGN_OR_RETURN(auto built_crls, BuildCrls(due, ops));
  if (ops.empty()) return 0;
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  for (auto& [id, crl] : built_crls) crls_[id] = std::move(crl);
  return built_crls.size();
}

CrlConfig PkiEngine::GetCrlConfig() const {
  absl::ReaderMutexLock lock(&mu_);
  return crl_config_;
}

absl::StatusOr<CrlConfig> PkiEngine::SetCrlConfig(const CrlConfig& config) {
  if (config.enable_delta) {
    return absl::InvalidArgumentError("enable_delta is not supported: Ward builds no delta CRLs");
  }
  absl::MutexLock write(&write_mu_);
  const bool disable_changed = GetCrlConfig().disable != config.disable;
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Put(Key(kCrlConfigKey), SerializeCrlConfig(config)));
  std::vector<std::pair<std::string, std::shared_ptr<const CrlEntry>>> built;
  if (disable_changed) {
    WARD_ASSIGN_OR_RETURN(built, BuildCrls(nullptr, ops, &config));
  }
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  crl_config_ = config;
  for (auto& [id, crl] : built) crls_[id] = std::move(crl);
  return crl_config_;
}

absl::StatusOr<std::pair<absl::Time, absl::Time>> PkiEngine::CrlTimes(
    std::string_view issuer_ref) const {
  std::shared_ptr<const IssuerEntry> issuer = Resolve(*Current(), issuer_ref);
  if (issuer == nullptr) {
    return absl::NotFoundError("issuer \"" + std::string(issuer_ref) + "\" not found");
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = crls_.find(issuer->id);
  if (it == crls_.end()) return absl::NotFoundError("issuer " + issuer->id + " has no CRL");
  return std::make_pair(it->second->this_update, it->second->next_update);
}

absl::StatusOr<TidyResult> PkiEngine::Tidy(absl::Duration safety_buffer) {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, CertIndexEntry> index;
  {
    absl::ReaderMutexLock lock(&mu_);
    index = certs_;
  }
  const absl::Time now = clock_.Now();
  TidyResult result;
  std::vector<storage::Op> ops;
  std::vector<std::string> removed;
  std::set<std::string> crl_issuers;
  for (auto it = index.begin(); it != index.end();) {
    if (it->second.not_after + safety_buffer < now) {
      ops.push_back(storage::Op::Delete(Key(kCertPrefix) + SerialKey(it->first)));
      removed.push_back(it->first);
      ++result.certs_deleted;
      if (it->second.revocation_time.has_value()) {
        ++result.revoked_deleted;
        crl_issuers.insert(it->second.issuer_id);
      }
      it = index.erase(it);
    } else {
      ++it;
    }
  }
  if (ops.empty()) return result;
  std::shared_ptr<const Snapshot> snap = Current();
  std::vector<std::pair<std::string, std::shared_ptr<const CrlEntry>>> built_crls;
  for (const std::string& id : crl_issuers) {
    std::shared_ptr<const IssuerEntry> issuer = Resolve(*snap, id);
    if (issuer == nullptr || issuer->cert == nullptr) continue;
    WARD_ASSIGN_OR_RETURN(auto built, BuildCrlFor(*issuer, index));
    ops.push_back(std::move(built.first));
    built_crls.emplace_back(id, std::move(built.second));
  }
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  for (const std::string& serial : removed) certs_.erase(serial);
  for (auto& [id, crl] : built_crls) crls_[id] = std::move(crl);
  return result;
}

std::string PkiEngine::TrustBundlePem() const { return Current()->bundle_pem; }

std::string PkiEngine::TrustBundleJwks() const {
  std::shared_ptr<const Snapshot> snap = Current();
  // The JWKs are compact JSON already; splice them into the set.
  return absl::StrCat("{\"keys\":[", absl::StrJoin(snap->bundle_jwks, ","),
                      "],\"spiffe_sequence\":", snap->sequence, ",\"spiffe_refresh_hint\":",
                      absl::ToInt64Seconds(options_.bundle_refresh_hint), "}");
}

uint64_t PkiEngine::BundleVersion() const { return Current()->sequence; }

absl::Time PkiEngine::IssuersModified() const { return Current()->modified; }

absl::StatusOr<std::string> PkiEngine::CaPem() const {
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> e = Resolve(*snap, "default");
  if (e == nullptr) return absl::NotFoundError("no default issuer");
  return e->cert_pem;
}

absl::StatusOr<std::string> PkiEngine::CaChainPem() const {
  std::shared_ptr<const Snapshot> snap = Current();
  std::shared_ptr<const IssuerEntry> e = Resolve(*snap, "default");
  if (e == nullptr) return absl::NotFoundError("no default issuer");
  return absl::StrCat(e->cert_pem, absl::StrJoin(e->parents, ""));
}

}  // namespace ward::pki
