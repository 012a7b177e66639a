#!/usr/bin/env bash
# KV read throughput and latency, Ward against nginx serving a file, side by side.
#
# Starts `ward server --dev` (data on disk under a temp dir) and writes a secret whose JSON
# write body is 1 KB; starts nginx with the same dev CA-signed certificate serving a 1024-byte
# file over TLS 1.3 keep-alive. Then, REPEAT times, alternating the two servers:
#   1. max throughput: closed loop, CONNECTIONS connections on THREADS ward-bench threads;
#   2. latency at half of Ward's median max throughput: open loop at that fixed rate, against
#      both servers (nginx at the same rate, for reference).
# Prints every run, then the medians and the ratio Ward/nginx, each server's CPU time per
# request in the max-throughput runs (from /proc: what the server itself spends, apart from the
# load generator sharing the machine), and how late the generator itself woke for its
# scheduled sends in the open-loop runs (ward-bench's wake lag).
#
# AUDIT=1 enables a file audit device on Ward first (every request and response recorded,
# hash-chained and HMAC'd), as issue 5's read target is stated: token auth + ACL + audit on.
# PIN=1 runs both servers on one CPU and the load generator on the other (bench/lib.sh): the
# generator's open loop costs it two to four times the CPU per request of its closed loop, so
# unpinned, "half of Ward's max throughput" keeps the two shared cores nearly busy and the p99
# measures that contention as much as the server; pinned, the server's CPU is half busy at half
# its max, which is what the latency target describes. The throughput ratio is then the ratio of
# the two servers' own CPU costs. Pinned, the open-loop runs pace with `ward-bench --spin` (the
# generator yields to its event loop until each send is due instead of arming a timer: no timer
# or wake-up per request, precise sends, but a busy CPU, which is then its own).
# NGINX_ACCESS_LOG=1 has nginx write its access log (one line per request, combined format) to
# a file, for a comparison where both servers log every request.
#
# Settings (environment): AUDIT=0 CONNECTIONS=32 THREADS=1 DURATION=8 WARMUP=1 REPEAT=3 PIN=0
#   NGINX_WORKERS (default: the CPUs the servers may use, as many as the event loops Ward starts
#     by default)
#   WARD_LOOPS (default: Ward's own, one event loop per usable CPU; --dev-event-loops)
#   BUILD_DIR=build/release (ward and ward-bench)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONNECTIONS=${CONNECTIONS:-32}
bench_defaults
bench_init
# As many nginx workers as Ward starts event loops by default: one per CPU the servers run on.
if [ "${PIN:-0}" = 1 ]; then
  NGINX_WORKERS=${NGINX_WORKERS:-$((BENCH_CPUS - 1))}
else
  NGINX_WORKERS=${NGINX_WORKERS:-$BENCH_CPUS}
fi
print_context
AUDIT=${AUDIT:-0}
ward_loop_args=()
if [ -n "${WARD_LOOPS:-}" ]; then ward_loop_args=(--dev-event-loops="$WARD_LOOPS"); fi
start_ward ward "${ward_loop_args[@]}"
put_secret secret/data/bench 1024
if [ "$AUDIT" = 1 ]; then
  ward_api PUT sys/audit/file \
    "{\"type\":\"file\",\"options\":{\"file_path\":\"$BENCH_TMP/ward/audit.log\"}}" >/dev/null
fi
start_nginx "$NGINX_WORKERS" "$WARD_TLS_DIR/server.pem" "$WARD_TLS_DIR/server-key.pem"
ward_bytes=$(curl -sf --cacert "$WARD_CA" -H "X-Vault-Token: $WARD_ROOT_TOKEN" \
  "$WARD_URL/v1/secret/data/bench" | wc -c)
echo "ward:     $WARD_URL, GET /v1/secret/data/bench answers $ward_bytes bytes of JSON"
echo "audit:    $AUDIT (1: a file audit device records every request and response)"
echo "nginx:    $NGINX_URL, $NGINX_WORKERS workers, GET /1k.bin answers 1024 bytes"
echo "loops:    ward ${WARD_LOOPS:-one per usable CPU} (event loops), nginx $NGINX_WORKERS (workers)"
echo "settings: -c $CONNECTIONS -t $THREADS -d $DURATION --warmup $WARMUP, $REPEAT repeats"
echo

common=(--ca-file "$WARD_CA" -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION" --warmup "$WARMUP"
        --json)
ward_args=(--url "$WARD_URL" --scenario kv-read --path secret/data/bench --token "$WARD_ROOT_TOKEN")
nginx_args=(--url "$NGINX_URL" --scenario static --path /1k.bin)

ward_tp=() nginx_tp=() ward_p99=() nginx_p99=() ward_cpu=() nginx_cpu=()
for i in $(seq "$REPEAT"); do
  echo "--- max throughput, run $i (load: $(bench_load))"
  before=$(cpu_ticks "$WARD_PID")
  "$WARD_BENCH" "${ward_args[@]}" "${common[@]}" | tee "$BENCH_TMP/ward-$i.out"
  ward_cpu+=("$(cpu_us_per_request $(($(cpu_ticks "$WARD_PID") - before)) "$BENCH_TMP/ward-$i.out")")
  before=$(cpu_ticks $(nginx_pids))
  "$WARD_BENCH" "${nginx_args[@]}" "${common[@]}" | tee "$BENCH_TMP/nginx-$i.out"
  nginx_cpu+=("$(cpu_us_per_request $(($(cpu_ticks $(nginx_pids)) - before)) \
    "$BENCH_TMP/nginx-$i.out")")
  record_run ward "$BENCH_TMP/ward-$i.out"
  record_run nginx "$BENCH_TMP/nginx-$i.out"
done
ward_med=$(median "${ward_tp[@]}")
nginx_med=$(median "${nginx_tp[@]}")
half=$(python3 -c "print(round($ward_med / 2))")

ward_half_p99=() nginx_half_p99=() ward_half_p50=() nginx_half_p50=()
ward_half_lag=() nginx_half_lag=()
pacing=()
if [ "${PIN:-0}" = 1 ]; then pacing=(--spin); fi
for i in $(seq "$REPEAT"); do
  echo "--- open loop at $half req/s (half of Ward's max), run $i (load: $(bench_load))"
  "$WARD_BENCH" "${ward_args[@]}" "${common[@]}" --rate "$half" "${pacing[@]}" |
    tee "$BENCH_TMP/ward-half-$i.out"
  "$WARD_BENCH" "${nginx_args[@]}" "${common[@]}" --rate "$half" "${pacing[@]}" |
    tee "$BENCH_TMP/nginx-half-$i.out"
  ward_half_p99+=("$(json_field "$BENCH_TMP/ward-half-$i.out" latency_ms.p99)")
  nginx_half_p99+=("$(json_field "$BENCH_TMP/nginx-half-$i.out" latency_ms.p99)")
  ward_half_p50+=("$(json_field "$BENCH_TMP/ward-half-$i.out" latency_ms.p50)")
  nginx_half_p50+=("$(json_field "$BENCH_TMP/nginx-half-$i.out" latency_ms.p50)")
  ward_half_lag+=("$(json_field "$BENCH_TMP/ward-half-$i.out" wake_lag_ms.p99)")
  nginx_half_lag+=("$(json_field "$BENCH_TMP/nginx-half-$i.out" wake_lag_ms.p99)")
done

echo
echo "=== summary (medians of $REPEAT runs)"
printf '%-8s %14s %16s %22s %22s\n' server "max req/s" "p99 ms at max" "p50 ms at $half/s" "p99 ms at $half/s"
printf '%-8s %14.0f %16.3f %22.3f %22.3f\n' ward "$ward_med" "$(median "${ward_p99[@]}")" \
  "$(median "${ward_half_p50[@]}")" "$(median "${ward_half_p99[@]}")"
printf '%-8s %14.0f %16.3f %22.3f %22.3f\n' nginx "$nginx_med" "$(median "${nginx_p99[@]}")" \
  "$(median "${nginx_half_p50[@]}")" "$(median "${nginx_half_p99[@]}")"
echo "ratio ward/nginx (max throughput): $(python3 -c "print(f'{$ward_med / $nginx_med:.3f}')")"
echo "per-run throughput: ward ${ward_tp[*]}; nginx ${nginx_tp[*]}"
echo "p99 ms at $half/s per run: ward ${ward_half_p99[*]}; nginx ${nginx_half_p99[*]}"
echo "how late the load generator woke for a scheduled send at $half/s, p99 ms per run (part of"
echo "  every latency above; a large value means the generator, not the server, was late):"
echo "  during ward runs ${ward_half_lag[*]}; during nginx runs ${nginx_half_lag[*]}"
echo "server CPU us per request at max throughput (median; per run): ward $(median "${ward_cpu[@]}") (${ward_cpu[*]}); nginx $(median "${nginx_cpu[@]}") (${nginx_cpu[*]})"
