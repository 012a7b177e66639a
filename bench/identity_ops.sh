#!/usr/bin/env bash
# Throughput of the identity operations that write: AppRole logins (each creates a durable
# token) and pki/issue of an EC P-256 SPIFFE leaf (key generation + signing, plus a durable
# certificate record). Targets (issue 5): >= 5,000 logins/s and >= 2,000 issues/s on the
# 2-core machine with the load generator beside the server. There is no anchor server for
# these: the numbers are absolute, so note the load average printed with them.
#
# Sets up, on a fresh `ward server --dev` with data on disk: an AppRole role whose secret-id
# has unlimited uses, and a PKI mount with a root and a role allowing
# spiffe://example.org/ns/*/sa/*. Then runs each scenario REPEAT times and prints the medians.
#
# Settings (environment): CONNECTIONS=64 THREADS=1 DURATION=8 WARMUP=1 REPEAT=3
#   BUILD_DIR=build/release (ward and ward-bench)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-3}

bench_init
print_context
start_ward ward

setup_identity_bench

echo "ward:     $WARD_URL"
echo "settings: -c $CONNECTIONS -t $THREADS -d $DURATION --warmup $WARMUP, $REPEAT repeats"
echo

common=(--url "$WARD_URL" --ca-file "$WARD_CA" -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION"
        --warmup "$WARMUP" --json)
summary=()
for scenario in approle-login pki-issue; do
  if [ "$scenario" = approle-login ]; then
    args=(--path auth/approle/login --body @"$BENCH_TMP/login.json" --token "")
  else
    args=(--path pki/issue/svc --body @"$BENCH_TMP/issue.json" --token "$WARD_ROOT_TOKEN")
  fi
  tp=() p99=()
  for i in $(seq "$REPEAT"); do
    echo "--- $scenario, run $i (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$WARD_BENCH" --scenario "$scenario" "${args[@]}" "${common[@]}" | tee "$BENCH_TMP/$scenario-$i.out"
    tp+=("$(json_field "$BENCH_TMP/$scenario-$i.out" throughput)")
    p99+=("$(json_field "$BENCH_TMP/$scenario-$i.out" latency_ms.p99)")
  done
  summary+=("$(printf '%-14s %10.0f %12.3f   per run: %s' "$scenario" "$(median "${tp[@]}")" \
    "$(median "${p99[@]}")" "${tp[*]}")")
done

echo
echo "=== summary (medians of $REPEAT runs)"
printf '%-14s %10s %12s\n' scenario "per s" "p99 ms"
printf '%s\n' "${summary[@]}"
