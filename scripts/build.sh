#!/usr/bin/env bash
# Builds Ward. Usage: scripts/build.sh [release|asan] 
#   release  build/release, warnings as errors, the `ward` binary and tests (default)
#   asan     build/asan, AddressSanitizer + UndefinedBehaviorSanitizer, everything
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-release}
case "$kind" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARD_WERROR=ON -DWARD_SANITIZE=OFF) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DWARD_WERROR=ON -DWARD_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac

# ccache, when the machine has it, only speeds rebuilds up; nothing depends on it.
if command -v ccache >/dev/null; then
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "build/$kind" -G Ninja "${flags[@]}" >/dev/null
ninja -C "build/$kind" "${@:2}"
