"""GPU clocks read in process, right after an op's samples: NVML on a discrete GPU, devfreq on Jetson.

Reading ``nvidia-smi`` before and after a batch of ops says little about the op in between
(the GPU idles while the agent writes results); NVML is read in microseconds, so every op gets
the clocks it ran at and the reasons the GPU held them back (power cap, thermal slowdown, ...).
On a Jetson the devfreq nodes give the GPU and EMC clocks; the BPMP debugfs is root-only and
is not read by a service running as a user.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, List, Optional, Union

from profiler_agent.probe import jetson
from profiler_agent.probe.sysfs import PathLike

# NVML clocks event (throttle) reason bits, from nvml.h (nvmlClocksEventReason* / ThrottleReason*).
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the op ran slower than the clocks allow (gpu_idle is normal between ops).
SLOWDOWNS = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def decode_throttle(mask: int) -> List[str]:
    names = [name for bit, name in sorted(THROTTLE_REASONS.items()) if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    if rest:
        names.append(f"other_{rest:#x}")
    return names


class NvmlClocks:
    """One discrete GPU's clocks, temperature, power and throttle reasons through NVML (nvidia-ml-py)."""

    source = "nvml"

    def __init__(self, index: int = 0, nvml: Any = None, pci_bus_id: Optional[str] = None) -> None:
        """``pci_bus_id`` (from CUDA) picks the same GPU whatever CUDA_VISIBLE_DEVICES renumbered;
        without it NVML's ``index`` is used."""
        if nvml is None:
            import pynvml  # the nvidia-ml-py distribution

            nvml = pynvml
        self.nvml = nvml
        nvml.nvmlInit()
        if pci_bus_id:
            try:
                self.handle = nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
            except TypeError:  # pynvml releases before str/bytes conversion take bytes
                self.handle = nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id.encode())
        else:
            self.handle = nvml.nvmlDeviceGetHandleByIndex(index)

    def _reasons(self) -> int:
        n = self.nvml
        get = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or n.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(get(self.handle))

    def max_sm_mhz(self) -> int:
        return int(self.nvml.nvmlDeviceGetMaxClockInfo(self.handle, self.nvml.NVML_CLOCK_SM))

    def read(self) -> Dict[str, Any]:
        n, h = self.nvml, self.handle
        out: Dict[str, Any] = {
            "source": self.source,
            "sm_mhz": int(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            "mem_mhz": int(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            "max_sm_mhz": self.max_sm_mhz(),
        }
        try:
            mask = self._reasons()
            out["throttle"] = decode_throttle(mask)
            out["slowdown"] = any(r in SLOWDOWNS for r in out["throttle"])
        except n.NVMLError as e:
            out["throttle_error"] = str(e)
        for key, fn in (("temp_c", lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
                        ("power_w", lambda: n.nvmlDeviceGetPowerUsage(h) / 1000.0)):
            with contextlib.suppress(n.NVMLError):
                out[key] = fn()
        return out


class DevfreqClocks:
    """A Jetson's GPU/EMC devfreq clocks and power mode (no debugfs unless running as root)."""

    source = "devfreq"

    def __init__(self, root: PathLike = "/") -> None:
        self.root = root

    def max_sm_mhz(self) -> Optional[int]:
        hz = (jetson.gpu_emc_clocks(self.root, debugfs=False).get("gpu") or {}).get("max_hz")
        return None if hz is None else int(hz // 1_000_000)

    def read(self) -> Dict[str, Any]:
        clocks = jetson.gpu_emc_clocks(self.root, debugfs=debugfs_allowed(self.root))
        out: Dict[str, Any] = {"source": self.source}
        g = clocks.get("gpu") or {}
        if g.get("cur_hz") is not None:
            out["sm_mhz"] = int(g["cur_hz"] // 1_000_000)
        if g.get("max_hz") is not None:
            out["max_sm_mhz"] = int(g["max_hz"] // 1_000_000)
        e = clocks.get("emc") or {}
        if e.get("cur_hz") is not None:
            out["mem_mhz"] = int(e["cur_hz"] // 1_000_000)
        out["power_mode"] = power_mode(self.root)
        return out


def debugfs_allowed(root: PathLike) -> bool:
    """The BPMP debugfs is root-only on the device; a fixture tree is always readable."""
    from pathlib import Path

    live = Path(root).resolve() == Path("/").resolve()
    return not live or (hasattr(os, "geteuid") and os.geteuid() == 0)


def power_mode(root: PathLike = "/") -> Optional[str]:
    """The Jetson power mode (nvpmodel name, else its id) or None off a Jetson."""
    if not jetson.is_jetson(root):
        return None
    mode = jetson.nvpmodel(root)
    name = mode.get("name") or (None if mode.get("id") is None else str(mode["id"]))
    return None if name is None else str(name)


ClockReader = Union[NvmlClocks, DevfreqClocks]


def clock_reader(root: PathLike = "/", index: int = 0, pci_bus_id: Optional[str] = None) -> Optional[ClockReader]:
    """devfreq on a Jetson, NVML on a discrete GPU, None when neither can be read."""
    if jetson.is_jetson(root):
        return DevfreqClocks(root)
    try:
        return NvmlClocks(index, pci_bus_id=pci_bus_id)
    except Exception:  # noqa: BLE001 - no pynvml, no driver: no in-process clocks
        return None
