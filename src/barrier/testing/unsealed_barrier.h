#pragma once

// Test helper: a barrier that is initialised and unsealed, for unit tests of the modules that
// store through it (auth, audit, quota, secrets, pki).

#include <memory>

#include "absl/status/statusor.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "storage/backend.h"

namespace ward::barrier::testing {

// Creates a barrier over `backend`, initialises it with `unseal_key` (32 bytes) and unseals it.
// `backend` and `clock` are borrowed. Errors: those of Barrier::Create, Initialize and Unseal
// (e.g. kFailedPrecondition if `backend` already holds an initialised barrier).
inline absl::StatusOr<std::unique_ptr<Barrier>> NewUnsealedBarrier(storage::Backend& backend,
                                                                   core::Clock& clock,
                                                                   const core::SecureBytes& unseal_key) {
  WARD_ASSIGN_OR_RETURN(std::unique_ptr<Barrier> barrier, Barrier::Create(backend, clock));
  WARD_RETURN_IF_ERROR(barrier->Initialize(unseal_key));
  WARD_RETURN_IF_ERROR(barrier->Unseal(unseal_key));
  return barrier;
}

}  // namespace ward::barrier::testing
