"""Exports mark predicted entries (issue 20): `lut export --missing predict` on a real server.

A synthetic target (latencies from a known law) has 30% of a space's ops unmeasured; the export
with predictions must add exactly those, each marked with its interval, read back by lutdoc as
predicted (never as measured), refused by formats that cannot mark them, and skipped on import.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any, Dict

import httpx
import pytest

from lut_server import exchange
from lut_server.util import BadInput
from lutcore import lutdoc
from lutcore.spaces import get_space
from tests.server.helpers import TARGET, TARGET_DICT, batch, item
from tests.server.helpers import law_ms as law

SPACE, RES = "squeezenas-small", "64x128"
OPS = [s for s in get_space(SPACE, RES).unique_ops().values() if not s.is_identity]
HELD = {s.key for s in random.Random(3).sample(OPS, len(OPS) * 3 // 10)}


def lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def srv(live_server):
    tok = {"Authorization": f"Bearer {live_server.agent_token('xavier-01')}"}
    body = batch([item(s, law(s)) for s in OPS if s.key not in HELD], target=TARGET_DICT)
    assert httpx.post(live_server.api + "/measurements", json=body, headers=tok, timeout=120).status_code == 200
    return live_server


def export(srv: Any, **params: str) -> httpx.Response:
    return httpx.get(srv.api + "/export", params={"target": TARGET, **params}, timeout=120)


def test_predicted_entries_are_marked_with_their_intervals_and_never_read_as_measured(srv, tmp_path):
    r = export(srv, missing="predict", space=SPACE, resolution=RES)
    assert r.status_code == 200, r.text
    raw: Dict[str, Any] = r.json()
    t = lutdoc.parse(raw).target(TARGET)
    pred = t.predicted_entries()
    assert set(pred) == HELD and set(t.by_key()) == {s.key for s in OPS} - HELD
    assert set(t.values()) == set(t.by_key())  # a reader's values: the measured ones only
    by_key = {s.key: s for s in OPS}
    inside = 0
    for k, e in pred.items():
        assert e.lo_ms is not None and e.value_ms is not None and e.hi_ms is not None
        assert e.lo_ms < e.value_ms < e.hi_ms and not e.measurements
        inside += e.lo_ms <= law(by_key[k]) <= e.hi_ms
    assert inside >= 0.8 * len(HELD), f"{inside}/{len(HELD)} true values inside the intervals"
    info = raw["targets"][0]["prediction"]
    assert info["predicted"] == len(HELD) and info["n_train"] == len(OPS) - len(HELD) and info["space"] == SPACE

    plain = lutdoc.parse(export(srv).json()).target(TARGET)
    assert not plain.predicted_entries() and len(plain.entries) == len(OPS) - len(HELD)
    assert export(srv, missing="predict").status_code == 422  # which space's ops to predict?

    with pytest.raises(BadInput, match="no field to mark a predicted entry"):
        exchange.render(raw, "fbnet-jsonl")
    out = tmp_path / "lut.json"
    cli = lut("export", "--server", srv.url, "--target", TARGET, "--missing", "predict", "--space", SPACE, "-r", RES,
              "-o", str(out))
    assert cli.returncode == 0, cli.stderr
    assert set(lutdoc.load(out).target(TARGET).predicted_entries()) == HELD
    bad = lut("export", "--server", srv.url, "--target", TARGET, "--missing", "predict", "--space", "mobilenetv2",
              "--format", "proxyless-yaml")
    assert bad.returncode == 1 and "other formats cannot mark them" in bad.stderr and "Traceback" not in bad.stderr

    imp = httpx.post(srv.api + "/import", json=json.loads(out.read_text()), headers=srv.headers(), timeout=120)
    assert imp.status_code == 200 and imp.json()["measurements_added"] == 0, imp.text  # nothing new was measured
    lk = httpx.post(srv.api + "/lookup", json={"target": TARGET, "keys": sorted(HELD)}, timeout=60).json()
    assert set(lk["missing"]) == HELD  # the predictions did not come back as measurements


def test_old_documents_parse_and_bad_marks_are_refused():
    entry = {"key": "k", "spec": {}, "value_ms": 1.0}
    doc = {"schema": "nas-lut/1", "targets": [{"id": TARGET, "entries": [entry]}]}
    assert lutdoc.parse(doc).target().values() == {"k": 1.0}
    for bad, why in (({"lo_ms": 0.9}, "belong to a predicted entry"),
                     ({"predicted": True, "lo_ms": 1.1, "hi_ms": 1.2}, "lo_ms <= value_ms <= hi_ms"),
                     ({"predicted": True, "lo_ms": 0.9, "hi_ms": 1.2,
                       "measurements": [{"run_id": "r", "device": "d", "stats": {
                           "median_ms": 1, "mean_ms": 1, "std_ms": 0, "min_ms": 1, "p10_ms": 1, "p90_ms": 1,
                           "n": 1}}]}, "has no measurements")):
        with pytest.raises(lutdoc.DocumentError, match=why):
            lutdoc.parse({**doc, "targets": [{"id": TARGET, "entries": [{**entry, **bad}]}]})
