#!/usr/bin/env bash
# Every GPU path once, on one GPU, in at most 8 minutes; the figures go to a folder as JSON.
#
#   scripts/gpu-smoke.sh [OUT_DIR]      (default bench/results/gpu-smoke-<UTC time>)
#
# pytorch-cuda with and without CUDA graphs (fp32, fp16); TensorRT fp32/fp16/int8 where it is
# installed: per-op engines, the whole network with in-context attribution, and one validation
# (the LUT sum of the network's blocks against the network). Every path records the provenance
# the agent stores (graphs, enqueue time, clocks and throttle reasons, engine I/O formats).
# Without a GPU (or without any GPU backend) it says so and exits 0. A path that fails is
# recorded with its error and the script exits 1 after trying the others.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench/results/gpu-smoke-$(date -u +%Y%m%dT%H%M%SZ)}"
PY="${PYTHON:-python3}"
export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" - <<'EOF'
import sys
from profiler_agent.backends import available_backends

a = available_backends()
gpu = {k: a[k] for k in ("pytorch-cuda", "tensorrt")}
if all(v is not None for v in gpu.values()):
    print("gpu-smoke: no GPU here, nothing to run (" + "; ".join(f"{k}: {v}" for k, v in gpu.items()) + ")")
    sys.exit(1)
EOF
then
    exit 0
fi

exec timeout --signal=INT 480 "$PY" - "$OUT" <<'EOF'
import json
import os
import sys
import time
import traceback

from lutcore.ops import Conv, InvertedResidual
from lutcore.spaces import get_arch
from profiler_agent.backends import available_backends, get_backend
from profiler_agent.timing import TimingProtocol

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
T0 = time.time()
BUDGET_S = 420  # leave a minute of the 8 for writing and closing
P = TimingProtocol(ci=0.02, max_time_s=0.5, min_samples=10)
OPS = [
    Conv(c_in=16, h=8, w=8, c_out=16),  # tiny: enqueue-bound without graphs
    Conv(c_in=32, h=56, w=56, c_out=32),
    InvertedResidual(c_in=32, h=28, w=28, c_out=32, expansion=4),
]
ARCH = get_arch("squeezenas-small:random:3", "64x128")
KEEP = ("graphs", "graph_k", "gpu_ms", "enqueue_ms", "enqueue_bound", "warmup", "warmup_gpu_s", "clocks_settled",
        "clocks", "io", "runtime", "graphs_unavailable")
figures = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "backends": available_backends(),
           "paths": [], "failed": []}


def row(res):
    out = {"median_ms": round(res.stats.median_ms, 6), "ci_rel": res.ci_rel, "n": res.stats.n}
    out.update({k: res.env[k] for k in KEEP if k in res.env})
    return out


def blocks(arch):
    space = arch.space
    specs = [f.spec for f in space.stem] + [s for s in arch.layer_ops() if not s.is_identity]
    specs += [f.spec for f in space.head] + ([space.decoder.spec] if space.decoder else [])
    return specs


def write():
    figures["wall_s"] = round(time.time() - T0, 1)
    with open(os.path.join(OUT, "gpu-smoke.json"), "w") as f:
        json.dump(figures, f, indent=1, default=str)


def path(name, fn):
    if time.time() - T0 > BUDGET_S:
        figures["paths"].append({"path": name, "skipped": "time budget spent"})
        return
    t = time.time()
    entry = {"path": name}
    try:
        entry.update(fn())
    except Exception as e:  # noqa: BLE001 - record and go on with the other paths
        entry["error"] = f"{type(e).__name__}: {e}"
        entry["traceback"] = traceback.format_exc()[-2000:]
        figures["failed"].append(name)
    entry["wall_s"] = round(time.time() - t, 2)
    figures["paths"].append(entry)
    write()  # after every path: a run cut short by the 8-minute timeout keeps what it measured
    print(f"{name:40s} {'FAILED ' + entry['error'] if 'error' in entry else 'ok'} ({entry['wall_s']} s)", flush=True)


def torch_path(precision, graphs):
    def run():
        b = get_backend("pytorch-cuda", precision=precision, cuda_graphs=graphs)
        try:
            ops = {s.key: row(b.time_op(s, P)) for s in OPS}
            net = row(b.time_network(ARCH, P))
            return {"target": b.target("gpu").id, "versions": b.versions(), "ops": ops, "network": net}
        finally:
            b.close()
    return run


def trt_path(precision, validate):
    def run():
        b = get_backend("tensorrt", precision=precision, cache_dir=os.path.join(OUT, "trt-cache"))
        try:
            ops = {s.key: row(b.time_op(s, P)) for s in OPS}
            again = row(b.time_op(OPS[0], P))  # a second round: no rebuild, no recapture, warm state kept
            res = b.time_network(ARCH, P)
            out = {"target": b.target("gpu").id, "versions": b.versions(), "ops": ops, "second_round": again,
                   "network": row(res), "in_context": res.env.get("in_context"), "builds": b.builds,
                   "engine_hits": b.engine_hits, "device_key": b.device_key.fields()}
            if validate:
                isolated = {s.key: b.time_op(s, P).stats.median_ms for s in blocks(ARCH)}
                lut_sum = sum(isolated[s.key] for s in blocks(ARCH))
                out["validation"] = {"arch": ARCH.name, "lut_sum_ms": lut_sum, "network_ms": res.stats.median_ms,
                                     "error": lut_sum / res.stats.median_ms - 1.0, "isolated_ms": isolated}
            return out
        finally:
            b.close()
    return run


avail = figures["backends"]
if avail["pytorch-cuda"] is None:
    for graphs in (True, False):
        for precision in ("fp32", "fp16"):
            path(f"pytorch-cuda {precision} graphs={graphs}", torch_path(precision, graphs))
else:
    figures["paths"].append({"path": "pytorch-cuda", "skipped": avail["pytorch-cuda"]})
if avail["tensorrt"] is None:
    for precision in ("fp16", "fp32", "int8"):
        path(f"tensorrt {precision}", trt_path(precision, validate=precision == "fp16"))
else:
    figures["paths"].append({"path": "tensorrt", "skipped": avail["tensorrt"]})

write()
print(f"figures: {os.path.join(OUT, 'gpu-smoke.json')} ({figures['wall_s']} s)")
sys.exit(1 if figures["failed"] else 0)
EOF
