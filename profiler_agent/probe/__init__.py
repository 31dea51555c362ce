"""Device fingerprint: what hardware, settings and software produced the numbers.

``probe`` gathers identity (module, release, GPU, CPU, versions) and the current clocks;
``read_clocks`` is the cheap, volatile part read before and after each batch;
``fingerprint_digest`` hashes only the identity, so two runs on the same board in the same
power mode share a digest whatever the temperature. ``root`` points at a copied sysfs tree in tests.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from profiler_agent.probe import cpu, gpu, jetson, libs
from profiler_agent.probe.sysfs import glob, read_int, read_text

VOLATILE_KEYS = ("clocks", "warnings", "probed_at", "hostname")
HOT_C = 85.0
# Zones that report a fixed placeholder rather than a temperature (Xavier's PMIC-Die reads 100 C).
NOT_SENSORS = ("PMIC-Die",)
SCHEMA = 1


def _is_live(root: Union[str, Path]) -> bool:
    return Path(root).resolve() == Path("/").resolve()


def temperatures(root: Union[str, Path]) -> Dict[str, float]:
    """Thermal zone type -> degrees C (sysfs reports milli-degrees)."""
    out: Dict[str, float] = {}
    for z in glob(root, "/sys/class/thermal/thermal_zone*"):
        rel = "/" + str(z.relative_to(root))
        kind = read_text(root, f"{rel}/type") or z.name
        t = read_int(root, f"{rel}/temp")
        if t is None or t <= -40000:  # -40 C and below are "no sensor" placeholders on Jetsons
            continue
        name, i = kind, 1
        while name in out:
            i += 1
            name = f"{kind}#{i}"
        out[name] = round(t / 1000.0, 1)
    return out


def read_clocks(root: Union[str, Path] = "/") -> Dict[str, Any]:
    """The quickly readable, volatile state: CPU/GPU/EMC clocks, temperatures, power mode."""
    out: Dict[str, Any] = {"read_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    f = cpu.cpu_freq(root)
    if f:
        out["cpu"] = f
    if jetson.is_jetson(root):
        from profiler_agent.probe.gpu_clocks import debugfs_allowed

        out.update(jetson.gpu_emc_clocks(root, debugfs=debugfs_allowed(root)))
        mode = jetson.nvpmodel(root)
        out["nvpmodel"] = mode.get("name") or mode.get("id")
    elif _is_live(root):
        smi = gpu.nvidia_smi_clocks()
        if smi:
            out["nvidia_smi"] = smi
    temps = temperatures(root)
    if temps:
        out["temps_c"] = temps
    return out


def clock_warnings(clocks: Dict[str, Any]) -> List[str]:
    """Why the numbers may wander: unlocked clocks, a hot board."""
    warns: List[str] = []
    c = clocks.get("cpu")
    if c and c.get("locked") is False:
        warns.append(
            f"CPU clocks are not locked (governor {','.join(c.get('governors') or ['?'])}); "
            "use the performance governor or jetson_clocks"
        )
    for part in ("gpu", "emc"):
        info = clocks.get(part)
        if info is not None and jetson.clock_locked(info) is False:
            warns.append(
                f"{part.upper()} clock is not locked (cur {info.get('cur_hz')} Hz, min {info.get('min_hz')}, "
                f"max {info.get('max_hz')}); run `sudo jetson_clocks`"
            )
    for zone, t in (clocks.get("temps_c") or {}).items():
        if t >= HOT_C and zone.split("#")[0] not in NOT_SENSORS:
            warns.append(f"thermal zone {zone} is at {t} C: expect throttling")
    return warns


def probe(root: Union[str, Path] = "/", backend: Optional[str] = None) -> Dict[str, Any]:
    """The device fingerprint recorded with every run (see the module docstring)."""
    live = _is_live(root)
    fp: Dict[str, Any] = {"schema": SCHEMA, "backend": backend}
    fp["probed_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if live:
        fp["hostname"] = platform.node()
        fp["os"] = {"system": platform.system(), "release": platform.release(), "machine": platform.machine()}
    fp["cpu"] = cpu.cpu_identity(root, live)
    clocks = read_clocks(root)
    fp["cpu"]["governor"] = cpu.cpu_governor(clocks.get("cpu") or {})
    fp["jetson"] = None
    if jetson.is_jetson(root):
        ident = jetson.jetson_identity(root)
        locked = [jetson.clock_locked(clocks.get("gpu")), jetson.clock_locked(clocks.get("emc"))]
        c = clocks.get("cpu") or {}
        locked.append(c.get("locked"))
        ident["jetson_clocks"] = None if any(v is None for v in locked) else all(locked)
        fp["jetson"] = ident
        gpu_clock = clocks.get("gpu") or {}
        node = str(gpu_clock.get("node") or "")
        fp["gpu"] = [{"name": node.split(".")[-1] or None, "integrated": True, "devfreq": node or None}]
    if live:
        gpus = gpu.cuda_gpus()
        if gpus:
            fp["gpu"] = gpus
    if not fp.get("gpu"):  # no torch CUDA (a TensorRT-only image): the driver's own list
        names = gpu.proc_gpu_names(root)
        if names:
            fp["gpu"] = [{"index": i, "name": n} for i, n in enumerate(names)]
    fp.setdefault("gpu", [])
    fp["software"] = gpu.software_versions()
    fp["system_libs"] = libs.system_libraries(root)
    fp["clocks"] = clocks
    warns = clock_warnings(clocks)
    if "cpu" not in clocks:
        warns.append("CPU frequency scaling is not readable here; cannot tell whether CPU clocks are locked")
    fp["warnings"] = warns
    return fp


def identity(fp: Dict[str, Any]) -> Dict[str, Any]:
    """The fingerprint without its volatile parts (clocks, temperatures, warnings, times)."""
    return {k: v for k, v in fp.items() if k not in VOLATILE_KEYS}


def fingerprint_digest(fp: Dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the identity fields, canonical JSON."""
    blob = json.dumps(identity(fp), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


__all__ = ["clock_warnings", "fingerprint_digest", "identity", "probe", "read_clocks", "temperatures"]
