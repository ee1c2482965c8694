#!/usr/bin/env bash
# Debian's Chromium (/usr/bin/chromium) for the dashboard's browser tests, and curl and jq for the
# README's API examples (test/api/readme-examples.test.ts runs them); each installed only if missing.
# .ci/run runs this in the background while `npm install` runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in chromium curl jq; do
  [[ -x /usr/bin/$pkg ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "chromium, curl and jq already installed"
else
  # Wait for the dpkg lock rather than fail if another apt-get holds it.
  apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update
  "${apt[@]}" install -y "${missing[@]}"
fi
# (The Debian wrapper script prints a harmless "[: ...: unexpected operator" on stderr.)
/usr/bin/chromium --version 2>/dev/null
