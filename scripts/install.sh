#!/usr/bin/env bash
# Install everything the project, its tests and its demo need on a fresh Debian machine.
# Idempotent: re-running it only checks. torch is pinned first to the local CPU wheel so
# that no extra's "torch>=2.0" pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
    echo "install.sh: apt-get install ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "install.sh: pip install torch==2.13.0 (CPU)" >&2
    "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
fi
echo "install.sh: pip install -e .[agent,server,client,report,dev]" >&2
"$PY" -m pip install -q --disable-pip-version-check -e ".[agent,server,client,report,dev]"
