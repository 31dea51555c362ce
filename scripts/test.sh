#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts PostgreSQL, runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/core -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ -z "${LUT_TEST_PG_URL:-}" ] && [ -f .ci/start-postgres.sh ]; then
    eval "$(bash .ci/start-postgres.sh)"
fi
export LUT_TEST_PG_URL
PY=${PYTHON:-python3}
exec "$PY" -m pytest -q "$@"
