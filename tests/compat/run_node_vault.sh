#!/usr/bin/env bash
# Runs node_vault_test.js (node-vault from npm, unmodified) against a real Ward dev server and
# against a fresh production-mode server. Usage: run_node_vault.sh WARD_BINARY WORK_DIR
set -euo pipefail
ward=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/node_vault_test.js" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits for "$1" to contain a line matching "$2".
wait_for() {
  for _ in $(seq 1 300); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# 1. Dev server.
"$ward" server --dev --dev-listen-address=127.0.0.1:0 --dev-data-dir="$work/dev" \
  >"$work/dev.out" 2>"$work/dev.log" &
pids+=($!)
wait_for "$work/dev.out" "^export WARD_TOKEN="
eval "$(grep '^export WARD_' "$work/dev.out")"
(cd "$work" && COMPAT_WORK_DIR="$work" node node_vault_test.js dev)

# 2. A fresh server from a config file: init, unseal, seal through the library.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat >"$work/ward.yaml" <<YAML
listener:
  address: 127.0.0.1:0
  tls_cert_file: $work/cert.pem
  tls_key_file: $work/key.pem
storage:
  path: $work/prod
YAML
"$ward" server --config "$work/ward.yaml" >"$work/prod.out" 2>"$work/prod.log" &
pids+=($!)
wait_for "$work/prod.out" "listening on"
WARD_ADDR=$(sed -n 's/.*listening on \(https:[^ ]*\).*/\1/p' "$work/prod.out")
WARD_CACERT="$work/cert.pem"
export WARD_ADDR WARD_CACERT
(cd "$work" && node node_vault_test.js fresh)
