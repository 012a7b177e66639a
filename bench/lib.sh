# Shared helpers for the benchmark scripts in bench/ (sourced, not run).
#
# Set before sourcing (all optional):
#   BUILD_DIR  where `ward` and `ward-bench` are (default: <repo>/build/release)
#   WARD, WARD_BENCH  the binaries themselves (default: $BUILD_DIR/ward, $BUILD_DIR/ward-bench)
#   PIN=1      servers (Ward, nginx) run on every CPU but the last, the script and everything
#              else it starts (the load generator, curl) on the last one, so that the generator
#              and the server under test never take CPU time from each other (needs 2+ CPUs)
# After bench_init: BENCH_TMP is a private temp dir, removed on exit with every process the
# script started (each killed by its own pid).

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$BENCH_REPO/build/release}
WARD=${WARD:-$BUILD_DIR/ward}
WARD_BENCH=${WARD_BENCH:-$BUILD_DIR/ward-bench}
BENCH_PIDS=()

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${BENCH_TMP:-}" ] && [ -z "${BENCH_KEEP_TMP:-}" ]; then rm -rf "$BENCH_TMP"; fi
}

# bench_defaults: the load settings the side-by-side scripts share, from the environment with
# these defaults: THREADS=1 DURATION=8 WARMUP=1 REPEAT=3. (The number of connections is each
# script's own.)
bench_defaults() {
  THREADS=${THREADS:-1}
  DURATION=${DURATION:-8}
  WARMUP=${WARMUP:-1}
  REPEAT=${REPEAT:-3}
}

bench_init() {
  local b
  for b in "$WARD" "$WARD_BENCH"; do
    if [ ! -x "$b" ]; then
      echo "missing $b: build it with scripts/build.sh release ward ward-bench" >&2
      exit 2
    fi
  done
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ward-bench-XXXXXX")
  trap bench_cleanup EXIT
  SERVER_CPUS=()
  BENCH_CPUS=$(nproc)  # before pinning narrows what nproc sees
  if [ "${PIN:-0}" = 1 ]; then
    local last=$((BENCH_CPUS - 1))
    if [ "$last" -lt 1 ]; then
      echo "PIN=1 needs at least 2 CPUs" >&2
      exit 2
    fi
    # The shell's own affinity is inherited by every process it starts from now on; servers
    # are started through SERVER_CPUS instead.
    taskset -p -c "$last" $$ >/dev/null
    SERVER_CPUS=(taskset -c "0-$((last - 1))")
  fi
}

# bench_pinning: one line saying where servers and the generator run (see PIN above).
bench_pinning() {
  if [ "${PIN:-0}" = 1 ]; then
    echo "pinning: servers on CPUs 0-$((BENCH_CPUS - 2)), load generator on CPU $((BENCH_CPUS - 1)) (PIN=1)"
  else
    echo "pinning: none; servers and load generator share all $BENCH_CPUS CPUs"
  fi
}

# Stops the most recently started server (SIGTERM) and waits for it.
stop_last() {
  local pid=${BENCH_PIDS[-1]}
  unset 'BENCH_PIDS[-1]'
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Prints a free TCP port on 127.0.0.1 (free when asked; the caller binds it right away).
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_ward NAME [extra ward server args...]
# Starts `ward server --dev` on a free port with its data and TLS files under $BENCH_TMP/NAME
# and waits (up to 60 s) for its banner. Sets WARD_URL, WARD_CA, WARD_TLS_DIR, WARD_ROOT_TOKEN,
# WARD_PID.
start_ward() {
  local name=$1
  shift
  local dir=$BENCH_TMP/$name
  mkdir -p "$dir"
  # Created here, not by the background redirection below, so that the first read of stdout
  # cannot race it (a failed sed would end the script under `set -e`).
  : >"$dir/stdout"
  WARD_TLS_DIR=$dir/tls
  WARD_ROOT_TOKEN=bench-root-token
  "${SERVER_CPUS[@]}" "$WARD" server --dev --dev-listen-address=127.0.0.1:0 --dev-data-dir="$dir/data" \
    --dev-tls-cert-dir="$WARD_TLS_DIR" --dev-root-token-id="$WARD_ROOT_TOKEN" --log-level=warn \
    "$@" >"$dir/stdout" 2>"$dir/stderr" &
  BENCH_PIDS+=($!)
  local pid=$! i
  WARD_PID=$pid
  for i in $(seq 600); do
    WARD_URL=$(sed -n 's/^Ward dev server listening on \(https:[^ ]*\)$/\1/p' "$dir/stdout")
    if [ -n "$WARD_URL" ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$WARD_URL" ]; then
    echo "ward did not start; its log:" >&2
    cat "$dir/stdout" "$dir/stderr" >&2
    exit 1
  fi
  WARD_CA=$WARD_TLS_DIR/ca.pem
}

# start_nginx WORKERS CERT KEY [CLIENT_CA]
# Starts nginx (Debian package) in the foreground as a child with a generated config under
# $BENCH_TMP/nginx: HTTPS only, TLS 1.3, keep-alive without a request limit, no access log
# (NGINX_ACCESS_LOG=1: nginx's default combined-format log to $BENCH_TMP/nginx/access.log),
# serving $BENCH_TMP/nginx/www (which holds 1k.bin, 1024 bytes). Sets NGINX_URL and NGINX_PID
# (the master; nginx_pids lists it with its workers). With
# CLIENT_CA, nginx requires and verifies client certificates (ssl_verify_client on); the
# readiness probe then presents $BENCH_CLIENT_CERT / $BENCH_CLIENT_KEY.
start_nginx() {
  local workers=$1 cert=$2 key=$3 client_ca=${4:-}
  local dir=$BENCH_TMP/nginx port i mtls_conf="" probe_cert=()
  if [ -n "$client_ca" ]; then
    mtls_conf="ssl_client_certificate $client_ca; ssl_verify_client on; ssl_verify_depth 2;"
    probe_cert=(--cert "$BENCH_CLIENT_CERT" --key "$BENCH_CLIENT_KEY")
  fi
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx is not installed: run scripts/bench-deps.sh" >&2
    exit 2
  fi
  local access_log="access_log off;"
  if [ "${NGINX_ACCESS_LOG:-0}" = 1 ]; then access_log="access_log $dir/access.log;"; fi
  mkdir -p "$dir/www" "$dir/tmp"
  head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$dir/www/1k.bin"
  # nginx workers drop to `nobody` when started as root: they must be able to read the files.
  chmod 0755 "$BENCH_TMP" "$dir" "$dir/www"
  chmod 0644 "$dir/www/1k.bin"
  port=$(bench_free_port)
  cat >"$dir/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  $access_log
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  keepalive_requests 100000000;
  keepalive_timeout 65s;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    $mtls_conf
    root $dir/www;
  }
}
EOF
  local nginx_bin
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  "${SERVER_CPUS[@]}" "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  BENCH_PIDS+=($!)
  NGINX_PID=$!
  NGINX_URL=https://127.0.0.1:$port
  for i in $(seq 100); do
    if curl -sf --cacert "$WARD_CA" "${probe_cert[@]}" "$NGINX_URL/1k.bin" -o /dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nginx did not start; its log:" >&2
  cat "$dir/error.log" >&2
  exit 1
}

# put_secret PATH SIZE: writes a KV v2 secret whose JSON body is SIZE bytes to Ward.
put_secret() {
  local path=$1 size=$2
  python3 -c 'import json,sys; n=int(sys.argv[1]); h="{\"data\":{\"value\":\""; t="\"}}"; print(h+"x"*(n-len(h)-len(t))+t, end="")' \
    "$size" >"$BENCH_TMP/secret.json"
  curl -sf --cacert "$WARD_CA" -H "X-Vault-Token: $WARD_ROOT_TOKEN" -X PUT \
    --data-binary @"$BENCH_TMP/secret.json" "$WARD_URL/v1/$path" -o /dev/null
}

# ward_api METHOD PATH [JSON]: one request to the started Ward with the root token; prints the
# response body and fails on an error status.
ward_api() {
  curl -sf --cacert "$WARD_CA" -H "X-Vault-Token: $WARD_ROOT_TOKEN" -X "$1" \
    ${3:+--data "$3"} "$WARD_URL/v1/$2"
}

# setup_identity_bench: on the started Ward, enables AppRole with role "bench" (a secret-id with
# unlimited uses) and a PKI mount at pki/ with a root for spiffe://example.org and role "svc";
# writes the request bodies $BENCH_TMP/login.json (approle-login) and $BENCH_TMP/issue.json
# (pki-issue of spiffe://example.org/ns/bench/sa/web).
setup_identity_bench() {
  local role_id secret_id
  ward_api POST sys/auth/approle '{"type":"approle"}' >/dev/null
  ward_api POST auth/approle/role/bench '{"token_ttl":"1h","secret_id_num_uses":0}' >/dev/null
  role_id=$(ward_api GET auth/approle/role/bench/role-id |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["role_id"])')
  secret_id=$(ward_api POST auth/approle/role/bench/secret-id '{}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["secret_id"])')
  printf '{"role_id":"%s","secret_id":"%s"}' "$role_id" "$secret_id" >"$BENCH_TMP/login.json"
  ward_api POST sys/mounts/pki '{"type":"pki"}' >/dev/null
  ward_api POST pki/root/generate/internal \
    '{"common_name":"Bench Root","trust_domain":"spiffe://example.org","ttl":"8760h"}' >/dev/null
  ward_api POST pki/roles/svc \
    '{"allowed_uri_sans":["spiffe://example.org/ns/*/sa/*"],"ttl":"1h","max_ttl":"24h"}' >/dev/null
  printf '{"uri_sans":"spiffe://example.org/ns/bench/sa/web"}' >"$BENCH_TMP/issue.json"
}

# json_field FILE FIELD: the value of FIELD (dotted for nesting: latency_ms.p99) in the last
# JSON line of FILE (ward-bench --json output).
json_field() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
v = json.loads(line)
for k in sys.argv[2].split("."):
    v = v[k]
print(v)
EOF
}

# record_run NAME FILE: appends the throughput and the p99 latency (ms) of the ward-bench run
# in FILE (json_field) to the arrays NAME_tp and NAME_p99.
record_run() {
  local -n record_tp=$1_tp record_p99=$1_p99
  record_tp+=("$(json_field "$2" throughput)")
  record_p99+=("$(json_field "$2" latency_ms.p99)")
}

# nginx_pids: the nginx master started by start_nginx and its workers.
nginx_pids() {
  echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true)
}

# cpu_ticks PID...: the CPU time (user + system, in clock ticks) the processes, all their
# threads, have used so far.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    # utime and stime are fields 14 and 15; the name in field 2 may hold spaces.
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# cpu_us_per_request TICKS FILE: a server's CPU microseconds per request, from the TICKS it used
# during the ward-bench run in FILE (warm-up included: the run's throughput is taken to hold
# for its WARMUP seconds too).
cpu_us_per_request() {
  python3 - "$1" "$2" "$WARMUP" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
ticks, path, warmup, hz = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
r = json.loads([l for l in open(path) if l.startswith("{")][-1])
requests = r["throughput"] * (r["duration_s"] + warmup)
print(f"{ticks / hz * 1e6 / requests:.1f}" if requests > 0 else "nan")
EOF
}

# bench_load: the 1, 5 and 15 minute load averages, for the header of each run.
bench_load() {
  cut -d' ' -f1-3 /proc/loadavg
}

# median V1 V2 ...: the median of the numbers given.
median() {
  python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

# Prints the date, machine and load so every result carries its context.
print_context() {
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine:  $BENCH_CPUS cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "kernel:   $(uname -r); $(openssl version)"
  echo "nginx:    $( (nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1) | head -1)"
  echo "load:     $(uptime | sed 's/.*load average/load average/')"
  echo "binaries: $WARD $WARD_BENCH"
  bench_pinning
}
