#!/usr/bin/env bash
# ThreadSanitizer run: builds everything with -fsanitize=thread into build/tsan (Abseil's
# mutexes are made visible to TSan by src/core/testing/tsan_absl_shim.cc) and runs every unit and
# integration test. Not part of scripts/test.sh: a cold TSan build takes about 20 minutes on
# the 2-core machine (about 3 with a warm ccache); see docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh tsan
ctest --test-dir build/tsan --output-on-failure -j2 -E "compat|bench"
echo "tsan.sh: all tests passed under ThreadSanitizer"
