#include "api/pki_trust.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/mount_table.h"
#include "crypto/hmac.h"
#include "pki/engine.h"

namespace ward::api {

PkiTrust CollectPkiTrust(const UnsealedState& state) {
  PkiTrust trust;
  std::string versions;
  if (state.mounts != nullptr) {
    for (const MountEntry& entry : state.mounts->List()) {
      if (entry.type != "pki") continue;
      std::optional<MountMatch> mount = state.mounts->Find(entry.path);
      if (!mount || mount->pki == nullptr) continue;  // unmounted meanwhile
      const pki::PkiEngine& engine = *mount->pki;
      absl::StrAppend(&versions, entry.uuid, ":", engine.BundleVersion(), ";");
      absl::StrAppend(&trust.ca_pem, engine.TrustBundlePem());
      for (const pki::IssuerInfo& issuer : engine.ListIssuers()) {
        // Only issuers in the bundle: the listener refuses a CRL no trusted CA signed.
        if (issuer.state != pki::IssuerState::kActive &&
            issuer.state != pki::IssuerState::kPublished) {
          continue;
        }
        absl::StatusOr<std::string> crl = engine.CrlPem(issuer.issuer_id);
        if (!crl.ok()) continue;  // no CRL yet: the issuer revokes nothing
        absl::StrAppend(&trust.crl_pem, *crl);
        if (!trust.crl_pem.empty() && trust.crl_pem.back() != '\n') trust.crl_pem.push_back('\n');
      }
    }
  }
  trust.fingerprint = crypto::HexEncode(crypto::Sha256(
      absl::StrCat(versions, "\n", trust.ca_pem, "\n", trust.crl_pem)));
  return trust;
}

}  // namespace ward::api
