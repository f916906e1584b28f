#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 for the test suite: start the machine's
# servers when they are installed but stopped, install them (Debian) when they are missing.
set -euo pipefail

PG_URL=${PARLEY_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS_PORT=${PARLEY_TEST_REDIS_PORT:-6379}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "ensure-services: $what did not come up" >&2; return 1
}

pg_up() { pg_isready -q -d "$PG_URL"; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

if ! command -v pg_isready >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ensure-services: installing PostgreSQL" >&2
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # the suite connects as postgres over TCP without a password, as on the CI machines
  echo "host all all 127.0.0.1/32 trust" | as_root tee -a "/etc/postgresql/$version/main/pg_hba.conf" >/dev/null
  echo "host all all ::1/128 trust" | as_root tee -a "/etc/postgresql/$version/main/pg_hba.conf" >/dev/null
fi
if ! pg_up; then
  echo "ensure-services: starting PostgreSQL" >&2
  for version in $(ls /etc/postgresql); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for PostgreSQL pg_up
fi

if ! command -v redis-server >/dev/null; then
  echo "ensure-services: installing Redis" >&2
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! redis_up; then
  echo "ensure-services: starting Redis" >&2
  mkdir -p /tmp/parley-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/parley-redis --logfile /tmp/parley-redis/redis.log
  wait_for Redis redis_up
fi
echo "ensure-services: PostgreSQL and Redis are up"
