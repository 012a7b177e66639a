#!/usr/bin/env bash
# Installs every Debian 12 package Ward needs to build, run and test. Idempotent: packages
# already present are skipped, so a second run is quick. Must run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-14 libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev
  libssl-dev openssl libsqlite3-dev libabsl-dev libcli11-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev googletest libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  curl python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm run the compatibility test with an unmodified Vault client library
# (tests/compat). Any install that provides both commands will do.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
