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
# Four workers even on two cores: most tests wait on a server or a subprocess, not the CPU
# (2 cores: 4 workers 10.5 min, 2 workers 11.5 min, 1 worker 16.5 min). LUT_TEST_WORKERS=0 runs serially.
exec "$PY" -m pytest -q -n "${LUT_TEST_WORKERS:-4}" --dist worksteal "$@"
