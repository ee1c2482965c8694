#!/usr/bin/env bash
# wrk, the load generator of `npm run bench` (Debian's package), installed only if missing.
# Not part of `.ci/run`: benchmarks are not tests. Run it by hand (as root, or with sudo available).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if command -v wrk >/dev/null 2>&1; then
  echo "wrk already installed: $(command -v wrk)"
else
  # Wait for the dpkg lock rather than fail if another apt-get holds it.
  apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  if [[ $(id -u) -ne 0 ]]; then
    apt=(sudo "${apt[@]}")
  fi
  "${apt[@]}" update
  "${apt[@]}" install -y wrk
fi
# `wrk --version` prints its version and usage, and exits 1.
wrk --version 2>&1 | head -n 1 || true
