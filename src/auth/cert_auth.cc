#include "auth/cert_auth.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"
#include "crypto/openssl_handles.h"

namespace ward::auth {
namespace {

namespace json = boost::json;

constexpr std::string_view kRolePrefix = "cert/";
constexpr std::string_view kCrlPrefix = "crls/";
constexpr size_t kListPageSize = 1000;
constexpr int64_t kFormatVersion = 1;
// Direct-identity cache bound; the cache is emptied when it is full (entries are cheap to
// recompute, and a flood of distinct certificates must not grow memory).
constexpr size_t kMaxCacheEntries = 4096;

constexpr std::string_view kNoCertificate = "client certificate must be supplied";
constexpr std::string_view kInvalidCertificate =
    "invalid certificate or no client certificate supplied";
constexpr std::string_view kNoConstraintMatch =
    "no chain matching all constraints could be found for this login certificate";

// sk_X509_free is a macro, so it cannot be a crypto::Deleter argument. Frees the stack only: the
// certificates stay owned by their X509Ptrs.
struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;
using X509CrlPtr = std::unique_ptr<X509_CRL, crypto::Deleter<&X509_CRL_free>>;

// `text` (already accepted by Cidr::Parse) as Vault shows it: go-sockaddr's String(), i.e. the
// address as given (host bits kept) in canonical form, then "/<bits>" unless the prefix covers
// the whole address.
std::string VaultCidrText(std::string_view text) {
  size_t slash = text.find('/');
  std::string address(text.substr(0, slash));
  char buf[INET6_ADDRSTRLEN] = {};
  int max_bits = 0;
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    max_bits = 32;
    if (inet_ntop(AF_INET, &v4, buf, sizeof(buf)) == nullptr) return std::string(text);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    max_bits = 128;
    if (inet_ntop(AF_INET6, &v6, buf, sizeof(buf)) == nullptr) return std::string(text);
  } else {
    return std::string(text);
  }
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::optional<int64_t> parsed = core::ParseInt64(text.substr(slash + 1));
    if (parsed) bits = static_cast<int>(*parsed);
  }
  if (bits == max_bits) return std::string(buf);
  return absl::StrCat(buf, "/", bits);
}

// Parses `texts` as CIDR blocks or addresses. Returns them in Vault's display form, and parsed
// in `networks`. Errors: kInvalidArgument "invalid CIDR block \"...\"" for the first bad one.
absl::StatusOr<std::vector<std::string>> NormalizeCidrs(const std::vector<std::string>& texts,
                                                        std::vector<Cidr>& networks) {
  std::vector<std::string> out;
  networks.clear();
  for (const std::string& t : texts) {
    WARD_ASSIGN_OR_RETURN(Cidr c, Cidr::Parse(t));
    out.push_back(VaultCidrText(t));
    networks.push_back(std::move(c));
  }
  return out;
}

// Vault's role name rule (framework.GenericNameRegex): word characters, with '-', '.' and '@'
// allowed inside.
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

absl::Time FromAsn1Time(const ASN1_TIME* t, absl::Time fallback) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return fallback;
  return absl::FromTimeT(timegm(&tm));
}

// [notBefore, notAfter] of `cert`, narrowing `window`.
void Narrow(X509* cert, std::pair<absl::Time, absl::Time>& window) {
  window.first = std::max(window.first, FromAsn1Time(X509_get0_notBefore(cert),
                                                     absl::InfiniteFuture()));
  window.second = std::min(window.second, FromAsn1Time(X509_get0_notAfter(cert),
                                                       absl::InfinitePast()));
}

std::vector<crypto::X509Ptr> ParsePemCertificates(std::string_view pem) {
  std::vector<crypto::X509Ptr> out;
  crypto::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return out;
  while (true) {
    crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    out.push_back(std::move(cert));
  }
  ERR_clear_error();  // the read that ended the loop
  return out;
}

crypto::X509Ptr ParseDer(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  crypto::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  // Trailing bytes after the certificate: not one certificate.
  if (cert != nullptr && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    cert.reset();
  }
  if (cert == nullptr) ERR_clear_error();
  return cert;
}

std::string DerOf(X509* cert) {
  unsigned char* buf = nullptr;
  int n = i2d_X509(cert, &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

bool IsCa(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

std::string Utf8(const ASN1_STRING* s) {
  if (s == nullptr) return "";
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) {
    ERR_clear_error();
    return "";
  }
  std::string text(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return text;
}

std::vector<std::string> SubjectValues(X509* cert, int nid) {
  std::vector<std::string> out;
  X509_NAME* name = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    out.push_back(Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))));
  }
  return out;
}

// The subjectAltName values of `type` (GEN_DNS, GEN_EMAIL, GEN_URI).
std::vector<std::string> Sans(X509* cert, int type) {
  std::vector<std::string> out;
  crypto::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type != type) continue;
    const ASN1_IA5STRING* s = n->d.ia5;  // dNSName, rfc822Name and URI are all IA5String
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

// True if the pattern list is empty or one pattern matches one value.
bool AnyMatch(const std::vector<std::string>& patterns, const std::vector<std::string>& values) {
  if (patterns.empty()) return true;
  for (const std::string& p : patterns) {
    for (const std::string& v : values) {
      if (CertGlobMatch(p, v)) return true;
    }
  }
  return false;
}

std::string ColonHex(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return "";
  std::string_view bytes(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
  std::string hex = crypto::HexEncode(bytes);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (!out.empty()) out.push_back(':');
    out.append(hex, i, 2);
  }
  return out;
}

// Decimal, as Go's big.Int String().
std::string DecimalOf(const ASN1_INTEGER* serial) {
  crypto::BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return "";
  char* dec = BN_bn2dec(bn.get());
  if (dec == nullptr) return "";
  std::string out(dec);
  OPENSSL_free(dec);
  return out;
}

std::string DecimalSerial(X509* cert) { return DecimalOf(X509_get0_serialNumber(cert)); }

json::array ToJson(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

bool Read(const json::object& o, std::string_view k, std::string& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}
bool Read(const json::object& o, std::string_view k, bool& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_bool()) return false;
  out = v->get_bool();
  return true;
}
bool Read(const json::object& o, std::string_view k, absl::Duration& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_int64()) return false;
  out = absl::Nanoseconds(v->get_int64());
  return true;
}
bool Read(const json::object& o, std::string_view k, std::vector<std::string>& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_array()) return false;
  out.clear();
  for (const json::value& s : v->get_array()) {
    if (!s.is_string()) return false;
    out.emplace_back(s.get_string());
  }
  return true;
}

std::string SerializeRole(const CertRole& r) {
  json::object o{{"version", kFormatVersion},
                 {"name", r.name},
                 {"certificate", r.certificate},
                 {"allowed_common_names", ToJson(r.allowed_common_names)},
                 {"allowed_dns_sans", ToJson(r.allowed_dns_sans)},
                 {"allowed_email_sans", ToJson(r.allowed_email_sans)},
                 {"allowed_uri_sans", ToJson(r.allowed_uri_sans)},
                 {"allowed_organizational_units", ToJson(r.allowed_organizational_units)},
                 {"display_name", r.display_name},
                 {"token_policies", ToJson(r.token_policies)},
                 {"token_ttl_ns", absl::ToInt64Nanoseconds(r.token_ttl)},
                 {"token_max_ttl_ns", absl::ToInt64Nanoseconds(r.token_max_ttl)},
                 {"token_type", r.token_type},
                 {"token_no_default_policy", r.token_no_default_policy},
                 {"token_bound_cidrs", ToJson(r.token_bound_cidrs)},
                 {"legacy_bound_cidrs", r.legacy_bound_cidrs}};
  return json::serialize(o);
}

absl::StatusOr<CertRole> ParseRole(std::string_view text) {
  auto malformed = [] { return absl::DataLossError("malformed cert role in storage"); };
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return malformed();
  const json::object& o = root.get_object();
  const json::value* version = o.if_contains("version");
  if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion) {
    return malformed();
  }
  CertRole r;
  if (!Read(o, "name", r.name) || !Read(o, "certificate", r.certificate) ||
      !Read(o, "allowed_common_names", r.allowed_common_names) ||
      !Read(o, "allowed_dns_sans", r.allowed_dns_sans) ||
      !Read(o, "allowed_email_sans", r.allowed_email_sans) ||
      !Read(o, "allowed_uri_sans", r.allowed_uri_sans) ||
      !Read(o, "allowed_organizational_units", r.allowed_organizational_units) ||
      !Read(o, "display_name", r.display_name) ||
      !Read(o, "token_policies", r.token_policies) || !Read(o, "token_ttl_ns", r.token_ttl) ||
      !Read(o, "token_max_ttl_ns", r.token_max_ttl) || !Read(o, "token_type", r.token_type) ||
      !Read(o, "token_no_default_policy", r.token_no_default_policy)) {
    return malformed();
  }
  // Added later: roles stored before read as unbound.
  if (o.contains("token_bound_cidrs") && !Read(o, "token_bound_cidrs", r.token_bound_cidrs)) {
    return malformed();
  }
  if (o.contains("legacy_bound_cidrs") && !Read(o, "legacy_bound_cidrs", r.legacy_bound_cidrs)) {
    return malformed();
  }
  return r;
}

std::string Pem(X509_CRL* crl) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// The first CRL of `text`: PEM if it has a PEM CRL header, else DER (all of it).
X509CrlPtr ParseCrlText(std::string_view text) {
  X509CrlPtr crl;
  if (absl::StrContains(core::ToAbsl(text), "-----BEGIN X509 CRL-----")) {
    crypto::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (bio != nullptr) crl.reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data());
    crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(text.size())));
    if (crl != nullptr && p != reinterpret_cast<const unsigned char*>(text.data()) + text.size()) {
      crl.reset();
    }
  }
  ERR_clear_error();
  return crl;
}

std::string OneLine(const X509_NAME* name) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string SerializeCrl(std::string_view name, std::string_view pem, bool signature_verified) {
  json::object o{{"version", kFormatVersion},
                 {"name", json::string_view(name.data(), name.size())},
                 {"crl", json::string_view(pem.data(), pem.size())},
                 {"signature_verified", signature_verified}};
  return json::serialize(o);
}

}  // namespace

bool CertGlobMatch(std::string_view pattern, std::string_view value) {
  if (pattern == "*") return true;
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == value;
  // Split on '*': the first part is a prefix, the last a suffix, the middle ones appear in
  // order in between (go-glob's algorithm).
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t next = pattern.find('*', start);
    if (next == std::string_view::npos) {
      parts.push_back(pattern.substr(start));
      break;
    }
    parts.push_back(pattern.substr(start, next - start));
    start = next + 1;
  }
  const std::string_view first = parts.front();
  const std::string_view last = parts.back();
  if (value.substr(0, first.size()) != first) return false;
  size_t pos = first.size();
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    size_t found = value.find(parts[i], pos);
    if (found == std::string_view::npos) return false;
    pos = found + parts[i].size();
  }
  // The suffix must fit after everything matched so far.
  return value.size() >= pos + last.size() &&
         value.substr(value.size() - last.size()) == last;
}

// A role with its certificates parsed once. Immutable; shared with matches in progress.
struct CertAuthStore::ParsedRole {
  CertRole role;
  std::vector<crypto::X509Ptr> certs;  // never empty
  bool is_ca = false;
  std::string pinned_der;      // the first certificate's DER, when it is not a CA
  crypto::X509StorePtr store;  // the trust anchors, when it is a CA
  std::vector<Cidr> networks;  // role.token_bound_cidrs, parsed
};

// A CRL parsed once. Immutable; shared with matches in progress.
struct CertAuthStore::ParsedCrl {
  std::string name;
  X509CrlPtr crl;
  std::string pem;                 // as stored
  std::set<std::string> serials;   // revoked serials, decimal
  bool signature_verified = false;  // at upload (see CertCrl)

  // Fills `serials` from `crl`.
  void FillSerials() {
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      serials.insert(
          DecimalOf(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
    }
  }
  // Whether this CRL revokes `cert` (whose decimal serial is `serial`): same issuer name,
  // serial listed.
  bool Revokes(X509* cert, const std::string& serial) const {
    return serials.count(serial) > 0 &&
           X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_issuer_name(cert)) == 0;
  }
  CertCrl View() const {
    return CertCrl{name, OneLine(X509_CRL_get_issuer(crl.get())),
                   std::vector<std::string>(serials.begin(), serials.end()), signature_verified};
  }
};

namespace {

// Checks `crl`'s signature against the role certificates whose subject is its issuer. Returns
// whether one was known. Errors: kInvalidArgument if some were known and none verifies it.
template <typename Roles>
absl::StatusOr<bool> VerifyCrlSignature(X509_CRL* crl, const Roles& roles) {
  bool known = false;
  for (const auto& [name, role] : roles) {
    for (const crypto::X509Ptr& c : role->certs) {
      if (X509_NAME_cmp(X509_get_subject_name(c.get()), X509_CRL_get_issuer(crl)) != 0) continue;
      known = true;
      EVP_PKEY* key = X509_get0_pubkey(c.get());
      if (key != nullptr && X509_CRL_verify(crl, key) == 1) return true;
      ERR_clear_error();
    }
  }
  if (known) {
    return absl::InvalidArgumentError(
        "CRL signature does not verify with the certificate of its issuer");
  }
  return false;
}

}  // namespace

CertAuthStore::CertAuthStore(barrier::Barrier& barrier, core::Clock& clock, std::string prefix)
    : barrier_(barrier), clock_(clock), prefix_(std::move(prefix)) {}

CertAuthStore::~CertAuthStore() = default;

absl::StatusOr<std::unique_ptr<CertAuthStore>> CertAuthStore::Create(barrier::Barrier& barrier,
                                                                     core::Clock& clock,
                                                                     std::string prefix) {
  std::unique_ptr<CertAuthStore> store(new CertAuthStore(barrier, clock, std::move(prefix)));
  WARD_RETURN_IF_ERROR(store->Load());
  return store;
}

std::string CertAuthStore::RoleKey(std::string_view name) const {
  return absl::StrCat(prefix_, core::ToAbsl(kRolePrefix), core::ToAbsl(name));
}

std::string CertAuthStore::CrlKey(std::string_view name) const {
  return absl::StrCat(prefix_, core::ToAbsl(kCrlPrefix), core::ToAbsl(name));
}

namespace {

// Every key under `prefix`. Errors: barrier errors.
absl::StatusOr<std::vector<std::string>> ListAll(barrier::Barrier& barrier,
                                                 const std::string& prefix) {
  std::vector<std::string> keys;
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier.List(prefix, after, kListPageSize));
    for (std::string& k : page.keys) keys.push_back(std::move(k));
    if (!page.more || keys.empty()) break;
    after = keys.back();
  }
  return keys;
}

}  // namespace

absl::Status CertAuthStore::Load() {
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                        ListAll(barrier_, absl::StrCat(prefix_, core::ToAbsl(kRolePrefix))));
  std::map<std::string, std::shared_ptr<const ParsedRole>> roles;
  for (const std::string& key : keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    WARD_ASSIGN_OR_RETURN(CertRole role, ParseRole(text));
    absl::StatusOr<std::shared_ptr<ParsedRole>> parsed = Prepare(std::move(role));
    if (!parsed.ok()) return absl::DataLossError("stored cert role is unusable");
    std::string name = (*parsed)->role.name;
    roles[name] = *std::move(parsed);
  }
  WARD_ASSIGN_OR_RETURN(std::vector<std::string> crl_keys,
                        ListAll(barrier_, absl::StrCat(prefix_, core::ToAbsl(kCrlPrefix))));
  std::map<std::string, std::shared_ptr<const ParsedCrl>> crls;
  for (const std::string& key : crl_keys) {
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    auto malformed = [] { return absl::DataLossError("malformed cert CRL in storage"); };
    json::error_code ec;
    json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec || !root.is_object()) return malformed();
    const json::object& o = root.get_object();
    const json::value* version = o.if_contains("version");
    auto parsed = std::make_shared<ParsedCrl>();
    if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion ||
        !Read(o, "name", parsed->name) || !Read(o, "crl", parsed->pem) ||
        !Read(o, "signature_verified", parsed->signature_verified)) {
      return malformed();
    }
    parsed->crl = ParseCrlText(parsed->pem);
    if (parsed->crl == nullptr) return malformed();
    parsed->FillSerials();
    std::string name = parsed->name;
    crls[name] = std::move(parsed);
  }
  absl::MutexLock lock(&mu_);
  roles_ = std::move(roles);
  crls_ = std::move(crls);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<CertAuthStore::ParsedRole>> CertAuthStore::Prepare(CertRole role) {
  auto parsed = std::make_shared<ParsedRole>();
  WARD_ASSIGN_OR_RETURN(role.token_bound_cidrs,
                        NormalizeCidrs(role.token_bound_cidrs, parsed->networks));
  parsed->certs = ParsePemCertificates(role.certificate);
  if (parsed->certs.empty()) return absl::InvalidArgumentError("failed to parse certificate");
  X509* first = parsed->certs.front().get();
  parsed->is_ca = IsCa(first);
  if (!parsed->is_ca) {
    // Vault's rule: a pinned leaf must be usable for TLS client authentication.
    uint32_t flags = X509_get_extension_flags(first);
    if ((flags & EXFLAG_XKUSAGE) != 0 && (X509_get_extended_key_usage(first) & XKU_SSL_CLIENT) == 0) {
      return absl::InvalidArgumentError(
          "nonCA certificates should have TLS client authentication set as an extended key "
          "usage");
    }
    parsed->pinned_der = DerOf(first);
    if (parsed->pinned_der.empty()) return absl::InvalidArgumentError("failed to parse certificate");
  } else {
    parsed->store.reset(X509_STORE_new());
    if (parsed->store == nullptr) return absl::InternalError("X509_STORE_new failed");
    for (const crypto::X509Ptr& c : parsed->certs) {
      if (X509_STORE_add_cert(parsed->store.get(), c.get()) != 1) {
        // Adding the same certificate twice is not an error worth refusing the role for.
        ERR_clear_error();
      }
    }
  }
  parsed->role = std::move(role);
  return parsed;
}

absl::Status CertAuthStore::CheckOpen() const {
  if (closed_) return absl::FailedPreconditionError("auth mount is being disabled");
  return absl::OkStatus();
}

void CertAuthStore::ClearCacheLocked() const {
  absl::MutexLock lock(&cache_mu_);
  cache_.clear();
  ++generation_;
}

std::vector<std::shared_ptr<const CertAuthStore::ParsedRole>> CertAuthStore::Candidates(
    std::string_view name) const {
  std::vector<std::shared_ptr<const ParsedRole>> out;
  if (!name.empty()) {
    auto it = roles_.find(std::string(name));
    if (it != roles_.end()) out.push_back(it->second);
  } else {
    for (const auto& [n, r] : roles_) out.push_back(r);
  }
  return out;
}

absl::StatusOr<CertRole> CertAuthStore::WriteRole(std::string_view name,
                                                  const CertRoleUpdate& update) {
  if (!ValidRoleName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid certificate name \"", core::ToAbsl(name), "\""));
  }
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  CertRole role;
  bool exists = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = roles_.find(std::string(name));
    if (it != roles_.end()) {
      role = it->second->role;
      exists = true;
    }
  }
  role.name = std::string(name);
  if (update.certificate) role.certificate = *update.certificate;
  if (update.allowed_common_names) role.allowed_common_names = *update.allowed_common_names;
  if (update.allowed_dns_sans) role.allowed_dns_sans = *update.allowed_dns_sans;
  if (update.allowed_email_sans) role.allowed_email_sans = *update.allowed_email_sans;
  if (update.allowed_uri_sans) role.allowed_uri_sans = *update.allowed_uri_sans;
  if (update.allowed_organizational_units) {
    role.allowed_organizational_units = *update.allowed_organizational_units;
  }
  if (update.display_name) role.display_name = *update.display_name;
  if (update.token_policies) role.token_policies = *update.token_policies;
  if (update.token_ttl) role.token_ttl = *update.token_ttl;
  if (update.token_max_ttl) role.token_max_ttl = *update.token_max_ttl;
  if (update.token_type) role.token_type = *update.token_type;
  if (update.token_no_default_policy) role.token_no_default_policy = *update.token_no_default_policy;
  // Vault's tokenutil.UpgradeValue: the new name wins; the legacy name alone sets both.
  if (update.token_bound_cidrs) {
    role.token_bound_cidrs = *update.token_bound_cidrs;
    role.legacy_bound_cidrs = false;
  } else if (update.bound_cidrs) {
    role.token_bound_cidrs = *update.bound_cidrs;
    role.legacy_bound_cidrs = !update.bound_cidrs->empty();
  }

  if (!exists && role.certificate.empty()) return absl::InvalidArgumentError("missing certificate");
  if (role.display_name.empty()) role.display_name = role.name;
  if (role.token_ttl < absl::ZeroDuration() || role.token_max_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("durations cannot be negative");
  }
  if (role.token_max_ttl > absl::ZeroDuration() && role.token_ttl > role.token_max_ttl) {
    return absl::InvalidArgumentError("token_ttl should not be greater than token_max_ttl");
  }
  if (role.token_type.empty()) role.token_type = "default";
  if (role.token_type != "default" && role.token_type != "service") {
    return absl::InvalidArgumentError(absl::StrCat(
        "token_type \"", role.token_type, "\" is not supported: only service tokens exist"));
  }
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<ParsedRole> parsed, Prepare(role));
  role = parsed->role;  // with the networks in display form
  WARD_RETURN_IF_ERROR(barrier_.Put(RoleKey(role.name), SerializeRole(role)).status());
  {
    absl::MutexLock lock(&mu_);
    roles_[role.name] = std::move(parsed);
    ClearCacheLocked();
  }
  return role;
}

absl::StatusOr<CertRole> CertAuthStore::ReadRole(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = roles_.find(std::string(name));
  if (it == roles_.end()) return absl::NotFoundError("certificate role not found");
  return it->second->role;
}

std::vector<std::string> CertAuthStore::ListRoles() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, role] : roles_) out.push_back(name);
  return out;
}

absl::Status CertAuthStore::DeleteRole(std::string_view name_in) {
  std::string name(name_in);
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  {
    absl::ReaderMutexLock lock(&mu_);
    if (roles_.find(name) == roles_.end()) return absl::OkStatus();
  }
  WARD_RETURN_IF_ERROR(barrier_.Delete(RoleKey(name)).status());
  absl::MutexLock lock(&mu_);
  roles_.erase(name);
  ClearCacheLocked();
  return absl::OkStatus();
}

CertAuthStore::Crls CertAuthStore::CrlSnapshot() const {
  Crls out;
  out.reserve(crls_.size());
  for (const auto& [name, crl] : crls_) out.push_back(crl);
  return out;
}

absl::StatusOr<CertCrl> CertAuthStore::WriteCrl(std::string_view name_in, std::string_view text) {
  std::string name = absl::AsciiStrToLower(core::ToAbsl(name_in));
  if (!ValidRoleName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CRL name \"", name, "\""));
  }
  auto parsed = std::make_shared<ParsedCrl>();
  parsed->name = name;
  parsed->crl = ParseCrlText(text);
  if (parsed->crl == nullptr) return absl::InvalidArgumentError("failed to parse CRL");
  parsed->pem = Pem(parsed->crl.get());
  if (parsed->pem.empty()) return absl::InternalError("PEM_write_bio_X509_CRL failed");
  parsed->FillSerials();

  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  {
    // Roles change only under write_mu_, so the check holds until the CRL is stored.
    absl::ReaderMutexLock lock(&mu_);
    WARD_ASSIGN_OR_RETURN(parsed->signature_verified,
                          VerifyCrlSignature(parsed->crl.get(), roles_));
  }
  WARD_RETURN_IF_ERROR(
      barrier_.Put(CrlKey(name), SerializeCrl(name, parsed->pem, parsed->signature_verified))
          .status());
  CertCrl view = parsed->View();
  {
    absl::MutexLock lock(&mu_);
    crls_[name] = std::move(parsed);
    ClearCacheLocked();
  }
  return view;
}

absl::StatusOr<CertCrl> CertAuthStore::ReadCrl(std::string_view name_in) const {
  std::string name = absl::AsciiStrToLower(core::ToAbsl(name_in));
  absl::ReaderMutexLock lock(&mu_);
  auto it = crls_.find(name);
  if (it == crls_.end()) return absl::NotFoundError(absl::StrCat("no such CRL ", name));
  return it->second->View();
}

std::vector<std::string> CertAuthStore::ListCrls() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, crl] : crls_) out.push_back(name);
  return out;
}

absl::Status CertAuthStore::DeleteCrl(std::string_view name_in) {
  std::string name = absl::AsciiStrToLower(core::ToAbsl(name_in));
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  {
    absl::ReaderMutexLock lock(&mu_);
    if (crls_.find(name) == crls_.end()) {
      return absl::NotFoundError(absl::StrCat("no such CRL ", name));
    }
  }
  WARD_RETURN_IF_ERROR(barrier_.Delete(CrlKey(name)).status());
  absl::MutexLock lock(&mu_);
  crls_.erase(name);
  ClearCacheLocked();
  return absl::OkStatus();
}

absl::StatusOr<CertMatch> CertAuthStore::MatchAt(
    const std::vector<std::string>& chain_der,
    const std::vector<std::shared_ptr<const ParsedRole>>& candidates, const Crls& crls,
    absl::Time now, std::pair<absl::Time, absl::Time>* window) {
  if (chain_der.empty()) return absl::InvalidArgumentError(std::string(kNoCertificate));
  std::pair<absl::Time, absl::Time> w{absl::InfinitePast(), absl::InfiniteFuture()};
  std::vector<crypto::X509Ptr> chain;
  for (const std::string& der : chain_der) {
    crypto::X509Ptr c = ParseDer(der);
    if (c == nullptr) {
      if (chain.empty()) return absl::InvalidArgumentError(std::string(kInvalidCertificate));
      continue;  // an unusable intermediate is simply not offered
    }
    Narrow(c.get(), w);
    chain.push_back(std::move(c));
  }
  X509* leaf = chain.front().get();
  X509StackPtr untrusted(sk_X509_new_null());
  if (untrusted == nullptr) return absl::InternalError("sk_X509_new_null failed");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) == 0) {
      return absl::InternalError("sk_X509_push failed");
    }
  }

  bool verified_any = false;
  for (const std::shared_ptr<const ParsedRole>& candidate : candidates) {
    const ParsedRole& p = *candidate;
    for (const crypto::X509Ptr& c : p.certs) Narrow(c.get(), w);
    bool trusted = false;
    bool revoked = false;
    auto is_revoked = [&crls](X509* cert) {
      const std::string serial = DecimalSerial(cert);
      return std::any_of(crls.begin(), crls.end(),
                         [cert, &serial](const std::shared_ptr<const ParsedCrl>& c) {
                           return c->Revokes(cert, serial);
                         });
    };
    if (!p.is_ca) {
      absl::Time not_before = FromAsn1Time(X509_get0_notBefore(leaf), absl::InfiniteFuture());
      absl::Time not_after = FromAsn1Time(X509_get0_notAfter(leaf), absl::InfinitePast());
      trusted = chain_der.front() == p.pinned_der && not_before <= now && now <= not_after;
      revoked = trusted && is_revoked(leaf);
    } else {
      crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
      if (ctx == nullptr ||
          X509_STORE_CTX_init(ctx.get(), p.store.get(), leaf, untrusted.get()) != 1) {
        return absl::InternalError("X509_STORE_CTX_init failed");
      }
      X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
      // Any of the role's certificates is an anchor, as in Go's x509.Verify with Roots: an
      // intermediate CA configured on a role need not be followed up to its root.
      X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
      X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
      trusted = X509_verify_cert(ctx.get()) == 1;
      ERR_clear_error();
      if (trusted && !crls.empty()) {
        // Every certificate of the chain OpenSSL built (leaf, intermediates, anchor), as Vault
        // checks every certificate of its verified chain.
        STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
        for (int i = 0; i < sk_X509_num(built) && !revoked; ++i) {
          revoked = is_revoked(sk_X509_value(built, i));
        }
      }
    }
    if (!trusted) continue;
    verified_any = true;
    if (revoked) continue;  // Vault: a revoked chain does not match the role's constraints
    const CertRole& r = p.role;
    std::vector<std::string> cns = SubjectValues(leaf, NID_commonName);
    // Go's pkix.Name keeps the last common name of the subject.
    std::string cn = cns.empty() ? "" : cns.back();
    if (!AnyMatch(r.allowed_common_names, {cn}) ||
        !AnyMatch(r.allowed_dns_sans, Sans(leaf, GEN_DNS)) ||
        !AnyMatch(r.allowed_email_sans, Sans(leaf, GEN_EMAIL)) ||
        !AnyMatch(r.allowed_uri_sans, Sans(leaf, GEN_URI)) ||
        !AnyMatch(r.allowed_organizational_units,
                  SubjectValues(leaf, NID_organizationalUnitName))) {
      continue;
    }
    CertMatch m;
    m.role_name = r.name;
    m.display_name = r.display_name;
    m.token_policies = r.token_policies;
    m.token_ttl = r.token_ttl;
    m.token_max_ttl = r.token_max_ttl;
    m.token_no_default_policy = r.token_no_default_policy;
    m.token_bound_cidrs = r.token_bound_cidrs;
    m.token_bound_networks = p.networks;
    m.metadata = {{"cert_name", r.name},
                  {"common_name", cn},
                  {"serial_number", DecimalSerial(leaf)},
                  {"subject_key_id", ColonHex(X509_get0_subject_key_id(leaf))},
                  {"authority_key_id", ColonHex(X509_get0_authority_key_id(leaf))}};
    if (window != nullptr) *window = w;
    return m;
  }
  if (window != nullptr) *window = w;
  return absl::InvalidArgumentError(
      std::string(verified_any ? kNoConstraintMatch : kInvalidCertificate));
}

absl::StatusOr<CertMatch> CertAuthStore::Match(const std::vector<std::string>& chain_der,
                                               std::string_view name) const {
  std::vector<std::shared_ptr<const ParsedRole>> candidates;
  Crls crls;
  {
    absl::ReaderMutexLock lock(&mu_);
    candidates = Candidates(name);
    crls = CrlSnapshot();
  }
  return MatchAt(chain_der, candidates, crls, clock_.Now(), nullptr);
}

std::optional<CertMatch> CertAuthStore::MatchCached(
    const std::vector<std::string>& chain_der) const {
  if (chain_der.empty()) return std::nullopt;
  std::string key;
  for (const std::string& der : chain_der) {
    absl::StrAppend(&key, crypto::Sha256(der));
  }
  key = crypto::Sha256(key);
  absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.valid_from <= now && now <= it->second.valid_until) {
      ++cache_hits_;
      return it->second.match;
    }
  }
  std::vector<std::shared_ptr<const ParsedRole>> candidates;
  Crls crls;
  uint64_t generation = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    candidates = Candidates("");
    crls = CrlSnapshot();
    absl::MutexLock cache_lock(&cache_mu_);
    generation = generation_;
  }
  std::pair<absl::Time, absl::Time> window{absl::InfiniteFuture(), absl::InfinitePast()};
  absl::StatusOr<CertMatch> m = MatchAt(chain_der, candidates, crls, now, &window);
  if (!m.ok() && !absl::IsInvalidArgument(m.status())) return std::nullopt;  // not cacheable
  std::optional<CertMatch> result;
  if (m.ok()) result = *std::move(m);
  // Cache only inside the window where every certificate involved is valid (the decision does
  // not depend on the time there), and only if no role changed while matching.
  if (window.first <= now && now <= window.second) {
    absl::MutexLock lock(&cache_mu_);
    if (generation == generation_) {
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_[key] = CacheEntry{result, window.first, window.second};
    }
  }
  return result;
}

void CertAuthStore::Close() {
  absl::MutexLock write_lock(&write_mu_);
  closed_ = true;
}

uint64_t CertAuthStore::cache_hits() const {
  absl::MutexLock lock(&cache_mu_);
  return cache_hits_;
}

size_t CertAuthStore::cache_size() const {
  absl::MutexLock lock(&cache_mu_);
  return cache_.size();
}

}  // namespace ward::auth
