"""CPU identity (model, cores) and its frequency state (governors, min/max/current) from procfs/sysfs."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

from profiler_agent.probe.sysfs import PathLike, glob, read_int, read_text

# ARM 'CPU part' ids of cores found on Jetsons (the kernel's cpuinfo gives no model name there).
ARM_PARTS = {
    "0x004": "NVIDIA Carmel",
    "0xd07": "ARM Cortex-A57",
    "0xd08": "ARM Cortex-A72",
    "0xd42": "ARM Cortex-A78AE",
}


def cpu_identity(root: PathLike, live: bool) -> Dict[str, Any]:
    info = read_text(root, "/proc/cpuinfo") or ""
    model = None
    m = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    part = re.search(r"^CPU part\s*:\s*(\S+)", info, re.M)
    if part and part.group(1).lower() in ARM_PARTS:  # ARM kernels say only "ARMv8 Processor"
        model = ARM_PARTS[part.group(1).lower()]
    elif m:
        model = m.group(1).strip()
    elif part:
        model = f"ARM part {part.group(1)}"
    logical = len(re.findall(r"^processor\s*:", info, re.M)) or None
    cpus = glob(root, "/sys/devices/system/cpu/cpu[0-9]*")
    possible = len(cpus) or None
    if logical is None and live:
        logical = os.cpu_count()
    cores = None
    m = re.search(r"^cpu cores\s*:\s*(\d+)", info, re.M)
    if m:
        cores = int(m.group(1))
    return {"model": model, "logical_cpus": logical or possible, "physical_cores": cores}


def cpu_freq(root: PathLike) -> Dict[str, Any]:
    """Per-policy governor and kHz (cur/min/max/hardware max); empty when cpufreq is not exposed (VMs)."""
    govs: List[str] = []
    cur: List[int] = []
    pinned: List[bool] = []
    hw_max: List[int] = []
    for d in glob(root, "/sys/devices/system/cpu/cpu[0-9]*/cpufreq"):
        rel = "/" + str(d.relative_to(root))
        if read_int(root, f"{rel}/../online") == 0:
            continue
        g = read_text(root, f"{rel}/scaling_governor")
        c = read_int(root, f"{rel}/scaling_cur_freq")
        lo, hi = read_int(root, f"{rel}/scaling_min_freq"), read_int(root, f"{rel}/scaling_max_freq")
        top = read_int(root, f"{rel}/cpuinfo_max_freq")
        if g:
            govs.append(g)
        if c is not None:
            cur.append(c)
        if top is not None:
            hw_max.append(top)
        pinned.append(g == "performance" or (lo is not None and lo == hi))
    if not govs and not cur:
        return {}
    out: Dict[str, Any] = {"governors": sorted(set(govs)), "locked": all(pinned) if pinned else None}
    if cur:
        out.update(cur_khz_min=min(cur), cur_khz_max=max(cur))
    if hw_max:
        out["hw_max_khz"] = max(hw_max)
    return out


def cpu_governor(freq: Dict[str, Any]) -> Optional[str]:
    g = freq.get("governors") or []
    return ",".join(g) if g else None
