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
# Bytecode for this checkout, written once: where PYTHONDONTWRITEBYTECODE is set (this kind of machine
# sets it), every `lut serve`, `lut` and agent subprocess of the suite would compile the project again
# (about 0.5 s of CPU for each server start).
"$PY" -m compileall -q -j 0 lutcore lut_server profiler_agent search_client tests >/dev/null
# The same for pytest's assertion rewriting of the test modules: once here, read by every worker.
"$PY" scripts/prime_assert_rewrite.py tests
# The plugins the suite uses, named: auto-loading also loads other installed plugins and has pytest
# rewrite the asserts of every module of each plugin's package (schemathesis: 158) in every worker.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
# One intra-op thread per process (torch, LightGBM): the workers below already outnumber the cores, and
# a second thread per worker only contends for them (tests/core/test_cells_torch.py: 17.9 -> 11.0 s of CPU).
# Tests about threads pass them explicitly (the agent's --threads); a caller's own setting wins.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PLUGINS=(-p xdist.plugin -p pytest_timeout -p schemathesis.pytest.plugin -p _hypothesis_pytestplugin)
# Four workers even on two cores: most tests wait on a server or a subprocess, not the CPU
# (2 cores: 4 workers 10.5 min, 2 workers 11.5 min, 1 worker 16.5 min). LUT_TEST_WORKERS=0 runs serially.
# tests/conftest.py deals the tests marked slow to the heads of the workers' shares, so that no
# long test starts last.
exec "$PY" -m pytest -q "${PLUGINS[@]}" -n "${LUT_TEST_WORKERS:-4}" --dist worksteal "$@"
