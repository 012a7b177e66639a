#!/usr/bin/env bash
# Smoke test for ward-bench (registered with ctest): starts a dev Ward and runs every scenario
# for about a second with 2 connections against it, failing if any run has zero throughput,
# any error, or (handshake scenarios) the wrong kind of handshake. No nginx needed.
# Usage: bench/smoke_test.sh WARD_BINARY WARD_BENCH_BINARY
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 WARD_BINARY WARD_BENCH_BINARY" >&2
  exit 2
fi
WARD=$1
WARD_BENCH=$2
source "$(dirname "$0")/lib.sh"
bench_init
start_ward smoke

failed=0
# run NAME [ward-bench args...]: one 1 s run with 2 connections; checks and prints the result.
run() {
  local name=$1
  shift
  local out=$BENCH_TMP/$name.out
  if ! "$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" --token "$WARD_ROOT_TOKEN" \
      -c 2 -t 1 -d 1 --warmup 0.1 --json "$@" >"$out" 2>&1; then
    echo "FAIL $name: ward-bench exited non-zero"
    cat "$out"
    failed=1
    return
  fi
  local why
  why=$(python3 - "$out" "$name" <<'PY'
import json, sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
name = sys.argv[2]
if r["throughput"] <= 0:
    print("zero throughput")
elif r["non_2xx"] or r["io_errors"] or r["unexpected"]:
    print(f"errors: non-2xx {r['non_2xx']}, io {r['io_errors']}, unexpected {r['unexpected']}")
elif r["generator_cpu_us"] <= 0:
    print("the generator reported no CPU time of its own")
elif name.startswith("kv-read-open-loop") and r["wake_lag_ms"]["count"] < r["responses"] // 2:
    # At 200 req/s on 2 connections each send waits for its time: (almost) every one is timed.
    print(f"open loop timed {r['wake_lag_ms']['count']} wake-ups for {r['responses']} responses")
elif name == "kv-read" and r["wake_lag_ms"]["count"] != 0:
    print("closed loop reported wake-ups for scheduled sends")
elif name == "kv-read-open-loop-spin" and (r["mode"] != "open-loop-spin"
                                           or r["wake_lag_ms"]["p99"] > 50):
    # Yielding until the send is due must not leave it later than a loaded machine can explain.
    print(f"spin pacing: mode {r['mode']}, wake lag p99 {r['wake_lag_ms']['p99']} ms")
elif name == "handshake-full" and (r["handshakes"] == 0 or r["resumed"] != 0):
    print(f"expected only full handshakes (handshakes {r['handshakes']}, resumed {r['resumed']})")
elif name == "handshake-resumed" and r["resumed"] == 0:
    print(f"no handshake was resumed (handshakes {r['handshakes']})")
PY
)
  if [ -n "$why" ]; then
    echo "FAIL $name: $why"
    cat "$out"
    failed=1
  else
    echo "ok   $name: $(json_field "$out" throughput) req/s"
  fi
}

# kv-write first: it creates the secret kv-read then reads.
run kv-write --scenario kv-write --path secret/data/bench
run kv-write-request --scenario kv-write --path secret/data/bench --paths request
run kv-read --scenario kv-read --path secret/data/bench
run kv-read-open-loop --scenario kv-read --path secret/data/bench --rate 200
run kv-read-open-loop-spin --scenario kv-read --path secret/data/bench --rate 200 --spin
run static --scenario static --path /v1/sys/health
run handshake-full --scenario handshake-full --path /v1/sys/health
run handshake-resumed --scenario handshake-resumed --path /v1/sys/health
setup_identity_bench
run approle-login --scenario approle-login --path auth/approle/login --body @"$BENCH_TMP/login.json"
run pki-issue --scenario pki-issue --path pki/issue/svc --body @"$BENCH_TMP/issue.json"

# --spin paces an open loop: without --rate it is refused before anything is sent.
if "$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" -c 1 -d 0.3 --spin \
    --scenario kv-read --path secret/data/bench >"$BENCH_TMP/spin.out" 2>&1 ||
    ! grep -q -- "--spin paces an open loop" "$BENCH_TMP/spin.out"; then
  echo "FAIL spin-without-rate: not refused with its reason"
  cat "$BENCH_TMP/spin.out"
  failed=1
else
  echo "ok   spin-without-rate: refused"
fi

# An error must be reported as one: a path with no secret answers 404.
out=$BENCH_TMP/missing.out
"$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" --token "$WARD_ROOT_TOKEN" -c 1 -d 0.3 \
  --warmup 0 --json --scenario kv-read --path secret/data/does-not-exist >"$out" 2>&1
if [ "$(json_field "$out" non_2xx)" = 0 ]; then
  echo "FAIL missing: 404 answers were not counted as non-2xx"
  cat "$out"
  failed=1
else
  echo "ok   missing: non-2xx counted"
fi

exit $failed
