#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/approle_cidr.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::auth {

// One role ("certificate entry") of a TLS certificate auth mount, as auth/<mount>/certs/<name>
// reads it (Vault's parameter names).
struct CertRole {
  std::string name;
  // PEM: one or more certificates. If the first is a CA, a client chain must verify to one of
  // them (each is a trust anchor, intermediates included); otherwise the client's leaf must be
  // exactly that certificate (pinning).
  std::string certificate;
  // Globs (Vault's go-glob: '*' matches any run of characters, '/' included). Empty list: no
  // constraint. A non-empty list needs at least one pattern to match at least one value.
  std::vector<std::string> allowed_common_names;          // the subject's common name
  std::vector<std::string> allowed_dns_sans;              // DNS subjectAltNames
  std::vector<std::string> allowed_email_sans;            // email subjectAltNames
  std::vector<std::string> allowed_uri_sans;              // URI subjectAltNames (SPIFFE ids)
  std::vector<std::string> allowed_organizational_units;  // the subject's OU values
  std::string display_name;                               // defaults to the role name
  std::vector<std::string> token_policies;                // as given (the token store sanitises)
  absl::Duration token_ttl = absl::ZeroDuration();        // 0 = the token store's default
  absl::Duration token_max_ttl = absl::ZeroDuration();    // 0 = the token store's max
  std::string token_type = "default";  // "default" or "service": both issue service tokens
  bool token_no_default_policy = false;
  // Vault's token_bound_cidrs: networks (or single addresses) the role's certificates may log
  // in or act as direct identity from, and that its tokens are bound to. Empty = anywhere.
  // Held in Vault's display form (go-sockaddr): a single host without its "/32" or "/128", IPv6
  // in canonical text; host bits beyond the prefix are kept as given ("10.1.2.3/8").
  std::vector<std::string> token_bound_cidrs;
  // Whether the last write that set the networks used the legacy name `bound_cidrs` (and not
  // `token_bound_cidrs`): a read then shows `bound_cidrs` too, as Vault does.
  bool legacy_bound_cidrs = false;
};

// The parameters of a role write; nullopt leaves the field as it is (or at its default when the
// role is new).
struct CertRoleUpdate {
  std::optional<std::string> certificate;
  std::optional<std::vector<std::string>> allowed_common_names;
  std::optional<std::vector<std::string>> allowed_dns_sans;
  std::optional<std::vector<std::string>> allowed_email_sans;
  std::optional<std::vector<std::string>> allowed_uri_sans;
  std::optional<std::vector<std::string>> allowed_organizational_units;
  std::optional<std::string> display_name;
  std::optional<std::vector<std::string>> token_policies;
  std::optional<absl::Duration> token_ttl;
  std::optional<absl::Duration> token_max_ttl;
  std::optional<std::string> token_type;
  std::optional<bool> token_no_default_policy;
  std::optional<std::vector<std::string>> token_bound_cidrs;
  // The legacy name; used only when token_bound_cidrs is not given (Vault's UpgradeValue).
  std::optional<std::vector<std::string>> bound_cidrs;
};

// A client certificate chain that a role accepted: what the token (or the in-memory identity)
// must look like.
struct CertMatch {
  std::string role_name;
  std::string display_name;  // the role's display_name
  std::vector<std::string> token_policies;
  absl::Duration token_ttl = absl::ZeroDuration();
  absl::Duration token_max_ttl = absl::ZeroDuration();
  bool token_no_default_policy = false;
  // Vault's login metadata: cert_name, common_name, serial_number (decimal), subject_key_id and
  // authority_key_id (lower-case colon hex; "" if the leaf has none).
  std::map<std::string, std::string> metadata;
  // The role's token_bound_cidrs (display form, as CertRole) and the same networks parsed.
  std::vector<std::string> token_bound_cidrs;
  std::vector<Cidr> token_bound_networks;

  // Whether a client at `remote_address` (an IP address as text) may use this match: true if
  // the role has no token_bound_cidrs or one contains the address; false for text that is not
  // an address.
  bool AllowsSource(std::string_view remote_address) const {
    return AddressAllowed(token_bound_networks, remote_address);
  }
};

// A certificate revocation list of a cert mount (auth/<mount>/crls/<name>), as a read shows it.
struct CertCrl {
  std::string name;
  // The CRL's issuer, one line (OpenSSL's RFC 2253 form), for logs and tests.
  std::string issuer;
  // The revoked serial numbers, decimal, sorted as strings (the order of Vault's JSON keys).
  std::vector<std::string> serials;
  // Whether the CRL's signature was checked at upload: true if a role certificate of the mount
  // had the CRL's issuer as its subject (the signature then verified with that key), false if
  // no such certificate was known.
  bool signature_verified = false;
};

// Vault's glob (github.com/ryanuber/go-glob): `pattern` without '*' must equal `value`; each '*'
// matches any run of characters, including none and including '/'. "*" matches everything.
bool CertGlobMatch(std::string_view pattern, std::string_view value);

// The roles of one TLS certificate auth mount (Vault's cert method), and the matching of client
// certificate chains against them.
//
// Storage (docs/cert-auth.md), every value through the barrier under `prefix`:
//   <prefix>cert/<name>   the role (JSON)
//   <prefix>crls/<name>   a CRL (JSON around its PEM)
// Roles and CRLs are held in memory after Create, parsed once, so matching never touches
// storage.
//
// Matching (Match) verifies the chain with OpenSSL's X509_verify_cert against the role's
// certificates as trust anchors (partial chains allowed, purpose TLS client, time from `clock`),
// the client's further certificates as untrusted intermediates; then refuses the chain if a CRL
// of the mount revokes any certificate of the verified chain (same issuer name and serial), and
// checks the constraints. Results are cached per (chain, role and CRL table) for direct
// identity: a hit is only used while the clock is inside the validity window of every
// certificate involved, and any role or CRL write or delete empties the cache. The roles'
// token_bound_cidrs are not part of matching: callers check CertMatch::AllowsSource.
//
// Thread-safe. Reads and matching take a reader lock (the cache its own mutex); writes are
// serialised by a writer mutex held across their one barrier write; the in-memory state changes
// only after the write succeeds. `barrier` and `clock` are borrowed and must outlive the store.
class CertAuthStore {
 public:
  // Loads every role and CRL under `prefix`. REQUIRES: the barrier is unsealed; `prefix` ends
  // with '/'. Errors: barrier errors; kDataLoss for a malformed stored role or CRL.
  static absl::StatusOr<std::unique_ptr<CertAuthStore>> Create(barrier::Barrier& barrier,
                                                               core::Clock& clock,
                                                               std::string prefix);
  ~CertAuthStore();
  CertAuthStore(const CertAuthStore&) = delete;
  CertAuthStore& operator=(const CertAuthStore&) = delete;

  // Creates role `name` or updates it with the fields `update` sets. Returns the role as stored.
  // Errors: kInvalidArgument for an invalid name, a missing certificate on a new role
  //         ("missing certificate"), a certificate that does not parse ("failed to parse
  //         certificate"), a non-CA certificate without the TLS client extended key usage,
  //         a negative duration, token_ttl above token_max_ttl, a token_type other than
  //         "default"/"service", or a token_bound_cidrs (bound_cidrs) entry that is not a CIDR
  //         block or an address ("invalid CIDR block \"...\""); kFailedPrecondition after
  //         Close; barrier errors. Nothing is changed on error.
  absl::StatusOr<CertRole> WriteRole(std::string_view name, const CertRoleUpdate& update);

  // Errors: kNotFound if there is no such role.
  absl::StatusOr<CertRole> ReadRole(std::string_view name) const;

  // Role names, sorted.
  std::vector<std::string> ListRoles() const;

  // Deletes the role. OK if absent. Errors: kFailedPrecondition after Close; barrier errors.
  absl::Status DeleteRole(std::string_view name);

  // Creates or replaces CRL `name` (lower-cased, as Vault does) from `crl`: PEM ("-----BEGIN
  // X509 CRL-----"; the first CRL block is used) or DER. If a role certificate of this mount has
  // the CRL's issuer as its subject, the CRL's signature must verify with one such
  // certificate's key; otherwise it is stored unverified (a CRL can only refuse certificates).
  // The CRL's validity dates are not checked (Vault ignores them too). Returns the CRL as read.
  // Errors: kInvalidArgument for an invalid name, "failed to parse CRL", or "CRL signature does
  //         not verify with the certificate of its issuer"; kFailedPrecondition after Close;
  //         barrier errors.
  absl::StatusOr<CertCrl> WriteCrl(std::string_view name, std::string_view crl);

  // Errors: kNotFound if there is no CRL `name` (lower-cased).
  absl::StatusOr<CertCrl> ReadCrl(std::string_view name) const;

  // CRL names, sorted.
  std::vector<std::string> ListCrls() const;

  // Deletes CRL `name` (lower-cased). Errors: kNotFound if there is none; kFailedPrecondition
  // after Close; barrier errors.
  absl::Status DeleteCrl(std::string_view name);

  // Finds the first role (by name, or only role `name` when it is not empty) that accepts the
  // client chain `chain_der` (leaf first, DER). Uncached (logins are rare and audited).
  // Errors, all kInvalidArgument with Vault's messages (the login answers 400):
  //   "client certificate must be supplied" if `chain_der` is empty;
  //   "invalid certificate or no client certificate supplied" if the leaf does not parse or no
  //   (named) role's certificates verify the chain;
  //   "no chain matching all constraints could be found for this login certificate" if a role
  //   verified the chain but a CRL revokes a certificate of that chain or the role's name
  //   constraints refused it.
  absl::StatusOr<CertMatch> Match(const std::vector<std::string>& chain_der,
                                  std::string_view name) const;

  // As Match with no name, for direct identity: nullopt if no role accepts the chain. Cached as
  // described above.
  std::optional<CertMatch> MatchCached(const std::vector<std::string>& chain_der) const;

  // Makes every later write fail with kFailedPrecondition, waiting for one in progress. Called
  // before the mount's storage is deleted, so no write lands after it.
  void Close();

  // Cache statistics (for tests): lookups answered from the cache, and entries held.
  uint64_t cache_hits() const;
  size_t cache_size() const;

 private:
  struct ParsedRole;
  struct ParsedCrl;
  using Crls = std::vector<std::shared_ptr<const ParsedCrl>>;
  struct CacheEntry {
    std::optional<CertMatch> match;
    absl::Time valid_from;
    absl::Time valid_until;
  };

  CertAuthStore(barrier::Barrier& barrier, core::Clock& clock, std::string prefix);
  absl::Status Load();
  std::string RoleKey(std::string_view name) const;
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Empties the cache and invalidates matches in progress. Called after every change of roles_.
  void ClearCacheLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Parses and checks a role's certificate for use. Errors: kInvalidArgument as WriteRole.
  static absl::StatusOr<std::shared_ptr<ParsedRole>> Prepare(CertRole role);
  // The roles a match considers: `name` only, or all by name.
  std::vector<std::shared_ptr<const ParsedRole>> Candidates(std::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Crls CrlSnapshot() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string CrlKey(std::string_view name) const;
  // The shared work of Match and MatchCached, over `candidates` in order, with `crls` applied.
  // `window` (if not null) receives the validity window of every certificate the decision
  // depended on.
  static absl::StatusOr<CertMatch> MatchAt(
      const std::vector<std::string>& chain_der,
      const std::vector<std::shared_ptr<const ParsedRole>>& candidates, const Crls& crls,
      absl::Time now, std::pair<absl::Time, absl::Time>* window);

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const std::string prefix_;

  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool closed_ ABSL_GUARDED_BY(write_mu_) = false;

  mutable absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(cache_mu_);
  std::map<std::string, std::shared_ptr<const ParsedRole>> roles_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const ParsedCrl>> crls_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(cache_mu_);
  mutable uint64_t cache_hits_ ABSL_GUARDED_BY(cache_mu_) = 0;
  // Bumped by every role or CRL change: a match computed against older ones is not cached.
  mutable uint64_t generation_ ABSL_GUARDED_BY(cache_mu_) = 0;
};

}  // namespace ward::auth
