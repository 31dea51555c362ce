#!/usr/bin/env bash
# Start a local PostgreSQL (15 on Debian) idempotently, create a role + database for the tests,
# and print `export LUT_TEST_PG_URL=...` for `eval "$(.ci/start-postgres.sh)"`.
# Diagnostics go to stderr so only the export line reaches stdout.
set -euo pipefail

PG_USER="${LUT_PG_USER:-lut}"
PG_PASS="${LUT_PG_PASSWORD:-lut}"
PG_DB="${LUT_PG_DB:-lut_test}"
VER="${PG_VERSION:-15}"

log() { echo "start-postgres: $*" >&2; }

as_postgres() {
  if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^${VER} main$"; then
  VER="$(pg_lsclusters -h | awk 'NR==1{print $1}')"
  if [ -z "$VER" ]; then
    VER="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    log "creating cluster ${VER}/main"
    pg_createcluster "$VER" main >&2
  fi
fi
PORT="$(pg_lsclusters -h | awk -v v="$VER" '$1==v && $2=="main"{print $3}')"

if ! pg_lsclusters -h | awk -v v="$VER" '$1==v && $2=="main"{print $4}' | grep -q online; then
  log "starting cluster ${VER}/main on port ${PORT}"
  pg_ctlcluster "$VER" main start >&2
fi

for _ in $(seq 1 30); do
  if as_postgres psql -p "$PORT" -qtAc "select 1" >/dev/null 2>&1; then break; fi
  sleep 0.5
done

as_postgres psql -p "$PORT" -qtAc "select 1 from pg_roles where rolname='${PG_USER}'" | grep -q 1 || \
  as_postgres psql -p "$PORT" -qc "create role ${PG_USER} login createdb password '${PG_PASS}'" >&2
as_postgres psql -p "$PORT" -qtAc "select 1 from pg_database where datname='${PG_DB}'" | grep -q 1 || \
  as_postgres psql -p "$PORT" -qc "create database ${PG_DB} owner ${PG_USER}" >&2

echo "export LUT_TEST_PG_URL=postgresql+psycopg://${PG_USER}:${PG_PASS}@127.0.0.1:${PORT}/${PG_DB}"
