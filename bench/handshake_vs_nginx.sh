#!/usr/bin/env bash
# TLS handshake rate, Ward against nginx, side by side: a new TCP + TLS 1.3 connection for every
# request, first with full handshakes (no session reuse), then resuming the previous session
# (TLS 1.3 session tickets).
#
# MTLS=1 makes every handshake mutual: the client presents a certificate from the dev CA (the
# dev server's own certificate, which carries clientAuth), Ward's dev listener verifies it
# against the dev CA, and nginx runs with `ssl_verify_client on` and the same CA. MTLS=0
# (default) authenticates the server only.
#
# Each request is a small GET answered with the same bytes by both: Ward's /v1/sys/health, and
# nginx serving a copy of that answer as a file. Runs REPEAT times alternating the servers and
# prints the medians and the ratios Ward/nginx.
#
# Settings (environment): MTLS=0 CONNECTIONS=16 THREADS=1 DURATION=8 WARMUP=1 REPEAT=3
#   NGINX_WORKERS (default: nproc), BUILD_DIR=build/release
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONNECTIONS=${CONNECTIONS:-16}
bench_defaults
MTLS=${MTLS:-0}
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}

bench_init
print_context
start_ward ward
client_ca=() client_args=()
if [ "$MTLS" = 1 ]; then
  BENCH_CLIENT_CERT=$WARD_TLS_DIR/server.pem
  BENCH_CLIENT_KEY=$WARD_TLS_DIR/server-key.pem
  client_ca=("$WARD_CA")
  client_args=(--cert "$BENCH_CLIENT_CERT" --key "$BENCH_CLIENT_KEY")
fi
start_nginx "$NGINX_WORKERS" "$WARD_TLS_DIR/server.pem" "$WARD_TLS_DIR/server-key.pem" "${client_ca[@]}"
curl -sf --cacert "$WARD_CA" "$WARD_URL/v1/sys/health" -o "$BENCH_TMP/nginx/www/health"
chmod 0644 "$BENCH_TMP/nginx/www/health"
echo "ward:     $WARD_URL, GET /v1/sys/health ($(wc -c <"$BENCH_TMP/nginx/www/health") bytes)"
echo "nginx:    $NGINX_URL, $NGINX_WORKERS workers, GET /health (the same bytes)"
echo "mtls:     $MTLS (1: both servers require and verify a client certificate)"
echo "settings: -c $CONNECTIONS -t $THREADS -d $DURATION --warmup $WARMUP, $REPEAT repeats"
echo

common=(--ca-file "$WARD_CA" -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION" --warmup "$WARMUP"
        --json "${client_args[@]}")
summary=()
for scenario in handshake-full handshake-resumed; do
  ward_tp=() nginx_tp=() ward_p99=() nginx_p99=()
  for i in $(seq "$REPEAT"); do
    echo "--- $scenario, run $i (load: $(bench_load))"
    "$WARD_BENCH" --url "$WARD_URL" --scenario "$scenario" --path /v1/sys/health "${common[@]}" |
      tee "$BENCH_TMP/ward-$scenario-$i.out"
    "$WARD_BENCH" --url "$NGINX_URL" --scenario "$scenario" --path /health "${common[@]}" |
      tee "$BENCH_TMP/nginx-$scenario-$i.out"
    record_run ward "$BENCH_TMP/ward-$scenario-$i.out"
    record_run nginx "$BENCH_TMP/nginx-$scenario-$i.out"
  done
  w=$(median "${ward_tp[@]}")
  n=$(median "${nginx_tp[@]}")
  summary+=("$(printf '%-18s %12.0f %12.0f %8.3f %14.3f %14.3f' "$scenario" "$w" "$n" \
    "$(python3 -c "print($w / $n)")" "$(median "${ward_p99[@]}")" "$(median "${nginx_p99[@]}")")")
  summary+=("    per run: ward ${ward_tp[*]}; nginx ${nginx_tp[*]}")
done

echo
echo "=== summary (medians of $REPEAT runs; connections per second)"
printf '%-18s %12s %12s %8s %14s %14s\n' scenario ward/s nginx/s ratio "ward p99 ms" "nginx p99 ms"
printf '%s\n' "${summary[@]}"
