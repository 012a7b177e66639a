#pragma once

// Ward's internal CA: a Vault-PKI-shaped secrets engine that issues SPIFFE X509-SVIDs.
// docs/pki.md describes the model, the storage layout and the CA rotation runbook.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "pki/certs.h"
#include "pki/role.h"

namespace ward::pki {

namespace internal {
struct IssuerEntry;
struct CertIndexEntry;
struct CrlEntry;
}  // namespace internal

// The life of an issuer (a CA certificate and its key).
//   kPending   intermediate key and CSR generated, waiting for SetSignedIntermediate; not in
//              the trust bundle; cannot sign.
//   kPublished in the trust bundle, not issuing (the next CA during a rotation, or the old CA
//              after Activate moved issuing away from it).
//   kActive    in the trust bundle and may sign (leaves, intermediates, CRLs). The default
//              issuer is always active.
//   kRetired   out of the trust bundle; cannot sign leaves; still signs its CRL.
enum class IssuerState { kPending, kPublished, kActive, kRetired };
std::string_view IssuerStateName(IssuerState state);  // "pending", "published", ...

// An issuer as GET pki/issuer/:ref reports it (plus Ward's state).
struct IssuerInfo {
  std::string issuer_id;    // UUID
  std::string issuer_name;  // unique within the mount, may be empty
  IssuerState state = IssuerState::kActive;
  bool is_default = false;
  std::string certificate;            // PEM; empty while pending
  std::vector<std::string> ca_chain;  // PEM, this certificate first, then its parents
  std::string key_type;               // "ec", "ed25519", "rsa"
  int key_bits = 0;
  std::string serial_number;  // colon hex; empty while pending
  std::string common_name;
  std::string trust_domain_id;  // the CA's URI SAN ("spiffe://example.org") or ""
  absl::Time not_before = absl::InfinitePast();
  absl::Time not_after = absl::InfinitePast();  // for expiry metrics; InfinitePast if pending
  int path_len = -1;                            // basicConstraints pathlen; -1 none
  std::string csr;                              // pending intermediates: the PEM CSR
  // The latest notAfter of a leaf this issuer signed that the engine knows of (stored
  // certificates, plus no_store ones issued since this process started).
  absl::Time latest_leaf_not_after = absl::InfinitePast();
};

// Parameters of pki/root/generate/:type, pki/issuers/generate/root/:type and of PrepareNext.
struct RootRequest {
  bool exported = false;     // :type "exported": return the private key once
  std::string common_name;   // required
  std::string trust_domain;  // "example.org": adds the URI SAN spiffe://example.org
  KeySpec key;               // key_type / key_bits
  absl::Duration ttl = absl::Hours(24 * 365);  // validity; Ward default one year
  std::optional<absl::Time> not_after;         // Vault's not_after: replaces ttl when set
  int max_path_length = -1;                    // -1: unlimited
  std::string issuer_name;                     // optional, unique
};

// Parameters of pki/intermediate/generate/:type.
struct IntermediateRequest {
  bool exported = false;
  std::string common_name;   // required
  std::string trust_domain;  // optional URI SAN spiffe://<td> in the CSR
  KeySpec key;
  std::string issuer_name;  // name the issuer gets once signed
};

// Parameters of pki/root/sign-intermediate (pki/issuer/:ref/sign-intermediate).
struct SignIntermediateRequest {
  std::string issuer_ref = "default";
  std::string csr;           // PEM
  std::string common_name;   // "" : the CSR's
  std::string trust_domain;  // "" : the CSR's spiffe:// URI SAN (must have no path)
  absl::Duration ttl = absl::Hours(24 * 365);  // clamped to the issuer's notAfter
  int max_path_length = -1;                    // -1: one less than the issuer's, or none
};

// A generated issuer; `private_key` is set only for exported roots/intermediates and is the
// only time the key leaves the engine.
struct GeneratedIssuer {
  IssuerInfo issuer;
  std::optional<core::SecureBytes> private_key;  // PKCS#8 PEM
  std::string private_key_type;                  // set with private_key
};

// What issue/sign (and sign-intermediate) return, with Vault's field names.
struct IssuedCertificate {
  std::string certificate;                       // PEM
  std::string issuing_ca;                        // PEM of the signing issuer
  std::vector<std::string> ca_chain;             // PEM: the issuer and its parents
  std::optional<core::SecureBytes> private_key;  // issue only: PKCS#8 PEM
  std::string private_key_type;                  // issue only: "ec", "ed25519", "rsa"
  std::string serial_number;                     // colon hex
  int64_t expiration = 0;                        // notAfter, unix seconds
  int64_t not_before = 0;                        // unix seconds
  std::string issuer_id;
  std::vector<std::string> warnings;  // e.g. the ttl was capped to max_ttl
};

// A stored certificate (pki/cert/:serial).
struct CertRecord {
  std::string serial_number;  // colon hex
  std::string certificate;    // PEM
  std::string issuer_id;
  absl::Time not_after;
  std::optional<absl::Time> revocation_time;
};

// What DeleteIssuer did.
struct DeletedIssuer {
  bool found = false;              // false: no such issuer (nothing changed; Vault answers success)
  std::string issuer_id;           // set when found
  bool was_default = false;        // the mount now has no default issuer until one is set
  std::vector<std::string> roles;  // roles whose issuer_ref named it (they cannot issue now)
};

struct TidyResult {
  size_t certs_deleted = 0;    // expired certificate records removed
  size_t revoked_deleted = 0;  // of which were revoked (their CRL entries are gone too)
};

// Settings of one PKI mount.
struct PkiOptions {
  // CRL nextUpdate - thisUpdate until pki/config/crl sets `expiry`.
  absl::Duration crl_expiry = absl::Hours(72);
  absl::Duration bundle_refresh_hint = absl::Minutes(5);  // spiffe_refresh_hint
};

// One PKI mount: issuers (roots, intermediates, rotation), roles, issuance of X509-SVIDs,
// certificate records, revocation and CRLs, and the trust bundle.
//
// Storage: every key under `storage_prefix`, every value through the barrier (layout in
// docs/pki.md). All state except certificate PEMs is held in memory after Create; writes are
// durable when they return OK. Changes written by other nodes are seen only after a new
// Create (multi-node refresh is not wired yet).
//
// Thread-safe. Issuer, role, revocation and tidy changes are serialised by a writer mutex held
// across their barrier commit. Issue/Sign generate keys outside every lock and run
// concurrently with each other; they hold a shared lock only while signing and recording,
// which issuer changes (Activate, Retire, ...) take exclusively, so a retired issuer never
// signs. Bundle and CRL reads take a short reader lock on an immutable snapshot and never
// wait for issuance. Every mutating method may block on storage I/O. Barrier errors pass
// through (kUnavailable when sealed). `barrier` and `clock` are borrowed and must outlive
// the engine. Private keys are never logged and never appear in error messages.
class PkiEngine {
 public:
  // Loads issuers, roles, certificate index and CRLs from under `storage_prefix` (it should
  // end with '/', e.g. "logical/<mount uuid>/").
  // Errors: barrier errors; kDataLoss for a malformed stored record.
  static absl::StatusOr<std::unique_ptr<PkiEngine>> Create(barrier::Barrier& barrier,
                                                           core::Clock& clock,
                                                           std::string storage_prefix,
                                                           PkiOptions options = {});
  ~PkiEngine();
  PkiEngine(const PkiEngine&) = delete;
  PkiEngine& operator=(const PkiEngine&) = delete;

  // ---- Issuers -------------------------------------------------------------------------

  // Generates a self-signed root issuer (SPIFFE signing-certificate profile). The first issuer
  // of the mount becomes active and the default; later ones are active but not default (use
  // SetDefaultIssuer or the rotation calls).
  // Errors: kInvalidArgument for an empty/overlong common_name, a bad trust_domain, a
  //         non-positive ttl, or an issuer_name already used; kInternal if OpenSSL fails;
  //         barrier errors.
  absl::StatusOr<GeneratedIssuer> GenerateRoot(const RootRequest& request);

  // Imports a CA bundle (PEM certificates and one private key, any order): the CA
  // certificate matching the key becomes an issuer, the other certificates its ca_chain
  // (ordered by issuer). Active; the default if it is the first issuer.
  // Errors: kInvalidArgument if there is no key, no CA certificate (basicConstraints CA:TRUE
  //         with keyCertSign) matches it, its key algorithm is unsupported, it carries a URI
  //         SAN that is not a path-less SPIFFE ID, or issuer_name is taken;
  //         kAlreadyExists if that certificate is already an issuer; barrier errors.
  absl::StatusOr<IssuerInfo> ImportIssuer(std::string_view pem_bundle,
                                          std::string_view issuer_name);

  // Generates an intermediate key and CSR; the issuer is pending until SetSignedIntermediate.
  // Returns it with `issuer.csr` set (and the key if exported).
  // Errors: as GenerateRoot.
  absl::StatusOr<GeneratedIssuer> GenerateIntermediate(const IntermediateRequest& request);

  // Signs an intermediate CSR with an active issuer: a CA certificate (SPIFFE signing profile)
  // with pathlen per the request. The result is not recorded as an issuer of this mount
  // (the requester installs it with its own SetSignedIntermediate).
  // Errors: kInvalidArgument for a bad CSR or signature, no common name, a trust domain that
  //         is not a path-less SPIFFE ID; kNotFound for an unknown issuer_ref;
  //         kFailedPrecondition if the issuer is not active or its pathlen is 0 or too small;
  //         kInternal; barrier errors.
  absl::StatusOr<IssuedCertificate> SignIntermediate(const SignIntermediateRequest& request);

  // Installs a signed intermediate (pki/intermediate/set-signed): the first certificate of
  // `pem_bundle` must match a pending issuer's key; further certificates become its ca_chain
  // (any that is already an issuer's certificate is found by itself). The issuer becomes
  // active, and the default if there was none.
  // Errors: kInvalidArgument if the bundle has no certificate or it is not a CA;
  //         kNotFound if no pending issuer has its key; barrier errors.
  absl::StatusOr<IssuerInfo> SetSignedIntermediate(std::string_view pem_bundle);

  // All issuers, by issuer_id. Never fails.
  std::vector<IssuerInfo> ListIssuers() const;
  // `ref` is an issuer_id, an issuer_name, or "default".
  // Errors: kNotFound for an unknown ref (or "default" with no issuers).
  absl::StatusOr<IssuerInfo> ReadIssuer(std::string_view ref) const;
  // Renames an issuer (POST pki/issuer/:ref issuer_name). Errors: kNotFound; kInvalidArgument
  // if the name is taken, is "default", or has characters other than [A-Za-z0-9_-].
  absl::StatusOr<IssuerInfo> RenameIssuer(std::string_view ref, std::string_view issuer_name);
  // Makes an issuer the default (pki/config/issuers default=...). A published issuer becomes
  // active. Errors: kNotFound; kFailedPrecondition if it is pending or retired.
  absl::Status SetDefaultIssuer(std::string_view ref);

  // ---- CA rotation with overlapping trust (docs/pki.md runbook) -----------------------

  // Generates the next root: published in the trust bundle at once, but not issuing.
  // Errors: as GenerateRoot.
  absl::StatusOr<GeneratedIssuer> PrepareNext(const RootRequest& request);
  // Switches issuing to `ref`: it becomes active and the default; the previous default becomes
  // published (still trusted, no longer issuing). Errors: kNotFound; kFailedPrecondition if it
  // is pending or retired, or expired.
  absl::Status Activate(std::string_view ref);
  // Deletes an issuer (DELETE pki/issuer/:ref, as Vault): its record, key and CRL. It leaves
  // the trust bundle at once (the sequence goes up if the bundle changed). If it was the
  // default, the mount has no default until SetDefaultIssuer/Activate or the next generated,
  // imported or signed issuer (which becomes the default); CaPem, CrlDer("default") and
  // issuance through "default" answer kNotFound meanwhile. Certificate records it signed stay
  // (revoking them no longer changes any CRL). An unknown ref changes nothing and returns
  // found = false. Errors: barrier errors.
  absl::StatusOr<DeletedIssuer> DeleteIssuer(std::string_view ref);
  // Takes an issuer out of the trust bundle for good. Refused while a leaf it signed has not
  // expired (latest_leaf_not_after > now), unless `force`; the default issuer is never
  // retired. Errors: kNotFound; kFailedPrecondition (the message says until when leaves live,
  // or that it is the default).
  absl::Status Retire(std::string_view ref, bool force);

  // ---- Roles ------------------------------------------------------------------------------

  // Stores `role` (parsed with ParseRole). Errors: kInvalidArgument for an invalid name;
  // barrier errors.
  absl::Status WriteRole(const Role& role);
  // Errors: kNotFound.
  absl::StatusOr<Role> ReadRole(std::string_view name) const;
  std::vector<std::string> ListRoles() const;      // sorted
  absl::Status DeleteRole(std::string_view name);  // OK if absent; barrier errors

  // ---- Issuance -----------------------------------------------------------------------

  // Generates a key (the role's key_type/key_bits) and an X509-SVID for it
  // (pki/issue/:role). The lifetime is request.ttl or the role's ttl, capped to max_ttl with a
  // warning (as Vault), then clamped to the issuer's notAfter (role leaf_not_after_behavior
  // "truncate") or refused ("err"). An explicit request.not_after is used exactly, or refused
  // when it is not in the future, is later than now + max_ttl, or is past the issuer's
  // notAfter (always "err": an explicit date is never silently shortened).
  // Recorded under certs/ unless the role has no_store.
  // Errors: kNotFound for an unknown role or issuer_ref; kInvalidArgument for any name the
  //         role does not allow (message names the parameter, value and role; see CheckNames),
  //         a role with key_type "any", a notAfter past the issuer's with "err", or a refused
  //         not_after;
  //         kFailedPrecondition if the issuer is not active (pending, published, retired) or
  //         has expired; kInternal; barrier errors.
  absl::StatusOr<IssuedCertificate> Issue(std::string_view role_name, const IssueRequest& request);
  // Signs a PEM CSR (pki/sign/:role): verifies its signature, takes its public key, and checks
  // the CSR's and the request's names as Issue does. No private_key in the result.
  // Errors: as Issue, plus kInvalidArgument "csr is not a valid PEM certificate request",
  //         "csr signature does not verify", or a CSR key the role's key_type/key_bits refuse.
  absl::StatusOr<IssuedCertificate> Sign(std::string_view role_name, std::string_view csr_pem,
                                         const IssueRequest& request);

  // ---- Records, revocation, CRL ---------------------------------------------------------

  // Serial numbers of stored certificates (colon hex), sorted. Never fails.
  std::vector<std::string> ListCertificates() const;
  // `serial` with ':' or '-' separators. Errors: kInvalidArgument for a malformed serial;
  // kNotFound if not stored; barrier errors.
  absl::StatusOr<CertRecord> ReadCertificate(std::string_view serial) const;
  // Revokes a stored certificate and rebuilds its issuer's CRL, in one commit. Revoking twice
  // returns the first revocation_time. Errors: kInvalidArgument for a malformed serial;
  // kNotFound if not stored (no_store certificates cannot be revoked); barrier errors.
  absl::StatusOr<absl::Time> Revoke(std::string_view serial);
  // Colon-hex serials of revoked, stored certificates (for the TLS listener). Never fails.
  std::vector<std::string> RevokedSerials() const;
  // The issuer's current CRL (DER / PEM). Errors: kNotFound for an unknown ref or a pending
  // issuer.
  absl::StatusOr<std::string> CrlDer(std::string_view issuer_ref = "default") const;
  absl::StatusOr<std::string> CrlPem(std::string_view issuer_ref = "default") const;
  // Re-signs every non-pending issuer's CRL with a new number and nextUpdate = now + the CRL
  // config's expiry (pki/crl/rotate). Errors: barrier errors; kInternal.
  absl::Status RebuildCrls();
  // The scheduled rebuild (Vault's auto_rebuild): when the CRL config has auto_rebuild, re-signs
  // every non-pending issuer's CRL whose nextUpdate is within auto_rebuild_grace_period of now
  // (or that has none), in one commit, so a published CRL never expires. Returns how many were
  // rebuilt (0 without auto_rebuild). The server calls it about once a minute on every PKI
  // mount while unsealed. Errors: barrier errors; kInternal.
  absl::StatusOr<size_t> RebuildDueCrls();
  // pki/config/crl. Set validates nothing (ParseCrlConfig does) except that enable_delta is
  // false; it stores the config and, when `disable` changes, rebuilds every CRL (empty while
  // disabled) in the same commit, as Vault does. Returns the stored config.
  // Errors: kInvalidArgument for enable_delta; barrier errors; kInternal.
  CrlConfig GetCrlConfig() const;
  absl::StatusOr<CrlConfig> SetCrlConfig(const CrlConfig& config);
  // thisUpdate and nextUpdate of the issuer's current CRL (for Last-Modified and tests).
  // Errors: kNotFound as CrlDer.
  absl::StatusOr<std::pair<absl::Time, absl::Time>> CrlTimes(
      std::string_view issuer_ref = "default") const;
  // Removes certificate records whose notAfter + safety_buffer has passed (revoked ones too,
  // which drops them from the CRLs, rebuilt if anything revoked was removed).
  // Errors: barrier errors.
  absl::StatusOr<TidyResult> Tidy(absl::Duration safety_buffer);

  // ---- Trust bundle ---------------------------------------------------------------------

  // PEM of every certificate in the trust bundle: each published or active issuer, plus the
  // self-signed root at the top of its ca_chain when that root is not itself an issuer here
  // (deduplicated). Never fails; empty with no issuers.
  std::string TrustBundlePem() const;
  // The SPIFFE bundle as a JWK set (one {"use":"x509-svid",...,"x5c":[...]} per certificate
  // of TrustBundlePem), with spiffe_sequence = BundleVersion() and spiffe_refresh_hint.
  std::string TrustBundleJwks() const;
  // Increases (by at least one) whenever the bundle's contents change; persisted, so it never
  // goes back across restarts. A listener polls it and reloads TrustBundlePem() on change.
  uint64_t BundleVersion() const;
  // When an issuer, the default or the bundle last changed in this process (the engine's
  // creation counts as a change). For Last-Modified on pki/ca, pki/issuer/:ref/pem, ...
  absl::Time IssuersModified() const;
  // The default issuer's certificate (pki/ca/pem, pki/ca DER via PemToDer) and chain
  // (pki/ca_chain). Errors: kNotFound with no default issuer.
  absl::StatusOr<std::string> CaPem() const;
  absl::StatusOr<std::string> CaChainPem() const;

  // ---- Metrics ----------------------------------------------------------------------------

  // Counts since this engine was created (docs/metrics.md). Lock-free; never fails.
  struct Stats {
    uint64_t certificates_issued = 0;   // leaves signed by Issue and Sign (stored or not)
    uint64_t certificates_revoked = 0;  // Revoke calls that revoked (not repeats)
  };
  Stats GetStats() const;

 private:
  using IssuerEntry = internal::IssuerEntry;
  using CertIndexEntry = internal::CertIndexEntry;
  using CrlEntry = internal::CrlEntry;

  // What readers see of the issuers; replaced whole on every issuer change.
  struct Snapshot;

  PkiEngine(barrier::Barrier& barrier, core::Clock& clock, std::string prefix, PkiOptions options);

  absl::Status Load();
  std::shared_ptr<const Snapshot> Current() const ABSL_LOCKS_EXCLUDED(mu_);
  // Resolves `ref` in `snap`: id, name or "default". Null if unknown.
  static std::shared_ptr<const IssuerEntry> Resolve(const Snapshot& snap, std::string_view ref);
  static IssuerInfo InfoOf(const IssuerEntry& e, const Snapshot& snap, absl::Time latest_leaf);

  // Recomputes next.bundle_pem/bundle_jwks from next.issuers. Errors: kInternal.
  static absl::Status FillBundle(Snapshot& next);
  // Builds a new CRL for every issuer with a certificate that satisfies `due` (nullptr: all)
  // under `config` (nullptr: the current one), appending the storage ops to `ops`.
  // REQUIRES: write_mu_ held.
  absl::StatusOr<std::vector<std::pair<std::string, std::shared_ptr<const CrlEntry>>>> BuildCrls(
      const std::function<bool(const std::string& id)>& due, std::vector<storage::Op>& ops,
      const CrlConfig* config = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Commits `changed` issuers (and the mount config when `config_changed`) plus `extra` ops,
  // then installs the new snapshot, bumping the bundle sequence if the bundle changed.
  // REQUIRES: write_mu_ held.
  absl::Status CommitIssuers(std::vector<std::shared_ptr<const IssuerEntry>> changed,
                             std::optional<std::string> new_default, std::vector<storage::Op> extra)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::StatusOr<GeneratedIssuer> AddGeneratedRoot(const RootRequest& request, IssuerState state);
  absl::StatusOr<std::shared_ptr<const IssuerEntry>> ResolveForChange(std::string_view ref) const;
  absl::Status CheckNameFree(const Snapshot& snap, std::string_view name,
                             std::string_view except_id) const;
  // Builds a new CRL for `issuer` from the revoked records in the index, under `config`
  // (nullptr: the current one); returns the storage op and the entry.
  // REQUIRES: write_mu_ held.
  absl::StatusOr<std::pair<storage::Op, std::shared_ptr<const CrlEntry>>> BuildCrlFor(
      const IssuerEntry& issuer, const std::map<std::string, CertIndexEntry>& index,
      const CrlConfig* config = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::StatusOr<IssuedCertificate> IssueFor(const Role& role, const IssueRequest& request,
                                             const Names* csr, EVP_PKEY* subject_key);
  void NoteLeaf(const std::string& issuer_id, absl::Time not_after) ABSL_LOCKS_EXCLUDED(mu_);

  std::string Key(std::string_view suffix) const { return prefix_ + std::string(suffix); }

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const std::string prefix_;
  const PkiOptions options_;

  // Serialises every change to issuers, roles, revocations and CRLs; held across commits.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(issue_mu_);
  // Issue/Sign hold it shared while signing and recording; issuer state changes exclusively.
  absl::Mutex issue_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Guards the in-memory state below; never held across I/O or signing.
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Role, std::less<>> roles_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, CertIndexEntry> certs_ ABSL_GUARDED_BY(mu_);    // by colon-hex serial
  std::map<std::string, absl::Time> latest_leaf_ ABSL_GUARDED_BY(mu_);  // by issuer id
  std::map<std::string, std::shared_ptr<const CrlEntry>> crls_ ABSL_GUARDED_BY(mu_);
  CrlConfig crl_config_ ABSL_GUARDED_BY(mu_);

  // GetStats().
  std::atomic<uint64_t> certificates_issued_{0};
  std::atomic<uint64_t> certificates_revoked_{0};
};

}  // namespace ward::pki
