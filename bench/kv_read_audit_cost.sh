#!/usr/bin/env bash
# What the audit log costs a KV read: two `ward server --dev` instances side by side, the same
# 1 KB secret, one with a file audit device enabled (every request and response written,
# hash-chained, HMAC'd, batched: no fsync per request) and one without. Runs the identical
# closed-loop kv-read load REPEAT times alternating the two and prints the medians and the
# ratio audited / unaudited, in throughput and in each server's CPU time per request.
#
# Settings (environment): CONNECTIONS=32 THREADS=1 DURATION=8 WARMUP=1 REPEAT=3
#   BUILD_DIR=build/release (ward and ward-bench)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONNECTIONS=${CONNECTIONS:-32}
bench_defaults

bench_init
print_context
start_ward plain
plain_url=$WARD_URL plain_ca=$WARD_CA plain_pid=$WARD_PID
put_secret secret/data/bench 1024
start_ward audited
audited_url=$WARD_URL audited_ca=$WARD_CA audited_pid=$WARD_PID
put_secret secret/data/bench 1024
ward_api PUT sys/audit/file \
  "{\"type\":\"file\",\"options\":{\"file_path\":\"$BENCH_TMP/audited/audit.log\"}}" >/dev/null
echo "plain:    $plain_url (no audit device)"
echo "audited:  $audited_url (file audit device at $BENCH_TMP/audited/audit.log)"
echo "settings: -c $CONNECTIONS -t $THREADS -d $DURATION --warmup $WARMUP, $REPEAT repeats"
echo

common=(--scenario kv-read --path secret/data/bench --token "$WARD_ROOT_TOKEN"
        -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION" --warmup "$WARMUP" --json)
plain_tp=() audited_tp=() plain_p99=() audited_p99=() plain_cpu=() audited_cpu=()
for i in $(seq "$REPEAT"); do
  echo "--- run $i (load: $(bench_load))"
  before=$(cpu_ticks "$plain_pid")
  "$WARD_BENCH" --url "$plain_url" --ca-file "$plain_ca" "${common[@]}" | tee "$BENCH_TMP/plain-$i.out"
  plain_cpu+=("$(cpu_us_per_request $(($(cpu_ticks "$plain_pid") - before)) \
    "$BENCH_TMP/plain-$i.out")")
  before=$(cpu_ticks "$audited_pid")
  "$WARD_BENCH" --url "$audited_url" --ca-file "$audited_ca" "${common[@]}" |
    tee "$BENCH_TMP/audited-$i.out"
  audited_cpu+=("$(cpu_us_per_request $(($(cpu_ticks "$audited_pid") - before)) \
    "$BENCH_TMP/audited-$i.out")")
  record_run plain "$BENCH_TMP/plain-$i.out"
  record_run audited "$BENCH_TMP/audited-$i.out"
done
p=$(median "${plain_tp[@]}")
a=$(median "${audited_tp[@]}")
echo
echo "=== summary (medians of $REPEAT runs)"
pc=$(median "${plain_cpu[@]}")
ac=$(median "${audited_cpu[@]}")
printf '%-10s %10s %10s %12s\n' server "req/s" "p99 ms" "CPU us/req"
printf '%-10s %10.0f %10.3f %12.1f   per run: %s; CPU %s\n' plain "$p" \
  "$(median "${plain_p99[@]}")" "$pc" "${plain_tp[*]}" "${plain_cpu[*]}"
printf '%-10s %10.0f %10.3f %12.1f   per run: %s; CPU %s\n' audited "$a" \
  "$(median "${audited_p99[@]}")" "$ac" "${audited_tp[*]}" "${audited_cpu[*]}"
echo "audited / plain: $(python3 -c "print(round($a / $p, 3))") in req/s; the audit adds $(python3 -c "print(round($ac - $pc, 1))") us of CPU per request"
echo "audit log: $(wc -l <"$BENCH_TMP/audited/audit.log") lines"
