#!/usr/bin/env bash
# Debian's Chromium (/usr/bin/chromium) for the dashboard's browser tests; installed only if missing.
# .ci/run runs this in the background while `npm install` runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [[ -x /usr/bin/chromium ]]; then
  echo "chromium already installed"
else
  # Wait for the dpkg lock rather than fail if another apt-get holds it.
  apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update
  "${apt[@]}" install -y chromium
fi
# (The Debian wrapper script prints a harmless "[: ...: unexpected operator" on stderr.)
/usr/bin/chromium --version 2>/dev/null
