#!/usr/bin/env bash
# A local multi-instance Tollgate: three `tollgate serve` processes sharing one PostgreSQL database and
# one Redis, behind Debian's nginx with TLS (a self-signed certificate made with openssl for this run).
#
#   deploy/local-multi.sh start    # start everything; prints the HTTPS URL and how to use the CLI
#   deploy/local-multi.sh status   # what runs
#   deploy/local-multi.sh stop     # stop nginx, then each instance (SIGTERM, waited for); data is kept
#   deploy/local-multi.sh purge    # stop, then drop the database and delete the state directory
#
# PostgreSQL and Redis must already run (on this machine: `bash .ci/services.sh` starts them); the script
# says so if they do not. Settings (environment):
#   TOLLGATE_LOCAL_DIR         state: master key, homes, logs, pids, the CLI's env file  (/tmp/tollgate-local-multi)
#   TOLLGATE_LOCAL_PORTS       the instances' ports                                      ("8421 8422 8423")
#   TOLLGATE_LOCAL_HTTPS_PORT  nginx's TLS port                                          (8443)
#   TOLLGATE_LOCAL_PG          the PostgreSQL server, without a database name            (postgres://postgres@127.0.0.1:5432)
#   TOLLGATE_LOCAL_DB          the database, created if missing                          (tollgate_local)
#   TOLLGATE_REDIS_URL         the Redis every instance shares                            (redis://127.0.0.1:6379)
#   TOLLGATE_UPSTREAM_URL      the Anthropic API, or the in-repo fake                     (https://api.anthropic.com)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${TOLLGATE_LOCAL_DIR:-/tmp/tollgate-local-multi}
read -r -a ports <<<"${TOLLGATE_LOCAL_PORTS:-8421 8422 8423}"
https_port=${TOLLGATE_LOCAL_HTTPS_PORT:-8443}
pg=${TOLLGATE_LOCAL_PG:-postgres://postgres@127.0.0.1:5432}
db=${TOLLGATE_LOCAL_DB:-tollgate_local}
redis=${TOLLGATE_REDIS_URL:-redis://127.0.0.1:6379}
nginx=${NGINX:-/usr/sbin/nginx}

die() {
  echo "local-multi: $*" >&2
  exit 1
}
say() { echo "local-multi: $*"; }

[[ $db =~ ^[a-z_][a-z0-9_]*$ ]] || die "TOLLGATE_LOCAL_DB must be a plain lower-case name, got '$db'"

# The environment of every instance and of the CLI beside them.
write_env() {
  umask 077
  {
    echo "export TOLLGATE_DATABASE_URL=$pg/$db"
    echo "export TOLLGATE_REDIS_URL=$redis"
    echo "export TOLLGATE_MASTER_KEY_FILE=$state/master.key"
    echo "export TOLLGATE_HOME=$state/cli-home"
    if [[ -n ${TOLLGATE_UPSTREAM_URL:-} ]]; then echo "export TOLLGATE_UPSTREAM_URL=$TOLLGATE_UPSTREAM_URL"; fi
  } >"$state/env"
}

preflight() {
  command -v node >/dev/null || die "node is not installed"
  [[ -x $nginx ]] || die "nginx is not installed: DEBIAN_FRONTEND=noninteractive apt-get install -y nginx --no-install-recommends"
  command -v openssl >/dev/null || die "openssl is not installed"
  command -v psql >/dev/null || die "psql (postgresql-client) is not installed"
  command -v redis-cli >/dev/null || die "redis-cli (redis-tools) is not installed"
  [[ -f $repo/dist/cli/main.js ]] || die "Tollgate is not built: run npm install (or npm run build) in $repo"
  psql -w -X -q -A -t -d "$pg/postgres" -c 'select 1' >/dev/null 2>&1 ||
    die "PostgreSQL does not answer at $pg (start it first, e.g. bash .ci/services.sh)"
  [[ $(timeout 5 redis-cli -u "$redis" ping 2>/dev/null) == PONG ]] ||
    die "Redis does not answer at $redis (start it first, e.g. bash .ci/services.sh)"
  say "PostgreSQL answers at $pg, Redis at $redis"
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  preflight
  mkdir -p -m 0700 "$state" "$state/logs" "$state/pids"
  for port in "${ports[@]}"; do
    if running "$state/pids/instance-$port.pid"; then die "already running (deploy/local-multi.sh stop first)"; fi
  done
  if [[ ! -f $state/master.key ]]; then
    (umask 077 && openssl rand -base64 32 >"$state/master.key")
    say "made a master key: $state/master.key (keep it: the database cannot be read without it)"
  fi
  if [[ $(psql -w -X -q -A -t -d "$pg/postgres" -c "select 1 from pg_database where datname = '$db'") != 1 ]]; then
    psql -w -X -q -d "$pg/postgres" -c "create database $db" >/dev/null
    say "created database $db"
  fi
  write_env
  # shellcheck disable=SC1091
  source "$state/env"
  # The installation is made once, before any instance starts (several first starts would race to make it).
  if [[ $(psql -w -X -q -A -t -d "$pg/$db" -c "select to_regclass('meta') is not null" 2>/dev/null) != t ]]; then
    mkdir -p -m 0700 "$TOLLGATE_HOME"
    node "$repo/bin/tollgate.js" init
  fi

  # The instances: each its own home and port; the same database, master key and Redis.
  for port in "${ports[@]}"; do
    local home=$state/instance-$port log=$state/logs/instance-$port.log
    mkdir -p -m 0700 "$home"
    : >"$log"
    TOLLGATE_HOME=$home TOLLGATE_HOST=127.0.0.1 TOLLGATE_PORT=$port \
      TOLLGATE_SERVER_PUBLIC_URL="https://127.0.0.1:$https_port" TOLLGATE_SERVER_TRUST_PROXY=true \
      setsid node --max-semi-space-size=8 --max-old-space-size=1024 "$repo/bin/tollgate.js" serve \
      >"$log" 2>&1 </dev/null &
    echo $! >"$state/pids/instance-$port.pid"
  done
  for port in "${ports[@]}"; do
    local log=$state/logs/instance-$port.log deadline=$((SECONDS + 30))
    until grep -q 'listening on' "$log"; do
      running "$state/pids/instance-$port.pid" || { cat "$log" >&2; stop_all; die "instance on port $port did not start"; }
      ((SECONDS < deadline)) || { stop_all; die "instance on port $port did not start within 30 s"; }
      sleep 0.2
    done
    say "instance $(grep -o 'listening on [^ ]*' "$log")"
  done

  # nginx with a throwaway certificate, in a temporary directory of its own.
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-nginx.XXXXXX")
  echo "$dir" >"$state/nginx-dir"
  mkdir -p "$dir/tls" "$dir/tollgate" "$dir/temp"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls/privkey.pem" -out "$dir/tls/fullchain.pem" 2>/dev/null
  chmod 0600 "$dir/tls/privkey.pem"
  for port in "${ports[@]}"; do echo "server 127.0.0.1:$port max_fails=3 fail_timeout=10s;"; done >"$dir/tollgate/upstreams.conf"
  cat >"$dir/tollgate/tls.conf" <<EOF
listen 127.0.0.1:$https_port ssl;
server_name localhost;
ssl_certificate $dir/tls/fullchain.pem;
ssl_certificate_key $dir/tls/privkey.pem;
EOF
  # Workers drop to nobody when nginx starts as root: they need their temporary directories.
  local user_line=''
  if ((EUID == 0)); then
    user_line='user nobody nogroup;'
    chmod 0711 "$dir"
    chown nobody:nogroup "$dir/temp"
  fi
  cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    log_format tollgate '\$remote_addr "\$request" \$status \$upstream_addr';
    access_log $dir/access.log tollgate;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    include $repo/deploy/nginx/tollgate.conf;
}
EOF
  "$nginx" -t -q -p "$dir" -c "$dir/nginx.conf" || { stop_all; die "nginx refused the configuration"; }
  "$nginx" -p "$dir" -c "$dir/nginx.conf" || { stop_all; die "nginx did not start"; }
  say "nginx: https://127.0.0.1:$https_port -> ${ports[*]} (certificate $dir/tls/fullchain.pem)"
  say "CLI beside the instances: source $state/env"
}

stop_all() {
  local dir=''
  [[ -f $state/nginx-dir ]] && dir=$(cat "$state/nginx-dir")
  if [[ -n $dir && -f $dir/nginx.pid ]]; then
    local pid
    pid=$(cat "$dir/nginx.pid")
    "$nginx" -q -p "$dir" -c "$dir/nginx.conf" -s quit 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    say "nginx stopped"
  fi
  [[ -n $dir ]] && rm -rf "$dir"
  rm -f "$state/nginx-dir"
  # SIGTERM lets each instance finish its requests and write its last usage records; it exits by itself.
  local pidfile
  for pidfile in "$state"/pids/instance-*.pid; do
    [[ -f $pidfile ]] || continue
    local pid name
    pid=$(cat "$pidfile")
    name=$(basename "$pidfile" .pid)
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        say "$name did not stop within 30 s: killed"
      else
        say "$name stopped"
      fi
    fi
    rm -f "$pidfile"
  done
}

status() {
  local pidfile
  for pidfile in "$state"/pids/instance-*.pid; do
    [[ -f $pidfile ]] || continue
    if running "$pidfile"; then echo "$(basename "$pidfile" .pid): running (pid $(cat "$pidfile"))"; else echo "$(basename "$pidfile" .pid): stopped"; fi
  done
  if [[ -f $state/nginx-dir ]] && running "$(cat "$state/nginx-dir")/nginx.pid"; then
    echo "nginx: running on https://127.0.0.1:$https_port"
  else
    echo "nginx: stopped"
  fi
}

purge() {
  stop_all
  if psql -w -X -q -A -t -d "$pg/postgres" -c 'select 1' >/dev/null 2>&1; then
    psql -w -X -q -d "$pg/postgres" -c "drop database if exists $db" >/dev/null
    say "dropped database $db"
  fi
  rm -rf "$state"
  say "removed $state"
}

case ${1:-} in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  purge) purge ;;
  *) die "usage: deploy/local-multi.sh start|status|stop|purge" ;;
esac
