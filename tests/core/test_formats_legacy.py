"""Bring your old LUT: `lut import --format proxyless-yaml|tfnas-pickle FILE --target ID`."""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from lutcore.errors import FormatError
from lutcore.formats import legacy, ofa, tfnas
from lutcore.lutdoc import TargetLut
from lutcore.spaces import get_space
from tests.core.lut_targets import export_target, lut

OLD = "old-board/pytorch-cuda/fp32"


def _proxyless_yaml() -> str:
    space = get_space("mobilenetv2")
    stats = ofa.stats_from_lut(TargetLut.model_validate(export_target([space])))
    return ofa.dump_yaml(ofa.latency_table([space], stats, ofa.PROXYLESS))


def _tfnas_pickle() -> bytes:
    space = get_space("tfnas")
    values = {e.key: e.value() for e in TargetLut.model_validate(export_target([space])).entries}
    return tfnas.dump_pickle(tfnas.latency_table(space, values))  # type: ignore[arg-type]


def test_a_proxyless_table_maps_back_onto_our_ops() -> None:
    text = _proxyless_yaml()
    table = yaml.safe_load(text)
    doc, left = legacy.document("proxyless-yaml", text.encode(), OLD)
    assert left == {}
    ours = {spec.key: key for key, spec in ofa.layer_keys(get_space("mobilenetv2"), ofa.PROXYLESS)}
    entries = doc["targets"][0]["entries"]
    assert {e["key"] for e in entries} == set(ours)
    for e in entries:
        row, st = table[ours[e["key"]]], e["measurements"][0]["stats"]
        assert st["median_ms"] == row["mean"] and st["n"] == row["count"]
        assert st["std_ms"] ** 2 == pytest.approx(row["var"], rel=1e-12)


def test_a_tfnas_pickle_maps_back_onto_our_ops() -> None:
    data = _tfnas_pickle()
    doc, left = legacy.document("tfnas-pickle", data, OLD)
    assert list(left) == ["base: the sum of the fixed layers, not one op"]
    back = {e["key"]: e["measurements"][0]["stats"]["median_ms"] for e in doc["targets"][0]["entries"]}
    table = pickle.loads(data)
    want = {spec.key: table[key][mid] for key, mid, spec in tfnas.layer_keys(get_space("tfnas"))}
    assert back == want


@pytest.mark.parametrize("text, words", [
    ("- 1\n- 2\n", "is a mapping"),
    ("Conv-input:224x224x3-output:112x112x32: {mean: -1.0}\n", "positive time"),
    ("Conv-input:224x224x3-output:112x112x32: {mean: 1.0, count: true}\n", "must be numbers"),
    ("Conv-input:224x224x3-output:111x111x32: {mean: 1.0}\n", "output 111x111 is not"),
    ("Stem-input:224x224x3-output:112x112x32: {mean: 1.0}\n", "none of ProxylessNAS's layers"),
    ("expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:3-stride:1-idskip:0: {mean: 1.0}\n",
     "idskip:0 but .*residual=True"),
    ("!!python/object/apply:os.system ['true']\n", "not YAML"),
])
def test_a_table_that_does_not_map_is_refused(text: str, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        legacy.document("proxyless-yaml", text.encode(), OLD)


def _status(db: str) -> Dict[str, Any]:
    r = lut("status", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    return {t["id"]: t["ops_measured"] for t in json.loads(r.stdout)["targets"]}


class _Boom:
    def __reduce__(self) -> Any:
        return (os.system, ("touch pwned",))


def test_lut_import_stores_an_old_lut_as_a_target_and_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    yml = tmp_path / "old.yaml"
    yml.write_text(_proxyless_yaml())
    r = lut("import", str(yml), "--format", "proxyless-yaml", "--target", OLD, "--db", db)
    assert r.returncode == 0 and b"70 entries: 70 measurements added" in r.stdout, r.stderr
    r = lut("import", str(yml), "--format", "proxyless-yaml", "--target", OLD, "--db", db)
    assert b"0 measurements added, 70 already present" in r.stdout  # the same file again adds nothing
    pkl = tmp_path / "old.pkl"
    pkl.write_bytes(_tfnas_pickle())
    r = lut("import", str(pkl), "--format", "tfnas-pickle", "--target", "old-cpu/pytorch-cpu/fp32", "--db", db)
    assert r.returncode == 0 and b"left out 1 of the file's entries (base" in r.stderr, r.stderr
    assert _status(db) == {OLD: 70, "old-cpu/pytorch-cpu/fp32": 88}

    # export then import then export: the same table
    r = lut("export", "--db", db, "--target", OLD, "--format", "proxyless-yaml")
    again = yaml.safe_load(r.stdout)
    first = yaml.safe_load(yml.read_text())
    assert set(again) == set(first)
    for k, row in first.items():
        assert again[k]["mean"] == row["mean"] and again[k]["count"] == row["count"]
        assert math.isclose(again[k]["var"], row["var"], rel_tol=1e-9)

    # a pickle carrying a callable is refused before anything is stored, and nothing runs
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"base": 1.0, "x": _Boom()}))
    r = lut("import", str(evil), "--format", "tfnas-pickle", "--target", "evil/tensorrt/fp16", "--db", db, cwd=tmp_path)
    assert r.returncode == 1 and b"refers to" in r.stderr and b"system" in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr
    assert not (tmp_path / "pwned").exists()
    assert _status(db) == {OLD: 70, "old-cpu/pytorch-cpu/fp32": 88}
    r = lut("import", str(yml), "--format", "proxyless-yaml", "--db", db)
    assert r.returncode == 1 and b"--target" in r.stderr

