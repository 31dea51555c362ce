#!/usr/bin/env bash
# Install the profiler agent on a Jetson without Docker: a venv with --system-site-packages, so
# that JetPack's TensorRT (python3-libnvinfer, in /usr/lib/python3/dist-packages) stays importable,
# NVIDIA's torch wheel for JetPack 5, pycuda compiled here against JetPack's CUDA, and this project
# with its `agent` and `trt` extras.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="install-venv.sh"

VENV=/opt/nas-lut/venv
SRC="$(cd "$HERE/../.." && pwd)"
PYTHON=python3
# NVIDIA's torch for JetPack 5.1.x, Python 3.8 (https://developer.download.nvidia.com/compute/redist/jp/).
TORCH_WHL="https://developer.download.nvidia.com/compute/redist/jp/v512/pytorch/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl"
PYCUDA_VERSION=2022.2.2
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
APT=0
TRT=1
DRY_RUN=0

usage() {
    cat <<EOF
usage: $PROG [options]

Make a venv for the profiler agent that sees JetPack's TensorRT, and install the agent into it.

options:
  --venv DIR         where (default $VENV)
  --src DIR          the nas-lut source tree (default $SRC)
  --python EXE       the system Python (default python3: 3.8 on JetPack 5)
  --torch-wheel URL  NVIDIA's torch wheel for this JetPack (default: JetPack 5.1.2, torch 2.1)
  --apt              first apt-get install the build packages (python3-venv, python3-dev,
                     build-essential, libopenblas-dev, libomp-dev, python3-libnvinfer)
  --no-trt           no TensorRT check and no pycuda (for the pytorch-cuda backend only)
  --dry-run          print the commands instead of running them
  -h, --help         this help
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

need_arg() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --venv) need_arg "$@"; VENV="$2"; shift 2 ;;
        --src) need_arg "$@"; SRC="$2"; shift 2 ;;
        --python) need_arg "$@"; PYTHON="$2"; shift 2 ;;
        --torch-wheel) need_arg "$@"; TORCH_WHL="$2"; shift 2 ;;
        --apt) APT=1; shift ;;
        --no-trt) TRT=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -f "$SRC/pyproject.toml" ]] || die "--src $SRC is not the nas-lut source tree (no pyproject.toml)"

run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf 'would run:'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

step() {
    printf '\n== %s\n' "$*"
}

if [[ $APT -eq 1 ]]; then
    step "build packages (apt)"
    pkgs=(python3-venv python3-dev python3-pip build-essential libopenblas-dev libomp-dev)
    [[ $TRT -eq 1 ]] && pkgs+=(python3-libnvinfer)
    run apt-get update
    run apt-get install -y --no-install-recommends "${pkgs[@]}"
fi

step "system Python and TensorRT"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 8))' \
    || die "$PYTHON is older than 3.8; JetPack 5 ships 3.8"
"$PYTHON" --version
if [[ $TRT -eq 1 ]]; then
    if ! "$PYTHON" -c 'import tensorrt; print("tensorrt", tensorrt.__version__)'; then
        msg="JetPack's TensorRT is not importable by $PYTHON: sudo apt-get install python3-libnvinfer (or pass --apt)"
        if [[ $DRY_RUN -eq 1 ]]; then echo "warning: $msg"; else die "$msg"; fi
    fi
fi

step "venv: $VENV (--system-site-packages: TensorRT comes from JetPack)"
run "$PYTHON" -m venv --system-site-packages "$VENV"
py="$VENV/bin/python"
# JetPack 5's pip (20.x) cannot install a pyproject.toml-only project: upgrade it in the venv.
run "$py" -m pip install --upgrade "pip==24.0" "setuptools==69.5.1" "wheel==0.43.0"

step "torch (NVIDIA's JetPack wheel; PyPI's aarch64 torch has no CUDA)"
if [[ $DRY_RUN -eq 0 ]] && "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "a CUDA torch is already visible: $("$py" -c 'import torch; print(torch.__version__)')"
else
    run "$py" -m pip install "numpy==1.24.4" "$TORCH_WHL"
fi

# Keep that torch: the project's `torch>=2.0` must not pull another one from PyPI.
constraints="$VENV/pip-constraints.txt"
if [[ $DRY_RUN -eq 1 ]]; then
    echo "would write $constraints (the installed torch pinned)"
else
    "$py" -c 'from importlib.metadata import version; print("torch==" + version("torch"))' >"$constraints"
    [[ $TRT -eq 1 ]] && echo "pycuda==$PYCUDA_VERSION" >>"$constraints"
fi

step "nas-lut agent from $SRC"
extras="agent"
[[ $TRT -eq 1 ]] && extras="agent,trt"
# pycuda builds against JetPack's CUDA; the libcuda stub lets it link without a driver in PATH.
export CUDA_ROOT="$CUDA_HOME" PATH="$CUDA_HOME/bin:$PATH" LIBRARY_PATH="$CUDA_HOME/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
run env PIP_CONSTRAINT="$constraints" "$py" -m pip install "${SRC}[$extras]"

step "check"
check='import torch, profiler_agent
print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
[[ $TRT -eq 1 ]] && check="$check
import tensorrt, pycuda.driver
print(\"tensorrt\", tensorrt.__version__)"
run "$py" -c "$check"

[[ $DRY_RUN -eq 1 ]] && echo "(dry run: nothing was installed)"
cat <<EOF

Next (as root): pin the power mode and clocks, install the service, see the fingerprint:
  sudo $HERE/setup.sh --venv $VENV --server http://LUT-SERVER:8000 --token TOKEN --device $(hostname -s 2>/dev/null || echo NAME)
EOF
