"""Export then import gives an identical LUT; CLI over --db and --server; NAS-code formats."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lut_server.app import create_app
from lut_server.config import Settings
from tests.live_server import REPO, server_env
from tests.server.helpers import ADMIN_SECRET, TARGET, TARGET_DICT, batch, conv, item


def _fill(api) -> None:
    api.post("/devices", {"name": "xavier-01", "device_class": "xavier", "fingerprint": {"jetpack": "5.1"}})
    api.post("/measurements", batch([item(conv(16), 1.0), item(conv(24), 2.0)], fingerprint={"jetpack": "5.1.2"}))
    api.post("/measurements", batch([item(conv(16), 1.4)], run_id="second-run-0001"))
    cpu = dict(TARGET_DICT, device="cpu-x86", backend="pytorch-cpu", precision="fp32", settings={"threads": "2"})
    api.post("/measurements", batch([item(conv(16), 9.0)], target=cpu))


def _strip(doc: dict) -> dict:
    d = copy.deepcopy(doc)
    d.pop("exported_at")
    return d


def test_export_import_round_trip_is_lossless(api, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    _fill(api)
    doc = api.get("/export")
    assert doc["schema"] == "nas-lut/1"
    assert [t["id"] for t in doc["targets"]] == ["cpu-x86/pytorch-cpu/fp32@threads=2", TARGET]
    entry = next(e for e in doc["targets"][1]["entries"] if e["key"] == conv(16).key)
    assert entry["n_runs"] == 2 and entry["value_ms"] == 1.2 and entry["macs"] == conv(16).macs()
    assert {m["run_id"] for m in entry["measurements"]} >= {"second-run-0001"}

    fresh = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'copy.db'}", admin_token=ADMIN_SECRET))
    with TestClient(fresh) as c:
        r = c.post("/api/v1/import", json=doc, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 200, r.text
        assert r.json()["measurements_added"] == 4
        again = c.get("/api/v1/export").json()
        assert _strip(again) == _strip(doc)
        r = c.post("/api/v1/import", json=doc, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.json()["measurements_added"] == 0 and r.json()["duplicates"] == 4
        assert _strip(c.get("/api/v1/export").json()) == _strip(doc)
        bad = json.loads(json.dumps(doc))
        bad["targets"][0]["entries"][0]["key"] = "conv:nonsense"
        r = c.post("/api/v1/import", json=bad, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 422 and "targets[0].entries[0]" in r.text
    fresh.state.db.dispose()


def _lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True,
                          env=server_env(), cwd=str(REPO), timeout=120)


@pytest.mark.slow
def test_cli_export_import_over_rest_and_db(live_server, tmp_path: Path) -> None:
    import httpx

    tok = live_server.agent_token("xavier-01")
    body = batch([item(conv(16), 1.0), item(conv(24), 2.0)])
    assert httpx.post(live_server.api + "/measurements", json=body,
                      headers={"Authorization": f"Bearer {tok}"}).status_code == 200

    out = tmp_path / "lut.json"
    r = _lut("export", "--server", live_server.url, "--target", TARGET, "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert len(doc["targets"][0]["entries"]) == 2

    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    r = _lut("import", str(out), "--db", copy)
    assert r.returncode == 0 and "2 measurements added" in r.stdout, r.stderr
    r = _lut("export", "--db", copy, "--target", TARGET)
    assert _strip(json.loads(r.stdout)) == _strip(doc)

    r = _lut("export", "--db", copy, "--target", TARGET, "--format", "proxyless-yaml")  # their keys: tests/core
    assert r.returncode == 1 and "of mobilenetv2 have no measured value" in r.stderr, r.stderr
    r = _lut("export", "--db", copy, "--format", "fbnet-jsonl")
    lines = [json.loads(x) for x in r.stdout.splitlines()]  # FBNet's runtime LUT records: tests/core
    assert len(lines) == 2 and {x["input_shapes"][0][1] for x in lines} == {8} and lines[0]["op_type"] == "conv"
    assert {x["device"] for x in lines} == {TARGET} and all(x["runtime_us_p50"] > 0 for x in lines)
    assert {a for x in lines for a in x["op_args"] if '"c_out"' in a} == {'name: "c_out"\ni: 16\n',
                                                                          'name: "c_out"\ni: 24\n'}

    r = _lut("import", str(out), "--server", live_server.url, "--token", live_server.admin_token)
    assert r.returncode == 0 and "0 measurements added" in r.stdout, r.stderr
    r = _lut("export", "--db", copy, "--target", "orin/tensorrt/fp16")
    assert r.returncode == 1 and "unknown target" in r.stderr


def test_cli_status_and_tokens(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = _lut("token", "create", "--device", "xavier-01", "--db", db, "--note", "bench", "--create")
    assert r.returncode == 1 and "--device-class" in r.stderr and "Traceback" not in r.stderr
    r = _lut("token", "create", "--device", "xavier-01", "--device-class", "xavier", "--db", db, "--note", "bench",
             "--create")
    assert r.returncode == 0 and r.stdout.startswith("lut_"), r.stderr
    r = _lut("token", "list", "--db", db)
    assert "xavier-01" in r.stdout and "bench" in r.stdout and r.stdout.count("lut_") == 1
    assert "class" in r.stdout.splitlines()[0] and "xavier " in r.stdout
    r = _lut("audit", "--db", db, "--json")
    rows = json.loads(r.stdout)
    assert [a["action"] for a in rows] == ["token.create"] and rows[0]["actor"].startswith("cli")
    r = _lut("token", "create", "--device", "bad name!", "--device-class", "xavier", "--db", db)
    assert r.returncode == 1 and "device" in r.stderr
    r = _lut("status", "--db", db)
    assert r.returncode == 0 and "jobs: 0 queued" in r.stdout


OLD_EXPORT = REPO / "tests" / "fixtures" / "exports" / "nas-lut-1-before-issue-14.json"


def test_an_export_written_before_the_shared_model_still_imports(api) -> None:
    """The file was written by the export code as it was before lutcore.lutdoc (no mean/p10/p90 per entry,
    no quarantine flags, no in_context): it imports whole, and every reader agrees on its values."""
    from lutcore import lutdoc
    from profiler_agent.validate import LutValues
    from search_client.filelut import load_export

    old = json.loads(OLD_EXPORT.read_text())
    out = api.post("/import", old, headers=api.admin)
    assert out["measurements_added"] == 6 and out["validations_added"] == 9 and out["devices"] == 2
    tid = old["targets"][0]["id"]
    keys = [e["key"] for e in old["targets"][0]["entries"]]
    table = load_export(OLD_EXPORT)[tid]
    agent = LutValues.from_file(OLD_EXPORT)
    for metric in ("median_ms", "mean_ms", "p10_ms", "p90_ms"):
        server = api.post("/lookup", {"target": tid, "keys": keys, "metric": metric})["values"]
        for k in keys:
            assert table.value(k, metric) == pytest.approx(server[k]["value_ms"]), (k, metric)
    assert agent.values == {k: table.value(k) for k in keys}
    again = lutdoc.parse(api.get("/export"))
    assert again.targets[0].calibrations and len(again.targets[0].validations or []) == 9
    assert {e.key: e.value_ms for e in again.targets[0].entries} == {e["key"]: e["value_ms"]
                                                                       for e in old["targets"][0]["entries"]}


def test_quarantine_in_context_and_env_survive_export_and_import(api, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    api.post("/measurements", batch([item(conv(16), 1.0)], run_id="good-run-00001"))
    api.post("/measurements", batch([item(conv(16), 5.0)], run_id="hot-run-000001"))
    api.post("/runs/quarantine", {"target": TARGET, "run_id": "hot-run-000001", "reason": "overheated"},
             headers=api.admin)
    res = {"arch": "squeezenas-lat-small", "kind": "published", "predicted_ms": 5.0, "measured_ms": 4.5, "n_ops": 3,
           "rounds": [4.5], "in_context": {conv(16).key: 0.9}, "env": {"gpu_clock_mhz": 1377}}
    api.post("/validations", {"run_id": "val-run-00001", "target": TARGET, "device_name": "xavier-01",
                              "space": "squeezenas-small", "resolution": "64x128", "results": [res]})
    doc = api.get("/export")
    from lutcore import lutdoc

    assert lutdoc.parse(doc).dump() == doc  # the writer's output is the shared model's, field for field
    t = doc["targets"][0]
    runs = {m["run_id"]: m for m in t["entries"][0]["measurements"]}
    assert runs["hot-run-000001"]["quarantined"] is True and "quarantined" not in runs["good-run-00001"]
    assert t["entries"][0]["value_ms"] == 1.0 and t["entries"][0]["n_devices"] == 1
    assert t["validations"][0]["in_context"] == {conv(16).key: 0.9}
    assert t["validations"][0]["env"] == {"gpu_clock_mhz": 1377}

    fresh = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'copy.db'}", admin_token=ADMIN_SECRET))
    with TestClient(fresh) as c:
        r = c.post("/api/v1/import", json=doc, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 200, r.text
        again = c.get("/api/v1/export").json()
        assert _strip(again)["targets"] == _strip(doc)["targets"]  # the quarantined run still does not count
    fresh.state.db.dispose()
