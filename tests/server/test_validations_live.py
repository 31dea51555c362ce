"""A calibration fitted on a real `lut serve` reaches search_client's predict_latency, over HTTP and in a file."""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List

import httpx
import pytest

from lutcore.calibration import Calibration
from lutcore.records import Target
from lutcore.spaces import get_arch, get_space
from search_client import LUTClient, parse_calibration
from tests.client.lutdata import measurement_batch

SPACE, RES = "squeezenas-small", "64x128"
TARGET = Target(device="cpu-x86", backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})
DEVICE = "cpu-val-01"


def populate(server: Any, n_random: int = 10, drop: tuple = ()) -> List[Dict[str, Any]]:
    """Measure every op of the space, then validate random and published architectures whose measured
    time is 0.9 * LUT sum + 0.2 ms (the LUT sums come from the client itself, as the agent will do)."""
    auth = {"Authorization": f"Bearer {server.agent_token(DEVICE)}"}
    r = httpx.post(server.api + "/devices", json={"name": DEVICE, "device_class": "cpu-x86",
                                                  "fingerprint": {"cpu": "test-cpu", "torch": "2.x"}}, headers=auth)
    assert r.status_code == 200, r.text
    space = get_space(SPACE, RES)
    r = httpx.post(server.api + "/measurements", json=measurement_batch(space, TARGET, DEVICE, uuid.uuid4().hex, drop),
                   headers=auth, timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    names = [f"{SPACE}:random:{i}" for i in range(n_random)] + ["squeezenas-lat-small"]
    results: List[Dict[str, Any]] = []
    with LUTClient(server.url) as client:
        for name in names:
            arch = get_arch(name, RES)
            p = client.predict_latency(space, arch, TARGET, calibration=None) if not drop else None
            pred = p.lut_ms if p else 3.0 + 0.1 * len(results)
            n_ops = p.n_ops if p else 20 + len(results)
            measured = 0.9 * pred + 0.2 + (0.01 * pred if len(results) % 2 else -0.01 * pred)
            results.append({"arch": name, "kind": "published" if ":random:" not in name else "random",
                            "predicted_ms": pred, "measured_ms": measured, "n_ops": n_ops,
                            "rounds": [measured * 0.99, measured, measured * 1.02]})
    body = {"run_id": "val-" + uuid.uuid4().hex[:12], "target": TARGET.id, "device_name": DEVICE, "space": SPACE,
            "resolution": RES, "lut_version": 1, "results": results}
    r = httpx.post(server.api + "/validations", json=body, headers=auth, timeout=60)
    assert r.status_code == 200 and r.json() == {"accepted": len(results), "duplicates": 0}, r.text
    return results


def fit(server: Any) -> Dict[str, Any]:
    tok = server.agent_token(DEVICE)
    r = httpx.post(server.api + "/calibrations/fit", json={"target": TARGET.id, "space": SPACE, "resolution": RES},
                   headers={"Authorization": f"Bearer {tok}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_predict_latency_applies_the_fitted_calibration(live_server, tmp_path):
    _check_calibration_reaches_client(live_server, tmp_path)


@pytest.mark.postgres
def test_predict_latency_applies_the_fitted_calibration_postgres(live_server_pg, tmp_path):
    _check_calibration_reaches_client(live_server_pg, tmp_path)


def _check_calibration_reaches_client(live_server: Any, tmp_path: Any) -> None:
    populate(live_server)
    arch = get_arch(f"{SPACE}:random:77", RES)  # validated by nobody: a fresh architecture
    with LUTClient(live_server.url) as before:
        raw = before.predict_latency(SPACE, arch, TARGET, resolution=RES)
    assert raw.calibration is None and raw.ms == raw.lut_ms
    out = fit(live_server)
    cal = Calibration.from_dict(out["calibration"])
    assert cal.a == pytest.approx(0.9, abs=0.03) and out["heldout_summary"]["max_abs_error"] < 0.03
    assert out["raw_summary"]["median_abs_error"] > 0.05
    with LUTClient(live_server.url) as after:
        pred = after.predict_latency(SPACE, arch, TARGET, resolution=RES)
    assert pred.lut_ms == pytest.approx(raw.lut_ms)
    assert pred.calibration is not None and pred.calibration.a == pytest.approx(cal.a)
    assert pred.ms == pytest.approx(cal.apply(raw.lut_ms, raw.n_ops)) and abs(pred.ms - raw.ms) > 0.05 * raw.ms
    # the same calibration travels in the export document, keyed "space@resolution"
    doc = httpx.get(live_server.api + "/export", params={"target": TARGET.id}, timeout=60).json()
    assert doc["targets"][0]["calibration"][f"{SPACE}@{RES}"]["a"] == pytest.approx(cal.a)
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(doc))
    from_file = LUTClient.from_file(path).predict_latency(SPACE, arch, TARGET, resolution=RES)
    assert from_file.ms == pytest.approx(pred.ms)
    # another resolution of the same space is not calibrated by it
    assert parse_calibration(doc["targets"][0]["calibration"], SPACE, "128x256") is None


def test_lut_status_shows_validation_figures(live_server):
    import subprocess
    import sys

    from tests.live_server import REPO, server_env

    populate(live_server)
    fit(live_server)
    r = subprocess.run([sys.executable, "-m", "lutcore", "status", "--server", live_server.url], cwd=str(REPO),
                       env=server_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "LUT vs whole networks" in r.stdout and "cal median|e|" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if SPACE in ln and RES in ln and "%" in ln)
    assert TARGET.id in line and line.count("%") >= 8
