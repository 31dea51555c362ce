"""lutcore.lutdoc: the export document's model and the one aggregation rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lutcore import lutdoc
from lutcore.lutdoc import Run, aggregate

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "exports" / "nas-lut-1-before-issue-14.json"


def test_aggregate_is_per_board_median_then_median_over_boards() -> None:
    # board a posts three runs, board b one: a's many runs count as one board
    runs = [Run(1.0, 1.1, 0.9, 1.2, "a"), Run(1.2, 1.3, 1.1, 1.4, "a"), Run(1.1, 1.2, 1.0, 1.3, "a"),
            Run(3.0, 3.3, 2.9, 3.2, "b")]
    got = aggregate(runs)
    assert got["value_ms"] == pytest.approx((1.1 + 3.0) / 2)  # median(median(a), median(b))
    assert got["mean_ms"] == pytest.approx((1.2 + 3.3) / 2)  # median over boards of each board's mean
    assert got["p90_ms"] == pytest.approx((1.3 + 3.2) / 2)
    assert got["n_runs"] == 4 and got["n_devices"] == 2
    assert got["spread_pct"] == pytest.approx((3.0 - 1.0) / got["value_ms"] * 100)
    assert aggregate([Run(2.0, 2.0, 2.0, 2.0, "a")])["spread_pct"] == 0.0
    with pytest.raises(ValueError):
        aggregate([])


def test_an_export_written_before_this_model_reads_and_recomputes_with_the_rule() -> None:
    doc = lutdoc.load(OLD)
    t = doc.target()
    assert t.tid == "xavier/tensorrt/fp16" and len(t.validations or []) == 9 and t.calibration
    e = max(t.entries, key=lambda e: len(e.measurements))  # three runs on xavier-01, one on xavier-02
    # that file has value_ms per entry but not mean_ms: the reader derives it by the server's rule
    assert e.mean_ms is None and e.value() == e.value_ms
    runs = e.counted()
    a = [r.mean_ms for r in runs if r.device == "xavier-01"]
    b = [r.mean_ms for r in runs if r.device == "xavier-02"]
    assert len(a) == 3 and len(b) == 1
    assert e.value("mean_ms") == pytest.approx((sum(a) / 3 + b[0]) / 2)
    assert e.value("mean_ms") != pytest.approx(sum(a + b) / 4)  # the old file reader's flat mean of runs
    assert e.figures()["n_devices"] == 2 and e.figures("mean_ms")["value_ms"] == e.value("mean_ms")
    # what the writer gave comes back unchanged (lossless: the model keeps every field it was given)
    raw = json.loads(OLD.read_text())
    assert doc.dump() == raw


def test_quarantined_runs_are_kept_but_not_counted() -> None:
    raw = json.loads(OLD.read_text())
    entry = max(raw["targets"][0]["entries"], key=lambda e: len(e["measurements"]))
    del entry["value_ms"]
    slow = max(entry["measurements"], key=lambda m: m["stats"]["median_ms"])
    before = lutdoc.parse(copy.deepcopy(raw)).targets[0].by_key()[entry["key"]].value()
    assert before is not None
    slow["quarantined"] = True
    e = lutdoc.parse(raw).targets[0].by_key()[entry["key"]]
    assert len(e.measurements) == len(entry["measurements"]) and len(e.counted()) == len(entry["measurements"]) - 1
    after = e.value()
    assert after is not None and after < before


def test_bad_documents_name_the_field_at_fault() -> None:
    raw = json.loads(OLD.read_text())
    with pytest.raises(lutdoc.DocumentError, match="schema is 'nas-lut/0'"):
        lutdoc.parse(dict(raw, schema="nas-lut/0"))
    bad = copy.deepcopy(raw)
    bad["targets"][0]["entries"][1]["measurements"][0]["stats"]["median_ms"] = -1
    with pytest.raises(lutdoc.DocumentError, match=r"targets\[0\]\.entries\[1\]\.measurements\[0\]\.stats"):
        lutdoc.parse(bad)
    bad = copy.deepcopy(raw)
    bad["targets"][0]["validations"][0]["typo"] = 1
    with pytest.raises(lutdoc.DocumentError, match=r"targets\[0\]\.validations\[0\]\.typo"):
        lutdoc.parse(bad)
    bad = copy.deepcopy(raw)
    bad["targets"][0]["calibrations"][0]["calibration"]["a"] = "x"
    with pytest.raises(lutdoc.DocumentError, match="a must be a finite number"):
        lutdoc.parse(bad)
    with pytest.raises(lutdoc.DocumentError, match="no target 'orin/x/fp16'.*xavier/tensorrt/fp16"):
        lutdoc.parse(raw).target("orin/x/fp16")
    with pytest.raises(ValueError, match="metric"):
        lutdoc.parse(raw).targets[0].values("max_ms")


def test_validations_carry_in_context_and_env() -> None:
    raw = json.loads(OLD.read_text())
    v = raw["targets"][0]["validations"][0]
    v["in_context"] = {"conv:x": 0.5}
    v["env"] = {"gpu_clock_mhz": 1377}
    validations = lutdoc.parse(raw).targets[0].validations
    assert validations is not None
    got = validations[0]
    assert got.in_context == {"conv:x": 0.5} and got.env == {"gpu_clock_mhz": 1377}


def test_a_target_is_named_by_its_id_or_its_record() -> None:
    raw = json.loads(OLD.read_text())
    record = raw["targets"][0].pop("target")
    t = lutdoc.parse(copy.deepcopy(raw)).targets[0]
    assert t.record().model_dump() == lutdoc.parse(json.loads(OLD.read_text())).targets[0].record().model_dump()
    assert t.record().id == t.tid == "xavier/tensorrt/fp16" and record["device"] == "xavier"
    del raw["targets"][0]["id"]
    with pytest.raises(lutdoc.DocumentError, match=r"targets\[0\]: .*needs its id or its target record"):
        lutdoc.parse(raw)
