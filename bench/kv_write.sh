#!/usr/bin/env bash
# Durable KV write throughput: WRITERS concurrent connections each PUT 1 KB KV v2 writes
# (closed loop) to a dev Ward whose data lives on disk (SQLite, group commit: a 200 answer
# means the write is on disk). Each writer updates its own secret (--paths connection), so
# every write also trims versions beyond the default max_versions. Prints writes/s and
# latency, median of REPEAT runs (each on a fresh server).
#
# Settings (environment): WRITERS=64 THREADS=1 DURATION=8 WARMUP=1 REPEAT=3 PATHS=connection
#   DATA_PARENT (where the data dir goes; default $TMPDIR or /tmp: use a real disk, not tmpfs)
#   BUILD_DIR=build/release
set -euo pipefail
source "$(dirname "$0")/lib.sh"
WRITERS=${WRITERS:-64}
bench_defaults
PATHS=${PATHS:-connection}
export TMPDIR=${DATA_PARENT:-${TMPDIR:-/tmp}}

bench_init
print_context
echo "data:     $BENCH_TMP on $(df --output=fstype "$BENCH_TMP" | tail -1) ($(df --output=source "$BENCH_TMP" | tail -1))"
echo "settings: -c $WRITERS -t $THREADS -d $DURATION --warmup $WARMUP --paths $PATHS, 1 KB body, $REPEAT repeats"
echo

tp=() p50=() p99=()
for i in $(seq "$REPEAT"); do
  start_ward "ward-$i"
  echo "--- run $i (load: $(bench_load))"
  "$WARD_BENCH" --url "$WARD_URL" --ca-file "$WARD_CA" --token "$WARD_ROOT_TOKEN" \
    --scenario kv-write --path secret/data/w --paths "$PATHS" --body-size 1024 \
    -c "$WRITERS" -t "$THREADS" -d "$DURATION" --warmup "$WARMUP" --json | tee "$BENCH_TMP/run-$i.out"
  tp+=("$(json_field "$BENCH_TMP/run-$i.out" throughput)")
  p50+=("$(json_field "$BENCH_TMP/run-$i.out" latency_ms.p50)")
  p99+=("$(json_field "$BENCH_TMP/run-$i.out" latency_ms.p99)")
  # Stop this server before the next run starts (the last one is stopped on exit).
  stop_last
done

echo
echo "=== summary (medians of $REPEAT runs)"
printf 'writes/s %.0f   p50 %.3f ms   p99 %.3f ms   (per run: %s)\n' "$(median "${tp[@]}")" \
  "$(median "${p50[@]}")" "$(median "${p99[@]}")" "${tp[*]}"
