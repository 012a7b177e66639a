#pragma once

// What the TLS listener trusts from Ward's own PKI mounts (docs/pki.md, "Listener trust"):
// the trust bundle of every PKI mount as client CAs, and each trusted issuer's current CRL.
// ward_api does not link the TLS listener; the server feeds this into
// net::TlsServerOptions::client_ca_pem / crl_pem_or_der.

#include <string>

#include "api/core.h"

namespace ward::api {

// A snapshot of the PKI trust of one unsealed node.
struct PkiTrust {
  // Concatenated TrustBundlePem() of every PKI mount (published and active issuers, plus the
  // roots above them); empty with no PKI mount or no issuer.
  std::string ca_pem;
  // Concatenated PEM CRLs of every published or active issuer of every PKI mount (each is
  // signed by a certificate in ca_pem, as the listener requires); empty if none.
  std::string crl_pem;
  // Identifies the contents above (hex SHA-256 over the mounts' bundle versions, the bundles
  // and the CRLs): equal fingerprints mean equal trust, so a poller reloads only on change.
  // Revocation re-signs the issuer's CRL, so it changes the fingerprint too.
  std::string fingerprint;
};

// Collects the PKI trust of `state`. Cost: one snapshot read per mount and issuer plus a hash
// of the PEM text (a few KB per issuer); no storage I/O. Never fails: an issuer without a CRL
// contributes only its certificate. Thread-safe.
PkiTrust CollectPkiTrust(const UnsealedState& state);

}  // namespace ward::api
