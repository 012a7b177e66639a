#!/usr/bin/env bash
# Installs what is missing, builds Ward twice (release with warnings as errors, and with
# ASan + UBSan), and runs every unit and integration test against the sanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/build.sh asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build/asan --output-on-failure -j2
echo "test.sh: all tests passed"
