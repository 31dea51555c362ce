"""Jetson identity and clocks: L4T/JetPack release, module, nvpmodel mode, devfreq/EMC clocks.

Read from the files JetPack writes (``/etc/nv_tegra_release``, ``/proc/device-tree/model``,
``/var/lib/nvpmodel/status``, ``/etc/nvpmodel.conf``) and from sysfs, so it works without sudo
and on a copied tree in tests.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from profiler_agent.probe.sysfs import PathLike, glob, read_int, read_text

# L4T release -> JetPack release (NVIDIA's release notes); the nearest lower entry is used.
L4T_TO_JETPACK = [
    ((32, 4, 3), "4.4"),
    ((32, 4, 4), "4.4.1"),
    ((32, 5, 0), "4.5"),
    ((32, 5, 1), "4.5.1"),
    ((32, 6, 1), "4.6"),
    ((32, 7, 1), "4.6.1"),
    ((32, 7, 2), "4.6.2"),
    ((32, 7, 3), "4.6.3"),
    ((32, 7, 4), "4.6.4"),
    ((32, 7, 5), "4.6.5"),
    ((34, 1, 0), "5.0"),
    ((34, 1, 1), "5.0.1"),
    ((35, 1, 0), "5.0.2"),
    ((35, 2, 1), "5.1"),
    ((35, 3, 1), "5.1.1"),
    ((35, 4, 1), "5.1.2"),
    ((35, 5, 0), "5.1.3"),
    ((35, 6, 0), "5.1.4"),
    ((36, 2, 0), "6.0 DP"),
    ((36, 3, 0), "6.0"),
    ((36, 4, 0), "6.1"),
    ((36, 4, 3), "6.2"),
]

GPU_DEVFREQ_NAMES = ("gv11b", "ga10b", "gp10b", "gpu")
EMC_NAMES = ("emc", "external-memory-controller")


def is_jetson(root: PathLike) -> bool:
    return read_text(root, "/etc/nv_tegra_release") is not None


def parse_l4t(text: str) -> Optional[str]:
    """'# R35 (release), REVISION: 2.1, ...' -> '35.2.1'."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)", text)
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else None


def jetpack_for(l4t: Optional[str]) -> Optional[str]:
    if not l4t:
        return None
    v = tuple(int(x) for x in l4t.split("."))
    best = None
    for rel, jp in L4T_TO_JETPACK:
        if rel[0] == v[0] and rel <= v:
            best = jp
    return best


def nvpmodel(root: PathLike) -> Dict[str, Any]:
    """Current power mode: id from /var/lib/nvpmodel/status, name from /etc/nvpmodel.conf."""
    out: Dict[str, Any] = {"id": None, "name": None}
    status = read_text(root, "/var/lib/nvpmodel/status")
    conf = read_text(root, "/etc/nvpmodel.conf") or ""
    names = {int(i): n for i, n in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", conf)}
    mode: Optional[int] = None
    if status:
        m = re.search(r"pmode:(\d+)", status)
        mode = int(m.group(1)) if m else None
    if mode is None:
        m = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)", conf)
        if m:
            mode = int(m.group(1))
            out["source"] = "nvpmodel.conf default (no status file)"
    out["id"] = mode
    if mode is not None:
        out["name"] = names.get(mode)
    return out


def _devfreq_dirs(root: PathLike) -> List[Any]:
    seen: Dict[str, Any] = {}
    for pattern in ("/sys/class/devfreq/*", "/sys/devices/*/devfreq/*", "/sys/devices/platform/*/devfreq/*"):
        for p in glob(root, pattern):
            seen.setdefault(p.name, p)
    return [seen[k] for k in sorted(seen)]


def _devfreq(root: PathLike, d: Any) -> Dict[str, Any]:
    rel = "/" + str(d.relative_to(root))
    info: Dict[str, Any] = {"node": d.name}
    for f in ("cur_freq", "min_freq", "max_freq"):
        info[f.replace("freq", "hz")] = read_int(root, f"{rel}/{f}")
    info["governor"] = read_text(root, f"{rel}/governor")
    avail = read_text(root, f"{rel}/available_frequencies")
    if avail:
        info["available_max_hz"] = max(int(x) for x in avail.split())
    return info


def gpu_emc_clocks(root: PathLike, debugfs: bool = True) -> Dict[str, Any]:
    """GPU and EMC (memory) clocks: devfreq nodes, EMC also from the BPMP debugfs (jetson_clocks' source).

    ``debugfs=False`` skips the BPMP debugfs: it is root-only, and a service running as a user
    must not depend on it (``probe.read_clocks`` passes False unless it runs as root).
    """
    out: Dict[str, Any] = {}
    for d in _devfreq_dirs(root):
        name = d.name.lower()
        if "gpu" not in out and any(n in name for n in GPU_DEVFREQ_NAMES):
            out["gpu"] = _devfreq(root, d)
        elif "emc" not in out and any(n in name for n in EMC_NAMES):
            out["emc"] = _devfreq(root, d)
    if "emc" not in out and debugfs:
        bpmp = "/sys/kernel/debug/bpmp/debug/clk/emc"
        rate = read_int(root, f"{bpmp}/rate")
        if rate is not None:
            out["emc"] = {
                "node": "bpmp/emc",
                "cur_hz": rate,
                "max_hz": read_int(root, f"{bpmp}/max_rate"),
                "min_hz": read_int(root, f"{bpmp}/min_rate"),
                "locked": read_int(root, f"{bpmp}/mrq_rate_locked"),
            }
    return out


def clock_locked(info: Optional[Dict[str, Any]]) -> Optional[bool]:
    """True when a clock is pinned at its (power-mode) maximum, as jetson_clocks leaves it; None if unknown."""
    if not info:
        return None
    cur, lo, hi = info.get("cur_hz"), info.get("min_hz"), info.get("max_hz")
    if cur is None or hi is None:
        return None
    at_top = cur >= 0.99 * hi
    if info.get("node") == "bpmp/emc":
        return bool(info.get("locked")) and at_top
    return lo == hi and at_top


def jetson_identity(root: PathLike) -> Dict[str, Any]:
    """Static identity: release, module, SoC, power mode."""
    release = read_text(root, "/etc/nv_tegra_release") or ""
    l4t = parse_l4t(release)
    compatible = (read_text(root, "/proc/device-tree/compatible") or "").split()
    soc = next((c.split(",", 1)[1] for c in compatible if c.startswith("nvidia,tegra")), None)
    board = re.search(r"BOARD:\s*([^,\s]+)", release)
    return {
        "module": read_text(root, "/proc/device-tree/model"),
        "soc": soc,
        "l4t": l4t,
        "jetpack": jetpack_for(l4t),
        "board": board.group(1) if board else None,
        "nvpmodel": nvpmodel(root),
    }
