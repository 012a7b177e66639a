#!/usr/bin/env bash
# Builds Ward. Usage: scripts/build.sh [release|asan|tsan] [ninja targets...]
#   release  build/release, warnings as errors, the `ward` binary and tests (default)
#   asan     build/asan, AddressSanitizer + UndefinedBehaviorSanitizer, everything
#   tsan     build/tsan, ThreadSanitizer (-O1 -g) with the Abseil shim, everything; run with
#            TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" (see docs/security.md)
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-release}
case "$kind" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARD_WERROR=ON -DWARD_SANITIZE=OFF) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DWARD_WERROR=ON -DWARD_SANITIZE=ON) ;;
  tsan) flags=(-DCMAKE_BUILD_TYPE=Debug -DWARD_WERROR=ON -DWARD_SANITIZE=OFF -DWARD_TSAN=ON) ;;
  *) echo "usage: $0 [release|asan|tsan]" >&2; exit 2 ;;
esac

# ccache, when the machine has it, only speeds rebuilds up; nothing depends on it.
if command -v ccache >/dev/null; then
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "build/$kind" -G Ninja "${flags[@]}" >/dev/null
ninja -C "build/$kind" "${@:2}"
