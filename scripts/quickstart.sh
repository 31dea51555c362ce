#!/usr/bin/env bash
# The main job on the embedded defaults: a LUT server on SQLite, an agent timing a small search
# space on this machine's CPU, C(i,j) printed and exported to out/quickstart/.
# Options go to examples/quickstart.py (--space, --resolution, --out, --threads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${PYTHON:-python3}" examples/quickstart.py "$@"
