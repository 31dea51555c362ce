#!/bin/sh
# Container command of the LUT server (Dockerfile ENTRYPOINT, docker-compose `lut_server`).
# It checks the configuration, then hands over to `lut serve`, which applies the Alembic
# migrations before it listens. Extra arguments are passed on to `lut serve`.
#
# Environment:
#   DATABASE_URL        postgresql://USER:PASSWORD@HOST:5432/DB (or sqlite:///path)
#   LUT_ADMIN_TOKEN     made a valid admin token at start (create agent tokens with it, import LUTs)
#   LUT_READ_TOKEN_REQUIRED=1  reads need a token too
#   *_FILE              DATABASE_URL_FILE, LUT_ADMIN_TOKEN_FILE: read the value from a file (a secret)
#   LUT_HOST, LUT_PORT  where to listen (default 0.0.0.0:8000)
#   LUT_SERVE_ARGS      extra `lut serve` options, e.g. "--read-token-required"
#   LUT_DB_WAIT_S       how long to wait for the database to accept connections (default 60)
set -eu

# file_env VAR: when VAR is unset and VAR_FILE names a file (a Docker/Compose secret), read VAR from it.
file_env() {
    var=$1
    eval "val=\${$var:-}"
    eval "file=\${${var}_FILE:-}"
    if [ -z "$val" ] && [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "lut-server: ${var}_FILE=$file is not a readable file" >&2
            exit 64
        fi
        val=$(cat "$file")
        export "$var=$val"
    fi
}

file_env DATABASE_URL
file_env LUT_ADMIN_TOKEN
if [ -z "${DATABASE_URL:-}" ]; then
    echo "lut-server: DATABASE_URL is not set (e.g. postgresql://lut:PASSWORD@postgres:5432/lut)" >&2
    exit 64
fi
export DATABASE_URL

host="${LUT_HOST:-0.0.0.0}"
port="${LUT_PORT:-8000}"

# Wait for the database, so that a server started beside a cold PostgreSQL (without a
# healthcheck-gated depends_on) does not die on its first connection.
python3 - "${LUT_DB_WAIT_S:-60}" <<'EOF'
import os, sys, time

from sqlalchemy import create_engine, text

from lut_server.db import normalize_url

url = normalize_url(os.environ["DATABASE_URL"])
deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        break
    except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
        if time.monotonic() > deadline:
            sys.exit("lut-server: database not reachable after %ss: %s" % (sys.argv[1], e))
        time.sleep(1)
EOF

# Word splitting of LUT_SERVE_ARGS is intended: it holds options.
# shellcheck disable=SC2086
exec lut serve --host "$host" --port "$port" ${LUT_SERVE_ARGS:-} "$@"
