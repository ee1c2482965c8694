# shellcheck shell=bash
# PostgreSQL and Redis for the tests, as the node-svc machines have them: started before a session,
# but not always still running. Sourced by .ci/run (needs lib.sh); also runnable on its own:
#   bash .ci/services.sh      # start what is down, print the URLs the tests use
#
# ensure_postgres exports TOLLGATE_TEST_DATABASE_URL, ensure_redis TOLLGATE_TEST_REDIS_URL.

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
export PGCONNECT_TIMEOUT=5

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

# pg_sql USER DB SQL: one query, unaligned output; -w: fail rather than prompt for a password.
pg_sql() { psql -w -X -q -A -t -h "$PG_HOST" -p "$PG_PORT" -U "$1" -d "$2" -c "$3"; }

ensure_postgres() {
  if pg_up; then
    echo "PostgreSQL answers on $PG_HOST:$PG_PORT"
  else
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
    [[ -n $version ]] || die "PostgreSQL is down and there is no cluster in /etc/postgresql"
    echo "PostgreSQL is down: starting cluster $version/main"
    # "|| true": a cluster that runs but does not answer yet makes start fail; the wait decides.
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_until "PostgreSQL on $PG_HOST:$PG_PORT" 60 pg_up
  fi

  # Trust auth over TCP: the role "postgres" works on these machines; "root" is the fallback.
  local user='' candidate
  for candidate in postgres root; do
    if pg_sql "$candidate" postgres 'select 1' >/dev/null 2>&1; then
      user=$candidate
      break
    fi
  done
  [[ -n $user ]] || die "neither role postgres nor root can log in over TCP on $PG_HOST:$PG_PORT"

  if [[ $(pg_sql "$user" postgres "select 1 from pg_database where datname = 'test'") != 1 ]]; then
    echo "creating database test"
    createdb -w -h "$PG_HOST" -p "$PG_PORT" -U "$user" test
  fi
  export TOLLGATE_TEST_DATABASE_URL="postgres://$user@$PG_HOST:$PG_PORT/test"
  echo "TOLLGATE_TEST_DATABASE_URL=$TOLLGATE_TEST_DATABASE_URL ($(pg_sql "$user" test 'show server_version'))"
}

redis_up() { [[ $(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

ensure_redis() {
  if redis_up; then
    echo "Redis answers on $REDIS_HOST:$REDIS_PORT"
  else
    echo "Redis is down: starting it (nothing kept on disk)"
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}"
    wait_until "Redis on $REDIS_HOST:$REDIS_PORT" 30 redis_up
  fi
  export TOLLGATE_TEST_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
  echo "TOLLGATE_TEST_REDIS_URL=$TOLLGATE_TEST_REDIS_URL (redis $(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info server | sed -n 's/^redis_version:\([^\r]*\).*/\1/p'))"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ensure_postgres
  ensure_redis
fi
