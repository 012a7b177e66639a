#!/usr/bin/env bash
# Installs what is missing, builds Ward twice (the release binaries with warnings as errors,
# and everything with ASan + UBSan), runs every unit and integration test against the sanitizer
# build, then runs each fuzz target for 30 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release ward ward-bench
scripts/build.sh asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build/asan --output-on-failure -j2
# libFuzzer targets (clang build in build/fuzz), ~30 s each: see fuzz/README.md.
scripts/fuzz.sh
echo "test.sh: all tests passed"
