#!/usr/bin/env bash
# Debian's Chromium (/usr/bin/chromium) for the dashboard's browser tests, curl and jq for the
# README's API examples (test/api/readme-examples.test.ts runs them), and Debian's prometheus package
# for `promtool check metrics` (test/metrics/prometheus.test.ts), and Debian's nginx for the deployment
# check (test/deploy/nginx.test.ts runs deploy/nginx/tollgate.conf); each installed only if missing.
# prometheus comes without its recommended exporters; a daemon its postinst may start listens on
# :9090, which no test uses.
# .ci/run runs this in the background while `npm install` runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in chromium curl jq; do
  [[ -x /usr/bin/$pkg ]] || missing+=("$pkg")
done
# Wait for the dpkg lock rather than fail if another apt-get holds it.
apt=(apt-get -q -o DPkg::Lock::Timeout=300)
if ((${#missing[@]} == 0)); then
  echo "chromium, curl and jq already installed"
else
  "${apt[@]}" update
  "${apt[@]}" install -y "${missing[@]}"
fi
if [[ -x /usr/bin/promtool ]]; then
  echo "promtool already installed"
else
  ((${#missing[@]} > 0)) || "${apt[@]}" update
  "${apt[@]}" install -y --no-install-recommends prometheus
fi
if [[ -x /usr/sbin/nginx ]]; then
  echo "nginx already installed"
else
  "${apt[@]}" update
  "${apt[@]}" install -y --no-install-recommends nginx
fi
# (The Debian wrapper script prints a harmless "[: ...: unexpected operator" on stderr.)
/usr/bin/chromium --version 2>/dev/null
/usr/bin/promtool --version 2>&1 | head -n 1
/usr/sbin/nginx -v
