#!/usr/bin/env bash
# Builds Ward's libFuzzer targets (fuzz/, clang-14, ASan + UBSan) in build/fuzz and runs each
# for WARD_FUZZ_SECONDS (default 30) from its seed corpus. Fails if any target finds a crash,
# a leak, a hang or undefined behaviour, and prints the input that triggers it.
#
# Usage: scripts/fuzz.sh [target ...]      (default: every *_fuzzer; names without "_fuzzer")
#   WARD_FUZZ_SECONDS  seconds per target (default 30)
#   WARD_FUZZ_JOBS     targets run at once (default 2)
# The committed corpus (fuzz/corpus/<target>/) is never modified: each run works on a copy.
# Crash inputs are kept in build/fuzz/artifacts/<target>/; reproduce one with
#   build/fuzz/<target>_fuzzer <input>      (api_request: WARD_FUZZ_VERBOSE=1 shows each request)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${WARD_FUZZ_SECONDS:-30}
jobs=${WARD_FUZZ_JOBS:-2}
build=build/fuzz

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
CC=clang-14 CXX=clang++-14 cmake -S fuzz -B "$build" -G Ninja "${launcher[@]}" >/dev/null
ninja -C "$build" -j"$(nproc)"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/*_fuzzer.cc; do
    name=$(basename "$f" .cc)
    targets+=("${name%_fuzzer}")
  done
fi

# Input size limits: big enough for each format's interesting cases (http_syntax reaches the
# 16 KiB header limit), small enough to keep executions fast.
max_len() {
  case "$1" in
    http_syntax) echo 20480 ;;
    audit_verify) echo 16384 ;;
    config) echo 4096 ;;
    *) echo 8192 ;;
  esac
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; its libFuzzer output goes to $work/<target>.log.
run() {
  local t=$1
  local artifacts="$build/artifacts/$t"
  rm -rf "$artifacts"
  mkdir -p "$artifacts" "$work/$t"
  cp -r "fuzz/corpus/$t/." "$work/$t/"
  local dict=()
  if [ -f "fuzz/$t.dict" ]; then dict=(-dict="fuzz/$t.dict"); fi
  "$build/${t}_fuzzer" "$work/$t" "${dict[@]}" -max_total_time="$seconds" \
    -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$work/$t.log" 2>&1
}

failed=()
report() {
  local t=$1 rc=$2
  local stats
  stats=$(grep -E '^stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}' || true)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz.sh: $t: ok (${stats:-?} inputs in ${seconds}s)"
    return
  fi
  failed+=("$t")
  echo "fuzz.sh: $t: FAILED (exit $rc)" >&2
  grep -E 'ERROR|invariant violated|SUMMARY|^ +#[0-9]+ ' "$work/$t.log" | head -30 >&2 || true
  for input in "$build/artifacts/$t"/*; do
    [ -e "$input" ] || continue
    echo "fuzz.sh: $t: crash input: $input" >&2
    echo "fuzz.sh:   reproduce: $build/${t}_fuzzer $input" >&2
  done
  cp "$work/$t.log" "$build/artifacts/$t.log"
  echo "fuzz.sh: $t: full log: $build/artifacts/$t.log" >&2
}

# Up to $jobs targets at once.
declare -A pids=()
for t in "${targets[@]}"; do
  if [ ! -x "$build/${t}_fuzzer" ] || [ ! -d "fuzz/corpus/$t" ]; then
    echo "fuzz.sh: unknown target $t" >&2
    exit 2
  fi
  while [ "${#pids[@]}" -ge "$jobs" ]; do
    for done_t in "${!pids[@]}"; do
      if ! kill -0 "${pids[$done_t]}" 2>/dev/null; then
        rc=0
        wait "${pids[$done_t]}" || rc=$?
        unset "pids[$done_t]"
        report "$done_t" "$rc"
      fi
    done
    sleep 1
  done
  run "$t" &
  pids[$t]=$!
done
for t in "${!pids[@]}"; do
  rc=0
  wait "${pids[$t]}" || rc=$?
  report "$t" "$rc"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without a finding"
