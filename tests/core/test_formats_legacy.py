"""Bring your old LUT: `lut import --format proxyless-yaml|ofa-mbv3-yaml|tfnas-pickle|fbnet-jsonl FILE --target ID`."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from lutcore.cli.main import main
from lutcore.errors import FormatError
from lutcore.formats import fbnet, legacy, ofa, tfnas
from lutcore.lutdoc import TargetLut
from lutcore.spaces import get_chain_space
from tests.core.lut_targets import TARGET, entry_values, export_target

OLD = "old-board/pytorch-cuda/fp32"
MB = "old-phone/onnxruntime/fp32"
FB = "xavier-old/tensorrt/fp16"  # the export's records are xavier/tensorrt/fp16's: dtype 12


def _fbnet_jsonl(name: str) -> Tuple[str, TargetLut]:
    raw = export_target([get_chain_space(name)])
    del raw["id"]
    target = TargetLut.model_validate({**raw, "target": TARGET})
    return fbnet.dump_jsonl(fbnet.records(target)), target


def _same_records(again: List[Dict[str, Any]], first: List[Dict[str, Any]], device: str) -> None:
    """The records of ``first`` in any order, under ``device``; the runtimes through ms and back, to rounding."""
    assert len(again) == len(first)
    by_match = {json.dumps({k: v for k, v in r.items() if "runtime" not in k}, sort_keys=True): r for r in again}
    for r in first:
        back = by_match[json.dumps({**{k: v for k, v in r.items() if "runtime" not in k}, "device": device},
                                   sort_keys=True)]
        assert {k for k in back if "runtime" in k} == {k for k in r if "runtime" in k}
        for k in back:
            if "runtime" in k:
                assert back[k] == pytest.approx(r[k], rel=1e-12)


def _proxyless_yaml() -> str:
    space = get_chain_space("mobilenetv2")
    stats = ofa.stats_from_lut(TargetLut.model_validate(export_target([space])))
    return ofa.dump_yaml(ofa.latency_table([space], stats, ofa.PROXYLESS))


def _mbv3_yaml(*sizes: int) -> str:
    spaces = [get_chain_space("ofa-mbv3", f"{r}x{r}") for r in sizes]
    stats = ofa.stats_from_lut(TargetLut.model_validate(export_target(spaces)))
    return ofa.dump_yaml(ofa.latency_table(spaces, stats, ofa.MBV3))


def _tfnas_pickle() -> bytes:
    space = get_chain_space("tfnas")
    values = entry_values(TargetLut.model_validate(export_target([space])))
    return tfnas.dump_pickle(tfnas.latency_table(space, values))


def test_a_proxyless_table_maps_back_onto_our_ops() -> None:
    text = _proxyless_yaml()
    table = yaml.safe_load(text)
    doc, left = legacy.document("proxyless-yaml", text.encode(), OLD)
    assert left == {}
    ours = {spec.key: key for key, spec in ofa.layer_keys(get_chain_space("mobilenetv2"), ofa.PROXYLESS)}
    entries = doc["targets"][0]["entries"]
    assert {e["key"] for e in entries} == set(ours)
    for e in entries:
        row, st = table[ours[e["key"]]], e["measurements"][0]["stats"]
        assert st["median_ms"] == row["mean"] and st["n"] == row["count"]
        assert st["std_ms"] ** 2 == pytest.approx(row["var"], rel=1e-12)


def test_an_mbv3_table_maps_back_onto_the_ofa_mbv3_space() -> None:
    text = _mbv3_yaml(160, 224)
    table = yaml.safe_load(text)
    doc, left = legacy.document("ofa-mbv3-yaml", text.encode(), OLD)
    assert left == {}
    ours = {spec.key: key for r in (160, 224) for key, spec in ofa.layer_keys(get_chain_space("ofa-mbv3", f"{r}x{r}"),
                                                                               ofa.MBV3)}
    entries = doc["targets"][0]["entries"]
    assert {e["key"] for e in entries} == set(ours) and len(entries) == len(table)
    for e in entries:
        row, st = table[ours[e["key"]]], e["measurements"][0]["stats"]
        assert st["median_ms"] == row["mean"] and st["n"] == row["count"]
    se_block = "expanded_conv-input:40x40x24-output:20x20x40-expand:144-kernel:5-stride:2-idskip:0-se:1-hs:0"
    key = next(k for k, v in ours.items() if v == se_block)
    assert key == "ir:k5_d1_e6_g1_se0.25mbv3:c24x40x40->c40:s2:relu"


def test_keys_that_do_not_map_are_reported_and_the_rest_kept() -> None:
    good = "Conv-input:160x160x3-output:80x80x16: {mean: 0.5, count: 10, var: 0.01}\n"
    bad = ("Stem-input:160x160x3-output:80x80x16: {mean: 0.5}\n"
           "expanded_conv-input:40x40x24-output:20x20x40-expand:144-kernel:5-stride:2-idskip:0: {mean: 1.0}\n"
           "expanded_conv-input:40x40x24-output:40x40x24-expand:50-kernel:3-stride:1-idskip:1-se:0-hs:1: {mean: 1}\n"
           "AvgPool2D-input:5x5x960-output:1x1x96: {mean: 0.1}\n")
    doc, left = legacy.document("ofa-mbv3-yaml", (good + bad).encode(), OLD)
    assert [e["key"] for e in doc["targets"][0]["entries"]] == ["conv:k3_d1_g1_bn:c3x160x160->c16:s2:hswish"]
    layers = "not a layer their table queries: Conv, Conv_1, Logits, expanded_conv, AvgPool2D, Conv_2"
    assert left[layers] == ["Stem-input:160x160x3-output:80x80x16",  # a ProxylessNAS block: no se/hs
                            "expanded_conv-input:40x40x24-output:20x20x40-expand:144-kernel:5-stride:2-idskip:0"]
    shapes = left["shapes or widths no op of ours has"]
    assert len(shapes) == 2 and "expand:50 is not a multiple of 8" in shapes[0]
    assert "keeps the 960 channels" in shapes[1]
    with pytest.raises(FormatError, match=r"no op of the file maps onto ours \(2 left out \(not a layer.*e\.g\. Stem"):
        legacy.document("ofa-mbv3-yaml", bad.encode(), OLD)


def test_a_tfnas_pickle_maps_back_onto_our_ops() -> None:
    data = _tfnas_pickle()
    doc, left = legacy.document("tfnas-pickle", data, OLD)
    assert list(left) == ["base: the sum of the fixed layers, not one op"]
    back = {e["key"]: e["measurements"][0]["stats"]["median_ms"] for e in doc["targets"][0]["entries"]}
    table = pickle.loads(data)
    want = {spec.key: table[key][mid] for key, mid, spec in tfnas.layer_keys(get_chain_space("tfnas"))}
    assert back == want


@pytest.mark.parametrize("name", ["fbnet", "mobilenetv2"])
def test_fbnet_records_map_back_onto_every_entry(name: str) -> None:
    text, target = _fbnet_jsonl(name)
    doc, left = legacy.document("fbnet-jsonl", text.encode(), FB)
    assert left == {}
    back = TargetLut.model_validate(doc["targets"][0])
    got = {e.key: e for e in back.entries}
    assert set(got) == {e.key for e in target.entries}
    for e in target.entries:
        want, fig = e.figures(), got[e.key].figures()
        for f in ("value_ms", "p10_ms", "p90_ms"):
            assert fig[f] == pytest.approx(want[f], rel=1e-12), (e.key, f)
        assert got[e.key].measurements[0].stats.min_ms == pytest.approx(
            min(m.stats.min_ms for m in e.measurements), rel=1e-12)
    _same_records(fbnet.records(back), fbnet.records(target), FB)  # written again: the same records


def test_fbnet_records_that_are_no_op_of_ours_are_reported_and_the_rest_kept() -> None:
    text, target = _fbnet_jsonl("mobilenetv2")
    first = json.loads(text.splitlines()[0])
    caffe2 = {"op_type": "Conv", "op_args": ['name: "kernel"\ni: 3\n', 'name: "ws_nbytes_limit"\ni: 0\n'],
              "input_shapes": [[1, 3, 224, 224], [32, 3, 3, 3]], "input_dtypes": [12, 12],
              "device": "xavier/tensorrt/fp16", "runtime_us_p50": 80.5}
    odd_arg = {**first, "op_args": first["op_args"] + ['name: "kernels"\nints: 3\n']}
    fp32 = {**first, "input_dtypes": [1]}
    lines = [json.dumps(caffe2), "", *text.splitlines()[1:], json.dumps(odd_arg), json.dumps(fp32)]
    doc, left = legacy.document("fbnet-jsonl", "\n".join(lines).encode(), FB)
    assert len(doc["targets"][0]["entries"]) == len(target.entries) - 1
    assert left[fbnet.NO_FAMILY] == ["line 1: Conv [[1, 3, 224, 224], [32, 3, 3, 3]]"]
    n = len(lines)
    (odd,) = left[fbnet.NO_OP]
    assert odd.startswith(f"line {n - 1}: {first['op_type']} ") and "is not a name and one i, f or s value" in odd
    assert left["input dtypes other than [12] (fp16)"] == [f"line {n}: {first['op_type']} {first['input_shapes']} [1]"]
    with pytest.raises(FormatError, match=r"no op of the file maps onto ours \(1 left out \(op type that is no family"
                                          r" of ours\), e\.g\. line 1: Conv"):
        legacy.document("fbnet-jsonl", json.dumps(caffe2).encode(), FB)


@pytest.mark.parametrize("line, words", [
    ('{"op_type": "ir", "runtime_us_p50": 1.0', "line 3: not JSON \\(Expecting ',' delimiter at column \\d+\\)"),
    ("[1, 2]", "line 3: a record is a JSON object, not list"),
    ('{"op_type": "ir", "runtime_us_p50": 1.0, "flops": 3}', "line 3: 'flops' is no field of their record"),
    ('{"op_type": "ir", "runtime_us_p50": 0.0}', "line 3: runtime_us_p50 must be a positive time"),
    ('{"op_type": "ir", "runtime_us_p50": NaN}', "line 3: runtime_us_p50 must be a positive time"),
    ('{"op_type": "ir", "runtime_us_p50": 5.0, "runtime_us_p90": 4.0}', "line 3: runtimes out of order"),
    ('{"op_type": "ir", "runtime_us_p50": 5.0, "input_shapes": [[1, "16", 8, 8]]}', "line 3: op_type and device must"),
])
def test_a_broken_fbnet_line_refuses_the_file(line: str, words: str) -> None:
    head = _fbnet_jsonl("mobilenetv2")[0].splitlines()[:2]
    with pytest.raises(FormatError, match=words):
        legacy.document("fbnet-jsonl", "\n".join([*head, line]).encode(), FB)


def test_an_fbnet_file_of_several_devices_gives_the_target_s_records() -> None:
    text, target = _fbnet_jsonl("mobilenetv2")
    recs = [json.loads(line) for line in text.splitlines()]
    other = [{k: v * 2 if "runtime" in k else "pixel" if k == "device" else v for k, v in r.items()} for r in recs]
    two = fbnet.dump_jsonl(recs + other).encode()
    with pytest.raises(FormatError, match=r"records of 2 devices \('pixel', 'xavier/tensorrt/fp16'\)"):
        legacy.document("fbnet-jsonl", two, FB)
    doc, left = legacy.document("fbnet-jsonl", two, "xavier/tensorrt/fp16")
    assert list(left) == ["device other than the target id"]
    assert len(left["device other than the target id"]) == len(recs)
    values = {e.key: e.value() for e in target.entries}
    for e in doc["targets"][0]["entries"]:
        assert e["measurements"][0]["stats"]["median_ms"] == pytest.approx(values[e["key"]], rel=1e-12)


def _two_devices() -> Tuple[bytes, List[Dict[str, Any]], List[Dict[str, Any]]]:
    """A file of their two boards, named as their code names them: (file, xavier's records, pixel2's)."""
    text, _ = _fbnet_jsonl("mobilenetv2")
    xavier = [{**json.loads(line), "device": "xavier"} for line in text.splitlines()]
    pixel2 = [{k: v * 2 if "runtime" in k else "pixel2" if k == "device" else v for k, v in r.items()} for r in xavier]
    return fbnet.dump_jsonl(xavier + pixel2).encode(), xavier, pixel2


def test_fbnet_device_picks_that_device_s_records_of_the_file() -> None:
    two, xavier, pixel2 = _two_devices()
    with pytest.raises(FormatError, match=r"records of 2 devices \('pixel2', 'xavier'\).*--fbnet-device"):
        legacy.document("fbnet-jsonl", two, FB)  # without it: today's rule, the target id names none of them
    doc, left = legacy.document("fbnet-jsonl", two, FB, "pixel2")
    assert list(left) == ["device other than 'pixel2'"] and len(left["device other than 'pixel2'"]) == len(xavier)
    assert left["device other than 'pixel2'"][0] == \
        f"line 1: {xavier[0]['op_type']} {xavier[0]['input_shapes']} (xavier)"
    back = TargetLut.model_validate(doc["targets"][0])
    _same_records(fbnet.records(back, "pixel2"), pixel2, "pixel2")
    xdoc, xleft = legacy.document("fbnet-jsonl", two, FB, "xavier")
    _same_records(fbnet.records(TargetLut.model_validate(xdoc["targets"][0]), "xavier"), xavier, "xavier")
    run = doc["targets"][0]["entries"][0]["measurements"][0]["run_id"]
    assert run != xdoc["targets"][0]["entries"][0]["measurements"][0]["run_id"]  # two devices: two runs
    one = fbnet.dump_jsonl(xavier).encode()  # a file of one device: the same run with the name or without
    assert legacy.document("fbnet-jsonl", one, FB, "xavier") == (legacy.document("fbnet-jsonl", one, FB)[0], {})


@pytest.mark.parametrize("fmt, device, words", [
    ("fbnet-jsonl", "pixel3", r"no record of the file is of device 'pixel3'; it holds records of 2 device\(s\) "
                              r"\('pixel2', 'xavier'\)"),
    ("fbnet-jsonl", "xavier/tensorrt/fp16", r"device name 'xavier/tensorrt/fp16' is part of their file name.*no '/'"),
    ("fbnet-jsonl", "..", r"not '\.' or '\.\.'"),
    ("fbnet-jsonl", "", r"1 to 128 characters"),
    ("fbnet-jsonl", "x" * 129, r"1 to 128 characters"),
    ("fbnet-jsonl", "pixel\x002", r"no control character"),
    ("proxyless-yaml", "xavier", r"picks records of fbnet-jsonl, not of proxyless-yaml"),
])
def test_a_device_name_that_picks_nothing_refuses_the_file(fmt: str, device: str, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        legacy.document(fmt, _two_devices()[0], FB, device)


@pytest.mark.parametrize("text, words", [
    ("- 1\n- 2\n", "is a mapping"),
    ("Conv-input:224x224x3-output:112x112x32: {mean: -1.0}\n", "positive time"),
    ("Conv-input:224x224x3-output:112x112x32: {mean: 1.0, count: true}\n", "must be numbers"),
    ("Conv-input:224x224x3-output:111x111x32: {mean: 1.0}\n", "output 111x111 is not"),
    ("Stem-input:224x224x3-output:112x112x32: {mean: 1.0}\n", "1 left out \\(not a layer their table queries"),
    ("expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:3-stride:1-idskip:0: {mean: 1.0}\n",
     "idskip:0 but .*residual=True"),
    ("!!python/object/apply:os.system ['true']\n", "not YAML"),
])
def test_a_table_that_does_not_map_is_refused(text: str, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        legacy.document("proxyless-yaml", text.encode(), OLD)


def lut(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess[bytes]:
    """The `lut` CLI run in this process (a subprocess costs seconds to start, each call), output as bytes."""
    out, err = io.BytesIO(), io.BytesIO()
    so, se = io.TextIOWrapper(out, encoding="utf-8"), io.TextIOWrapper(err, encoding="utf-8")
    here = os.getcwd()
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse refuses a bad option value with exit 2
                code = int(e.code or 0)
            so.flush()
            se.flush()
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _status(db: str) -> Dict[str, Any]:
    r = lut("status", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    return {t["id"]: t["ops_measured"] for t in json.loads(r.stdout)["targets"]}


def _same_table(again: Dict[str, Any], first: Dict[str, Any]) -> None:
    """Every entry back with its mean and count; the variance through sqrt and back, to rounding."""
    assert set(again) == set(first)
    for k, row in first.items():
        assert again[k]["mean"] == row["mean"] and again[k]["count"] == row["count"]
        assert math.isclose(again[k]["var"], row["var"], rel_tol=1e-9)


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
    _same_table(yaml.safe_load(r.stdout), yaml.safe_load(yml.read_text()))

    # the MBv3 table at two sizes, one key that is none of their layers: reported, the rest round-trips
    mb = tmp_path / "mbv3.yaml"
    mb.write_text(_mbv3_yaml(160, 224) + "Stem-input:1x1x3-output:1x1x8: {mean: 1.0}\n")
    r = lut("import", str(mb), "--format", "ofa-mbv3-yaml", "--target", MB, "--db", db)
    assert r.returncode == 0 and b"190 entries: 190 measurements added" in r.stdout, r.stderr
    assert b"left out 1 of the file's entries (not a layer their table queries" in r.stderr
    r = lut("export", "--db", db, "--target", MB, "--format", "ofa-mbv3-yaml", "-r", "160,224")
    assert r.returncode == 0, r.stderr
    _same_table(yaml.safe_load(r.stdout), yaml.safe_load(_mbv3_yaml(160, 224)))

    # a pickle carrying a callable is refused before anything is stored, and nothing runs
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"base": 1.0, "x": _Boom()}))
    r = lut("import", str(evil), "--format", "tfnas-pickle", "--target", "evil/tensorrt/fp16", "--db", db, cwd=tmp_path)
    assert r.returncode == 1 and b"refers to" in r.stderr and b"system" in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr
    assert not (tmp_path / "pwned").exists()
    assert _status(db) == {OLD: 70, "old-cpu/pytorch-cpu/fp32": 88, MB: 190}
    r = lut("import", str(yml), "--format", "proxyless-yaml", "--db", db)
    assert r.returncode == 1 and b"--target" in r.stderr



def test_lut_import_of_fbnet_records_round_trips_and_refuses_a_broken_line(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    text, target = _fbnet_jsonl("mobilenetv2")
    n = len(target.entries)
    src = tmp_path / "old.jsonl"
    src.write_text(text + json.dumps({"op_type": "Relu", "input_shapes": [[1, 32, 112, 112]], "input_dtypes": [12],
                                      "device": "xavier/tensorrt/fp16", "runtime_us_p50": 3.0}) + "\n")
    r = lut("import", str(src), "--format", "fbnet-jsonl", "--target", FB, "--db", db)
    assert r.returncode == 0 and f"{n} entries: {n} measurements added".encode() in r.stdout, r.stderr
    assert f"left out 1 of the file's entries (op type that is no family of ours), e.g. line {n + 1}: Relu".encode() \
        in r.stderr, r.stderr
    r = lut("export", "--db", db, "--target", FB, "--format", "fbnet-jsonl")
    assert r.returncode == 0, r.stderr
    _same_records([json.loads(line) for line in r.stdout.decode().splitlines()],
                  [json.loads(line) for line in text.splitlines()], FB)

    broken = tmp_path / "broken.jsonl"
    broken.write_text(text.replace("\n", "\n{oops\n", 1))
    r = lut("import", str(broken), "--format", "fbnet-jsonl", "--target", "xavier-broken/tensorrt/fp16", "--db", db)
    assert r.returncode == 1 and b"broken.jsonl: line 2: not JSON" in r.stderr and b"Traceback" not in r.stderr
    assert _status(db) == {FB: n}


def test_lut_import_fbnet_device_takes_that_device_s_records(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    two, xavier, pixel2 = _two_devices()
    src = tmp_path / "op_lut_database.jsonl"
    src.write_bytes(two)
    n = len(pixel2)
    r = lut("import", str(src), "--format", "fbnet-jsonl", "--target", FB, "--fbnet-device", "pixel2", "--db", db)
    assert r.returncode == 0 and f"{n} entries: {n} measurements added".encode() in r.stdout, r.stderr
    assert f"left out {n} of the file's entries (device other than 'pixel2'), e.g. line 1: ".encode() in r.stderr
    r = lut("export", "--db", db, "--target", FB, "--format", "fbnet-jsonl", "--fbnet-device", "pixel2")
    assert r.returncode == 0, r.stderr
    _same_records([json.loads(line) for line in r.stdout.decode().splitlines()], pixel2, "pixel2")

    yml = tmp_path / "old.yaml"
    yml.write_text(_proxyless_yaml())
    for args, code, words in [
        (("--fbnet-device", "pixel3"), 1, b"no record of the file is of device 'pixel3'; it holds records of 2 "
                                          b"device(s) ('pixel2', 'xavier')"),
        (("--fbnet-device", "xavier/tensorrt/fp16"), 2, b"argument --fbnet-device: device name 'xavier/tensorrt/fp16'"),
        (("--fbnet-device", ""), 2, b"argument --fbnet-device: device name must be 1 to 128 characters"),
        (("--format", "proxyless-yaml", "--fbnet-device", "xavier"), 1, b"--fbnet-device picks a device's records of "
                                                                         b"an fbnet-jsonl file"),
    ]:
        fmt = () if "--format" in args else ("--format", "fbnet-jsonl")
        r = lut("import", str(yml if fmt == () else src), *fmt, "--target", "other/tensorrt/fp16", *args, "--db", db)
        assert r.returncode == code and words in r.stderr and b"Traceback" not in r.stderr, r.stderr
    assert _status(db) == {FB: n}  # nothing stored

