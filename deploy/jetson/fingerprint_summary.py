"""Summarise `profiler-agent probe --json` for a person: module, L4T/JetPack, power mode, clocks.

Used by setup.sh; reads the fingerprint JSON on stdin, prints the summary then the full JSON.
Runs on the board's system Python (3.8 on JetPack 5) with the standard library only.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple


def walk(obj: Any, path: Tuple[str, ...] = ()) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    """Every (path, value) in a nested dict, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path + (str(k),), v
            yield from walk(v, path + (str(k),))


def find(fp: Dict[str, Any], name: str, kind: type = object) -> Any:
    """The first value of type ``kind`` under key ``name``, preferring the ``jetson`` section."""
    sections = [fp.get("jetson")] if isinstance(fp.get("jetson"), dict) else []
    for tree in sections + [fp]:
        for path, value in walk(tree):
            if path[-1] == name and isinstance(value, kind) and value not in (None, "", {}, []):
                return value
    return None


def mhz(hz: Any, scale: float = 1e6) -> Optional[str]:
    if isinstance(hz, bool) or not isinstance(hz, (int, float)):
        return None
    return f"{hz / scale:.0f} MHz"


def clock_line(info: Dict[str, Any]) -> Optional[str]:
    """'1377 MHz (max 1377 MHz), governor ..., pinned' from a devfreq/EMC (Hz) or CPU (kHz) record."""
    if "cur_hz" in info:
        cur, top = mhz(info.get("cur_hz")), mhz(info.get("max_hz"))
    else:
        cur, top = mhz(info.get("cur_khz_max"), 1e3), mhz(info.get("hw_max_khz"), 1e3)
    if cur is None:
        return None
    text = cur + (f" (max {top})" if top else "")
    governor = info.get("governor") or ", ".join(info.get("governors") or [])
    if governor:
        text += f", governor {governor}"
    if info.get("locked") is not None:
        text += ", pinned" if info["locked"] else ", not pinned"
    return text


def clock_lines(fp: Dict[str, Any]) -> List[Tuple[str, str]]:
    """One row per clock with a current frequency (CPU, GPU, EMC, ...)."""
    rows = []
    clocks = fp.get("clocks") if isinstance(fp.get("clocks"), dict) else {}
    for name in sorted(clocks):
        if isinstance(clocks[name], dict):
            line = clock_line(clocks[name])
            if line:
                rows.append((f"clock {name}", line))
    return rows


def summary(fp: Dict[str, Any]) -> List[str]:
    rows = [("module", find(fp, "module", str) or find(fp, "model", str) or "unknown")]
    l4t, jetpack = find(fp, "l4t", str), find(fp, "jetpack", str)
    rows.append(("L4T", (l4t or "unknown") + (f" (JetPack {jetpack})" if jetpack else "")))
    pm = find(fp, "nvpmodel", dict)
    if pm is not None:
        mode = "unknown" if pm.get("id") is None else f"mode {pm['id']}"
        rows.append(("nvpmodel", mode + (f" ({pm['name']})" if pm.get("name") else "")))
    jc = find(fp, "jetson_clocks", bool)
    if jc is not None:
        rows.append(("jetson_clocks", "applied (clocks pinned)" if jc else "not applied"))
    clocks = clock_lines(fp)
    rows.extend(clocks or [("clocks", "none readable")])
    temps = find(fp, "temps_c", dict)
    if temps:
        rows.append(("temps C", ", ".join(f"{k} {v}" for k, v in sorted(temps.items()))))
    software = fp.get("software") if isinstance(fp.get("software"), dict) else {}
    versions = [f"{k} {v}" for k, v in sorted(software.items()) if v not in (None, "")]
    if versions:
        rows.append(("software", ", ".join(versions)))
    for w in fp.get("warnings") or []:
        rows.append(("warning", str(w)))
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]


def main() -> int:
    text = sys.stdin.read()
    try:
        fp = json.loads(text)
    except ValueError as e:
        print(f"fingerprint_summary: the probe did not print JSON ({e}): {text[:200]!r}", file=sys.stderr)
        return 1
    if not isinstance(fp, dict):
        print("fingerprint_summary: the probe printed JSON that is not an object", file=sys.stderr)
        return 1
    try:  # the digest the agent reports, when this Python has the agent (its venv)
        from profiler_agent.probe import fingerprint_digest

        print(f"fingerprint {fingerprint_digest(fp)}")
    except ImportError:
        pass
    print("\n".join(summary(fp)))
    print("\nfull fingerprint:")
    print(json.dumps(fp, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
