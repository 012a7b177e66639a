#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and starts a dev server on 127.0.0.1:8200.
# Extra arguments go to `ward server --dev` (e.g. --dev-root-token-id=root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release ward
exec build/release/ward server --dev "$@"
