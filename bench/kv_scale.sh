#!/usr/bin/env bash
# Memory and cold start with many KV v2 secrets (issue 5: with 100,000 secrets of 1 KB, server
# RSS <= 300 MB and cold start <= 2 s).
#
# 1. Load: a dev Ward (data on disk) gets N secrets secret/data/scale/s-0 .. s-<N-1>, each a
#    1 KB JSON body, through the API (ward-bench kv-write --paths index --requests N).
#    RSS (VmRSS, VmHWM from /proc/<pid>/status) after the load; the server is then stopped.
# 2. Cold start, RESTARTS times: `ward server --config` (production mode, mlock as configured
#    by default) on the same data dir; timed from exec to the first 200 of a KV read, split
#    into exec -> listening (banner), the sys/unseal request (which loads every mount and
#    engine), and the first KV read. RSS after each unseal, and the CPU time the server used
#    (utime + stime of all its threads, /proc/<pid>/stat): on a shared, loaded machine the
#    wall times stretch with the load, the CPU times much less.
# 3. After the last restart, every secret is read once (ward-bench kv-read --paths index
#    --requests N); RSS after that.
# The data dir stays in the page cache between runs (a warm-cache restart, as after a crash
# or an upgrade; not a reboot).
#
# Settings (environment):
#   N=100000 CONNECTIONS=32 BODY_SIZE=1024 RESTARTS=3 BUILD_DIR=build/release
#   SMOKE=1       N=500 RESTARTS=1, and fail (exit 1) on any error; for ctest (bench_kv_scale_smoke)
#   SEED_DIR=dir  skip the load: start from a copy of a data dir saved earlier with SAVE_DIR
#                 (it must hold N secrets written by this script)
#   SAVE_DIR=dir  after the load, copy the data dir (ward.db, dev-unseal-key) there
#   DATA_PARENT   where the data dir goes (default $TMPDIR or /tmp: use a real disk, not tmpfs)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SMOKE=${SMOKE:-}
if [ -n "$SMOKE" ]; then
  N=${N:-500}
  RESTARTS=${RESTARTS:-1}
fi
N=${N:-100000}
CONNECTIONS=${CONNECTIONS:-32}
BODY_SIZE=${BODY_SIZE:-1024}
RESTARTS=${RESTARTS:-3}
SEED_DIR=${SEED_DIR:-}
SAVE_DIR=${SAVE_DIR:-}
SECRET_PREFIX=secret/data/scale/s
export TMPDIR=${DATA_PARENT:-${TMPDIR:-/tmp}}

bench_init
print_context
echo "settings: N=$N secrets of $BODY_SIZE bytes, -c $CONNECTIONS, $RESTARTS restarts"

failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# rss PID: "VmRSS VmHWM" in MB.
rss() {
  awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "%.1f %.1f\n", r/1024, h/1024}' \
    "/proc/$1/status"
}

# cpu_ms PID: CPU time (user + system, all threads) the process has used so far, in ms.
CLK_TCK=$(getconf CLK_TCK)
cpu_ms() { awk -v hz="$CLK_TCK" '{sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz)}' "/proc/$1/stat"; }

now_ns() { date +%s%N; }
ms_between() { echo $((($2 - $1) / 1000000)); }

# check_run FILE WHAT: the counted ward-bench run in FILE answered all N requests with 2xx.
check_run() {
  local responses non_2xx io
  responses=$(json_field "$1" responses)
  non_2xx=$(json_field "$1" non_2xx)
  io=$(json_field "$1" io_errors)
  if [ "$responses" != "$N" ] || [ "$non_2xx" != 0 ] || [ "$io" != 0 ]; then
    fail "$2: $responses responses of $N, non-2xx $non_2xx, io errors $io"
  fi
}

# --- 1. load
start_ward load
DATA_DIR=$BENCH_TMP/load/data
load_pid=${BENCH_PIDS[-1]}
if [ -n "$SEED_DIR" ]; then
  # Replace the fresh dev data with the saved one (the dev server reopens it below).
  stop_last
  rm -rf "$DATA_DIR"
  cp -a "$SEED_DIR" "$DATA_DIR"
  start_ward load
  load_pid=${BENCH_PIDS[-1]}
  echo "load:     from $SEED_DIR (not re-written)"
  read -r load_rss load_hwm <<<"$(rss "$load_pid")"
  load_line="(seeded from $SEED_DIR)"
else
  echo "--- load (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" --token "$WARD_ROOT_TOKEN" \
    --scenario kv-write --path "$SECRET_PREFIX" --paths index --requests "$N" \
    --body-size "$BODY_SIZE" -c "$CONNECTIONS" --json | tee "$BENCH_TMP/load.out"
  check_run "$BENCH_TMP/load.out" "load"
  read -r load_rss load_hwm <<<"$(rss "$load_pid")"
  load_line=$(printf '%.1f s (%.0f writes/s)' "$(json_field "$BENCH_TMP/load.out" duration_s)" \
    "$(json_field "$BENCH_TMP/load.out" throughput)")
fi
stop_last
if [ -n "$SAVE_DIR" ]; then
  rm -rf "$SAVE_DIR"
  cp -a "$DATA_DIR" "$SAVE_DIR"
  echo "saved:    $DATA_DIR -> $SAVE_DIR"
fi
echo "data:     $(du -sh "$DATA_DIR" | cut -f1) in $DATA_DIR on $(df --output=fstype "$DATA_DIR" | tail -1)"

# --- 2. cold starts
unseal_key=$(od -An -v -tx1 "$DATA_DIR/dev-unseal-key" | tr -d ' \n')
cat >"$BENCH_TMP/ward.yaml" <<EOF
listener:
  address: 127.0.0.1:0
  tls_cert_file: $WARD_TLS_DIR/server.pem
  tls_key_file: $WARD_TLS_DIR/server-key.pem
storage:
  path: $DATA_DIR
log_level: warn
EOF

listen_ms=() unseal_ms=() read_ms=() total_ms=() restart_rss=() restart_hwm=()
cpu_start_ms=() cpu_unseal_ms=() cpu_total_ms=()
for r in $(seq "$RESTARTS"); do
  echo "--- restart $r (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  out=$BENCH_TMP/restart-$r.stdout
  : >"$out"  # exists before the first sed below, whatever the child's start-up order
  t0=$(now_ns)
  "${SERVER_CPUS[@]}" "$WARD" server --config "$BENCH_TMP/ward.yaml" >"$out" 2>"$BENCH_TMP/restart-$r.stderr" &
  BENCH_PIDS+=($!)
  pid=$!
  url=""
  while [ -z "$url" ]; do
    url=$(sed -n 's/^Ward server listening on \(https:[^ ]*\)$/\1/p' "$out")
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ward did not start; its log:" >&2
      cat "$out" "$BENCH_TMP/restart-$r.stderr" >&2
      exit 1
    fi
    [ -n "$url" ] || sleep 0.002
  done
  t_listen=$(now_ns)
  c_listen=$(cpu_ms "$pid")
  WARD_URL=$url
  status=$(curl -s --cacert "$WARD_CA" -X PUT --data "{\"key\":\"$unseal_key\"}" \
    -o "$BENCH_TMP/unseal.json" -w '%{http_code}' "$WARD_URL/v1/sys/unseal")
  t_unseal=$(now_ns)
  c_unseal=$(cpu_ms "$pid")
  if [ "$status" != 200 ] || ! grep -q '"sealed":false' "$BENCH_TMP/unseal.json"; then
    fail "unseal answered $status: $(cat "$BENCH_TMP/unseal.json")"
  fi
  status=$(curl -s --cacert "$WARD_CA" -H "X-Vault-Token: $WARD_ROOT_TOKEN" -o /dev/null \
    -w '%{http_code}' "$WARD_URL/v1/$SECRET_PREFIX-$((N - 1))")
  t_read=$(now_ns)
  c_read=$(cpu_ms "$pid")
  [ "$status" = 200 ] || fail "first read answered $status"
  cpu_start_ms+=("$c_listen")
  cpu_unseal_ms+=("$((c_unseal - c_listen))")
  cpu_total_ms+=("$c_read")
  listen_ms+=("$(ms_between "$t0" "$t_listen")")
  unseal_ms+=("$(ms_between "$t_listen" "$t_unseal")")
  read_ms+=("$(ms_between "$t_unseal" "$t_read")")
  total_ms+=("$(ms_between "$t0" "$t_read")")
  read -r m h <<<"$(rss "$pid")"
  restart_rss+=("$m")
  restart_hwm+=("$h")
  echo "exec->listening ${listen_ms[-1]} ms, unseal ${unseal_ms[-1]} ms, first read" \
    "${read_ms[-1]} ms, total ${total_ms[-1]} ms; server CPU: start ${cpu_start_ms[-1]} ms," \
    "unseal ${cpu_unseal_ms[-1]} ms, total ${cpu_total_ms[-1]} ms; VmRSS $m MB, VmHWM $h MB"
  if [ "$r" != "$RESTARTS" ]; then stop_last; fi
done

# --- 3. read every secret once
echo "--- read all $N (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" --token "$WARD_ROOT_TOKEN" \
  --scenario kv-read --path "$SECRET_PREFIX" --paths index --requests "$N" \
  -c "$CONNECTIONS" --json | tee "$BENCH_TMP/read.out"
check_run "$BENCH_TMP/read.out" "read all"
read -r read_rss read_hwm <<<"$(rss "$pid")"
stop_last

echo
echo "=== summary: $N secrets of $BODY_SIZE bytes (load: $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'load                 %s\n' "$load_line"
printf 'RSS after load       VmRSS %s MB, VmHWM %s MB (dev server that did the writes)\n' \
  "$load_rss" "$load_hwm"
printf 'RSS after unseal     VmRSS %s MB, VmHWM %s MB (median of %s restarts: %s)\n' \
  "$(median "${restart_rss[@]}")" "$(median "${restart_hwm[@]}")" "$RESTARTS" "${restart_rss[*]}"
printf 'RSS after reading    VmRSS %s MB, VmHWM %s MB (every secret once, %.0f reads/s)\n' \
  "$read_rss" "$read_hwm" "$(json_field "$BENCH_TMP/read.out" throughput)"
printf 'cold start (ms)      total %s = exec->listening %s + unseal %s + first read %s\n' \
  "$(median "${total_ms[@]}")" "$(median "${listen_ms[@]}")" "$(median "${unseal_ms[@]}")" \
  "$(median "${read_ms[@]}")"
printf '                     (medians; per restart total: %s)\n' "${total_ms[*]}"
printf 'server CPU (ms)      total %s = start %s + unseal %s (+ first read); per restart unseal: %s\n' \
  "$(median "${cpu_total_ms[@]}")" "$(median "${cpu_start_ms[@]}")" \
  "$(median "${cpu_unseal_ms[@]}")" "${cpu_unseal_ms[*]}"
peak=$(printf '%s\n' "$read_hwm" "${restart_hwm[@]}" | sort -g | tail -1)
cold=$(median "${total_ms[@]}")
printf 'targets              RSS <= 300 MB: %s (peak VmHWM after restart %s MB); cold start <= 2000 ms: %s (%s ms)\n' \
  "$(awk -v v="$peak" 'BEGIN {print (v <= 300) ? "met" : "MISSED"}')" "$peak" \
  "$(awk -v v="$cold" 'BEGIN {print (v <= 2000) ? "met" : "MISSED"}')" "$cold"
if [ -n "$SMOKE" ]; then
  if [ "$failed" = 0 ]; then echo "ok   kv_scale smoke"; else echo "FAIL kv_scale smoke"; fi
fi
exit $failed
