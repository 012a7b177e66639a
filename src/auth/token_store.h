#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "crypto/hmac.h"

namespace ward::auth {

// Everything Ward knows about one token. The token itself is never held here: only its keyed
// hash. Stored as JSON through the barrier (see docs/token-format.md).
struct TokenEntry {
  // Random id naming the token without granting its power (auth/token/lookup-accessor,
  // revoke-accessor). Sensitive: it lets its holder revoke the token. Never log it.
  std::string accessor;
  // Lower-case hex HMAC-SHA256 of the token under the store's key; the only form of the token
  // Ward stores. Also the in-memory key of the entry.
  std::string id_hash;
  // id_hash of the parent token; "" for orphans and root tokens.
  std::string parent_hash;
  // Sorted, unique, lower-case. Contains "default" unless the token was created with
  // no_default_policy; a token with "root" has exactly {"root"}.
  std::vector<std::string> policies;
  std::map<std::string, std::string> meta;
  // "root", "token", "token-<requested name>", or what a login method chose ("approle").
  std::string display_name;
  // The route that created the token: "auth/token/create", "auth/token/root", or a login
  // route "auth/<mount path>login" ("auth/approle/login"). Names the issuing auth mount:
  // disabling the mount revokes its tokens (RevokeByPathPrefix).
  std::string path;
  // Networks the token may be used from ("10.0.0.0/8", "2001:db8::/32", bare addresses); empty
  // = anywhere. Checked on every request that presents the token (AllowsSource), as Vault
  // does. Entries stored before this field existed read as empty.
  std::vector<std::string> bound_cidrs;
  absl::Time creation_time;
  // The ttl the token was created with; 0 = no expiry (root tokens).
  absl::Duration creation_ttl = absl::ZeroDuration();
  // When the token stops working; InfiniteFuture = never.
  absl::Time expire_time = absl::InfiniteFuture();
  // Hard cap on the token's life, measured from creation_time; 0 = none beyond the store's
  // max_ttl.
  absl::Duration explicit_max_ttl = absl::ZeroDuration();
  // 0 = unlimited; otherwise the uses left. Use() returns -1 for the use that exhausted the
  // token (the token is already revoked then).
  int64_t num_uses = 0;
  bool renewable = false;
  // True if the token has no parent (created as an orphan, a root token, a login token, or
  // orphaned by RevokeOrphan of its parent).
  bool orphan = false;
  std::string type = "service";  // only service tokens exist in Ward so far
  // When Renew last extended the token; InfinitePast = never renewed.
  absl::Time last_renewal_time = absl::InfinitePast();

  // Time left before expiry at `now`: InfiniteDuration for tokens that do not expire, zero
  // once expired.
  absl::Duration RemainingTtl(absl::Time now) const;
  bool HasPolicy(std::string_view policy) const;
  // Whether the token may be used by a client at `remote_address` (an IP address as text):
  // true if bound_cidrs is empty or one of them contains the address; false for text that is
  // not an address, and (failing closed) if a stored CIDR does not parse. Cheap when unbound.
  bool AllowsSource(std::string_view remote_address) const;
  bool IsRoot() const { return HasPolicy("root"); }
};

// Parameters of auth/token/create (and of login methods, which create tokens without a parent).
struct CreateTokenRequest {
  // Requested policies. Empty = the parent's policies (Vault semantics). Names are trimmed and
  // lower-cased; "root" replaces every other name.
  std::vector<std::string> policies;
  std::map<std::string, std::string> meta;
  // Stored as "token-<display_name>" with characters outside [A-Za-z0-9-] replaced by '-'
  // (Vault); for tokens without a parent (logins) stored as given. "" = "token".
  std::string display_name;
  // nullopt or 0 = the store's default_ttl (no expiry for a "root" token of a non-expiring
  // parent). Must not be negative.
  std::optional<absl::Duration> ttl;
  absl::Duration explicit_max_ttl = absl::ZeroDuration();  // 0 = none; must not be negative
  int64_t num_uses = 0;                                    // 0 = unlimited; must not be negative
  std::optional<bool> renewable;                           // nullopt = true
  // Orphan created through auth/token/create-orphan: the caller's ACL check on that route is
  // the whole authorisation, so no sudo is needed.
  bool orphan = false;
  bool no_default_policy = false;
  // Orphan requested with the no_parent parameter of auth/token/create: needs a root parent or
  // caller_has_sudo.
  bool no_parent = false;
  // Requested token value (needs a root parent or caller_has_sudo); "" = generate one. Must be
  // 1..256 printable ASCII characters without spaces or '.'.
  std::string id;
  // Whether the caller's policies grant sudo on the route that creates the token (the API layer
  // evaluates the ACL; the store cannot). Root parents always count as sudo.
  bool caller_has_sudo = false;
  // The route recorded in TokenEntry::path; "" = "auth/token/create".
  std::string path;
  // Stored as TokenEntry::bound_cidrs (login methods pass their token_bound_cidrs). Each must
  // parse as a CIDR block or an address.
  std::vector<std::string> bound_cidrs;
};

// A newly created token.
struct IssuedToken {
  // The token: the only time its plaintext exists in Ward. The caller must zero it
  // (core::SecureZero) once the response is written.
  std::string token;
  TokenEntry entry;
  // Non-fatal adjustments Vault reports as response warnings (a ttl capped by a limit).
  std::vector<std::string> warnings;
};

// Ward's token store, behaving like Vault's token auth method: issue, look up, use, renew and
// revoke tokens; child tokens are revoked with their parent.
//
// Every entry lives in memory (keyed by the token's HMAC) so that Lookup, which runs on every
// request, never touches storage. Each create, renew, use of a limited-use token and revocation
// writes through the barrier in exactly one atomic commit before the in-memory state changes, so
// a failed commit leaves both unchanged.
//
// Thread-safe. Lookups take a reader lock only. Mutations are serialised by a writer mutex held
// across their barrier commit (the reader lock is never held across I/O); they may block on
// storage I/O. The exception is the creation of a token without a parent (logins, orphans,
// root tokens): it touches no existing entry, so its commit runs outside the writer mutex and
// concurrent creations share the storage's group commits. `barrier` and `clock` are borrowed and must outlive the store. The store assumes
// it is the only writer of "core/token/" in its storage.
class TokenStore {
 public:
  struct Options {
    // ttl of tokens created without one (Vault's default_lease_ttl: 32 days).
    absl::Duration default_ttl = absl::Hours(768);
    // No token may live longer than this from its creation, renewals included (Vault's
    // max_lease_ttl: 32 days). Root tokens without a ttl are exempt.
    absl::Duration max_ttl = absl::Hours(768);
  };

  // Loads the HMAC key (creating a random one at "core/token/hmac-key" if absent) and every
  // stored token. REQUIRES: the barrier is unsealed.
  // Errors: kInvalidArgument if an option is not positive or default_ttl > max_ttl; barrier
  //         errors (kUnavailable if sealed, kDataLoss if a value does not authenticate);
  //         kDataLoss if a stored entry or the key is malformed.
  static absl::StatusOr<std::unique_ptr<TokenStore>> Create(barrier::Barrier& barrier,
                                                            core::Clock& clock, Options options);

  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;
  ~TokenStore();

  // Creates a root token: policies {"root"}, no expiry, not renewable, orphan, path
  // "auth/token/root", display name "root". `id` "" = generate; otherwise the token's value
  // (1..256 printable ASCII characters without spaces, e.g. a dev-mode root token id).
  // Errors: kInvalidArgument for a malformed id; kAlreadyExists if a token with that value
  //         exists; barrier errors.
  absl::StatusOr<IssuedToken> CreateRootToken(std::string_view id);

  // Creates a token, as a child of `parent` unless the request asks for an orphan. `parent`
  // nullptr is for login methods: the token is an orphan, its policies are the requested ones
  // (plus "default" unless no_default_policy) and no parent rule applies. `parent` is only used
  // to find the parent's stored entry, which is re-read under the store's lock. Rules for a
  // parent (Vault's handleCreateCommon):
  //  - no policies requested: the parent's (with "default" only if the parent has it);
  //  - otherwise policies must be a subset of the parent's unless the parent is root or
  //    caller_has_sudo; "default" is added unless no_default_policy (for a non-sudo caller,
  //    only if the parent has it); no_default_policy removes "default" in every case;
  //  - "root" only from a root parent (never from sudo alone, never for a login);
  //  - no_parent and id need a root parent or caller_has_sudo;
  //  - a parent with limited uses cannot create tokens;
  //  - ttl (default_ttl if unset, none for a "root" token without one) is capped by
  //    explicit_max_ttl and max_ttl and, for a non-orphan child of a non-root parent, by the
  //    parent's remaining ttl; each cap adds a warning.
  // Errors: kInvalidArgument "child policies must be subset of parent", and for root/sudo-only
  //         requests made without them (Vault answers these with 400);
  //         kPermissionDenied if the parent is no longer valid (revoked, expired);
  //         kInvalidArgument for negative ttl, explicit_max_ttl or num_uses, a malformed id, a
  //         malformed bound CIDR, a use-limited parent, or a non-expiring root token from an
  //         expiring parent;
  //         kAlreadyExists if a token with the requested id exists; kInternal if the random
  //         generator fails; barrier errors.
  absl::StatusOr<IssuedToken> CreateToken(const TokenEntry* parent,
                                          const CreateTokenRequest& request);

  // Returns the entry for `token`. Does not touch storage.
  // Errors: kNotFound if the token is unknown, revoked or expired, or an ancestor expired
  //         (expired tokens are revoked later, by Use or RevokeExpired); kUnavailable if the
  //         barrier is sealed (Lookup, Use and LookupByAccessor refuse to answer from memory
  //         then); kInternal if hashing fails.
  absl::StatusOr<TokenEntry> Lookup(std::string_view token) const;

  // The keyed hash `token` is stored under (what Lookup computes first), for a caller that
  // looks one token up again and again: LookupHashed then skips the hashing. Valid for this
  // store only. Errors: kInternal if hashing fails.
  absl::StatusOr<std::string> IdHash(std::string_view token) const;
  // Lookup of the token whose IdHash is `id_hash`. Errors: as Lookup.
  absl::StatusOr<TokenEntry> LookupHashed(std::string_view id_hash) const;

  // Whether `token` may be used without limit (num_uses 0): Lookup's answer to that one
  // question, without copying the entry. Errors: as Lookup.
  absl::StatusOr<bool> HasUnlimitedUses(std::string_view token) const;

  // Lookup, then consume one use of a limited-use token (persisted). The returned entry shows
  // the uses left after this one; -1 if this was the last use, in which case the token and its
  // children are already revoked. Unlimited tokens do not touch storage. An expired token found
  // here is revoked.
  // Errors: as Lookup; barrier errors when persisting the use.
  absl::StatusOr<TokenEntry> Use(std::string_view token);

  // Returns the entry whose accessor is `accessor`.
  // Errors: kInvalidArgument "invalid accessor" if no valid token has it; kUnavailable if
  //         the barrier is sealed.
  absl::StatusOr<TokenEntry> LookupByAccessor(std::string_view accessor) const;

  // Extends the token to expire `increment` from now (0: its creation ttl), capped so that it
  // lives no longer than min(explicit_max_ttl, max_ttl) from its creation. Returns the entry
  // after renewal; `warnings` (if not null) receives a note when the increment was capped.
  // Errors: kNotFound as Lookup; kInvalidArgument "lease is not renewable" (Vault's message)
  //         for a non-renewable or non-expiring token, "past the max TTL, cannot renew" once
  //         the token has reached its maximum life, or for a negative increment; barrier
  //         errors.
  absl::StatusOr<TokenEntry> Renew(std::string_view token, absl::Duration increment,
                                   std::vector<std::string>* warnings = nullptr);

  // Revokes the token and, recursively, every child that is not an orphan, in one commit.
  // OK if the token is unknown or already revoked. Errors: barrier errors.
  absl::Status Revoke(std::string_view token);

  // Revokes the token with this accessor, as Revoke (expired tokens included).
  // Errors: kInvalidArgument "invalid accessor" if no token has it; barrier errors.
  absl::Status RevokeByAccessor(std::string_view accessor);

  // Revokes only the token; its children become orphans (parent cleared, orphan set), in one
  // commit. OK if the token is unknown. Errors: barrier errors.
  absl::Status RevokeOrphan(std::string_view token);

  // Revokes every expired token and the descendants of each. Returns how many tokens were
  // revoked. For a periodic tidy job. Errors: barrier errors (tokens revoked before the
  // failing commit stay revoked).
  absl::StatusOr<size_t> RevokeExpired();

  // Revokes every token whose TokenEntry::path starts with `prefix` ("auth/approle/": the
  // tokens an auth mount issued), with all their non-orphan descendants, in commits of a
  // bounded size. Returns how many tokens were revoked (0 if none matched).
  // Errors: kInvalidArgument for an empty prefix (it would revoke every token); barrier
  //         errors (tokens revoked by earlier commits stay revoked; a child whose parent went in
  //         an earlier commit is already unusable and is collected by RevokeExpired).
  absl::StatusOr<size_t> RevokeByPathPrefix(std::string_view prefix);

  // Number of tokens held, expired ones not yet revoked included.
  size_t Count() const;

  // Tokens held (as Count) by TokenEntry::path, for metrics. The number of distinct paths is
  // bounded by the creating routes and auth mounts, not by traffic.
  std::map<std::string, size_t> CountByPath() const;

 private:
  TokenStore(barrier::Barrier& barrier, core::Clock& clock, Options options, core::SecureBytes key);

  // kUnavailable if the barrier is sealed.
  absl::Status CheckUnsealed() const;

  // Lower-case hex HMAC of `token`. Errors: kInternal if hashing fails.
  absl::StatusOr<std::string> HashToken(std::string_view token) const;

  // The valid entry stored under `id_hash` at `now`: present, unexpired, and every ancestor
  // present and unexpired; nullptr otherwise.
  // Lookup's checks (unsealed, known, not expired) for the token hashed to `id_hash`, then
  // `read(entry)` under the reader lock.
  template <typename Read>
  auto ReadValid(std::string_view id_hash, const Read& read) const
      -> absl::StatusOr<decltype(read(std::declval<const TokenEntry&>()))>;
  const TokenEntry* FindValidLocked(std::string_view id_hash, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Adds `entry` to the in-memory maps (replacing an entry with the same id_hash).
  void InsertLocked(TokenEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `id_hash` from the in-memory maps (children's links are left to the caller).
  void EraseLocked(const std::string& id_hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `id_hash` and all its non-orphan descendants, parents before children.
  std::vector<std::string> SubtreeLocked(const std::string& id_hash) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Appends the storage deletes that revoke `id_hash` (which must be present).
  void AppendRevokeOpsLocked(const std::string& id_hash, std::vector<storage::Op>& ops) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Revokes `id_hash` and its descendants: one commit, then the in-memory maps. Returns how
  // many tokens were revoked (0 if `id_hash` is unknown).
  absl::StatusOr<size_t> RevokeTree(const std::string& id_hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Stores `entry` (new, with `token` value) in one commit and caches it. REQUIRES: write_mu_
  // held if the entry has a parent (see CreateToken); entries without one may be issued
  // concurrently (the commit's absence check on the id key settles a race on a custom id).
  absl::StatusOr<IssuedToken> Issue(std::string token, TokenEntry entry,
                                    std::vector<std::string> warnings);

  // Loads every stored entry into memory (at Create).
  absl::Status Load();

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const Options options_;
  const absl::StatusOr<crypto::HmacSha256Key> key_;  // prepared from the HMAC key

  // Serialises mutations, including their barrier commits. Acquired before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  // Guards the in-memory state; never held across I/O.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, TokenEntry> entries_ ABSL_GUARDED_BY(mu_);       // by id_hash
  absl::flat_hash_map<std::string, std::string> by_accessor_ ABSL_GUARDED_BY(mu_);  // -> id_hash
  // parent id_hash -> id_hashes of its non-orphan children.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::auth
