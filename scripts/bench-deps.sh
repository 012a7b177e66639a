#!/usr/bin/env bash
# Installs the Debian 12 packages the side-by-side benchmarks in bench/ need on top of
# scripts/install-deps.sh: nginx (the HTTPS anchor), valgrind (callgrind profiles) and procps
# (uptime). Benchmarks are not part of scripts/test.sh; the bench smoke test needs none of these.
# Idempotent: packages already present are skipped. Must run as root (or with sudo).
set -euo pipefail

packages=(nginx valgrind procps)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "bench-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
# The Debian package's
# service is never used: the scripts run nginx as a child with their own config.
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
