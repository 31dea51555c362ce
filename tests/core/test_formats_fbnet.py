"""FBNet's runtime LUT (facebookresearch/mobile-vision ``runtime_lut``, commit bb8465cf), read back the way
its code reads it.

Their code imports Caffe2 and is CC BY-NC, so it is neither run nor copied here: the test restates what
``LUTSchema.load_from_json`` (``runtime_lut/code/lut_schema.py``), ``OpLut.load`` / ``find_op`` /
``_is_match`` and ``RunTimeAPI.get_op_runtime`` (``runtime_lut/code/api.py``) do, and builds each query's
arguments as real protobuf messages of Caffe2's ``Argument`` shape (``str(arg)``, as ``load_caffe2_op``
does), so the argument text is protobuf's, not ours.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, List

import pytest

from lutcore.formats import fbnet
from lutcore.lutdoc import TargetLut
from lutcore.ops import OpSpec, spec_from_dict
from lutcore.spaces import get_chain_space, make_arch, random_arch
from tests.core.lut_targets import TARGET, entry_values, export_target
from tests.core.test_formats_legacy import lut

protobuf = pytest.importorskip("google.protobuf")

# LUTSchema.__init__: the record's keys and defaults
SCHEMA: Dict[str, Any] = {"op_type": "", "op_args": [], "input_shapes": [], "input_dtypes": [],
                          "runtime_us_p0": 0.0, "runtime_us_p10": 0.0, "runtime_us_p50": 0.0, "runtime_us_p90": 0.0,
                          "runtime_us_p100": 0.0, "device": ""}
TO_MATCH = ["op_type", "input_shapes", "input_dtypes", "device", "op_args"]  # api.py


def _argument_class() -> Any:
    """caffe2.proto's ``Argument`` (name 1, f 2, i 3, s 4, floats 5, ints 6, strings 7), built at run time."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="caffe2_argument.proto", package="caffe2", syntax="proto2")
    msg = fdp.message_type.add(name="Argument")
    f = descriptor_pb2.FieldDescriptorProto
    for name, num, typ, label in (("name", 1, f.TYPE_STRING, f.LABEL_OPTIONAL),
                                  ("f", 2, f.TYPE_FLOAT, f.LABEL_OPTIONAL),
                                  ("i", 3, f.TYPE_INT64, f.LABEL_OPTIONAL), ("s", 4, f.TYPE_BYTES, f.LABEL_OPTIONAL),
                                  ("floats", 5, f.TYPE_FLOAT, f.LABEL_REPEATED),
                                  ("ints", 6, f.TYPE_INT64, f.LABEL_REPEATED),
                                  ("strings", 7, f.TYPE_BYTES, f.LABEL_REPEATED)):
        msg.field.add(name=name, number=num, type=typ, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe2.Argument"))


Argument = _argument_class()


def load_db(text: str) -> List[Dict[str, Any]]:
    """OpLut.load: one JSON object per line, each set into a LUTSchema (unknown keys refused)."""
    ops = []
    for line in text.splitlines():
        record = dict(SCHEMA)
        for k, v in json.loads(line).items():
            assert k in record, f"{k} not in schema"
            if k == "op_args":
                v = [str(a) for a in v if "ws_nbytes_limit" not in str(a)]
            record[k] = v
        ops.append(record)
    return ops


def query(spec: OpSpec, dtype: int, device: str) -> Dict[str, Any]:
    """load_caffe2_op: args sorted by name, each ``str()`` of its proto; the op's input shapes and dtypes."""
    args = []
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        if f.name in ("c_in", "h", "w", "batch") or (f.name == "se_style" and v == "tfnas"):
            continue
        if f.name == "mid" and not v:  # to_dict leaves both defaults out
            continue
        if f.type == "float":
            args.append(Argument(name=f.name, f=v))
        elif isinstance(v, (bool, int)):
            args.append(Argument(name=f.name, i=int(v)))
        else:
            args.append(Argument(name=f.name, s=v.encode()))
    args.sort(key=lambda a: a.name)
    return {"op_type": spec.family, "op_args": [str(a) for a in args],
            "input_shapes": [[spec.batch, spec.c_in, spec.h, spec.w]], "input_dtypes": [dtype], "device": device}


def get_op_runtime(db: List[Dict[str, Any]], q: Dict[str, Any]) -> float:
    """find_op (every TO_MATCH field equal), then get_op_runtime(mode="ave") over runtime_us_p50."""
    found = [r for r in db if all(q[k] == r[k] for k in TO_MATCH)]
    assert found, f"No match found in the database! {q['op_type']} {q['input_shapes']}"
    run_times = [r["runtime_us_p50"] for r in found]
    return sum(run_times) / float(len(run_times))


def _target(name: str) -> Dict[str, Any]:
    t = export_target([get_chain_space(name)])
    del t["id"]
    return {**t, "target": TARGET}


@pytest.mark.parametrize("name", ["fbnet", "mobilenetv2"])
def test_their_lookup_sums_our_records_to_our_lut_sum(name: str) -> None:
    space = get_chain_space(name)
    target = TargetLut.model_validate(_target(name))
    db = load_db(fbnet.dump_jsonl(fbnet.records(target)))
    values = entry_values(target)
    for seed in range(20):
        ops = [s for _, s in make_arch(space, list(random_arch(space, seed))).all_ops()]
        theirs = math.fsum(get_op_runtime(db, query(s, 12, "xavier/tensorrt/fp16")) for s in ops)  # fp16: FLOAT16
        ours = math.fsum(values[s.key] for s in ops)
        assert theirs == pytest.approx(ours * 1e3, rel=1e-12)


def test_records_have_their_schema_and_our_figures() -> None:
    raw = _target("fbnet")
    target = TargetLut.model_validate(raw)
    recs = [json.loads(line) for line in fbnet.dump_jsonl(fbnet.records(target)).splitlines()]
    assert len(recs) == len(raw["entries"])
    assert all(set(r) == set(SCHEMA) - {"runtime_us_p100"} for r in recs)  # no maximum kept: schema default
    e = raw["entries"][0]
    r = recs[0]
    runs = [m["stats"] for m in e["measurements"]]
    assert r["runtime_us_p50"] == pytest.approx(e["value_ms"] * 1e3)
    assert r["runtime_us_p0"] == pytest.approx(min(s["min_ms"] for s in runs) * 1e3)
    assert r["runtime_us_p0"] <= r["runtime_us_p10"] <= r["runtime_us_p50"] <= r["runtime_us_p90"]
    assert r["input_shapes"] == [[1, e["spec"]["c_in"], e["spec"]["h"], e["spec"]["w"]]] and r["input_dtypes"] == [12]
    assert r["device"] == "xavier/tensorrt/fp16"


def test_quarantined_runs_do_not_count() -> None:
    raw = _target("fbnet")
    e = raw["entries"][0]
    del e["value_ms"]
    fast = dict(e["measurements"][0], run_id="run-q", quarantined=True)
    fast["stats"] = {k: (v / 100 if k.endswith("_ms") else v) for k, v in fast["stats"].items()}
    e["measurements"].append(fast)
    rec = fbnet.records(TargetLut.model_validate(raw))[0]
    assert rec["runtime_us_p0"] == pytest.approx(min(m["stats"]["min_ms"] for m in e["measurements"][:-1]) * 1e3)


@pytest.mark.parametrize("value, kind, text", [
    (3, "int", 'name: "x"\ni: 3\n'), (True, "bool", 'name: "x"\ni: 1\n'), (6, "float", 'name: "x"\nf: 6\n'),
    (1 / 3, "float", None), (2.5, "float", None), ("relu6", "str", 'name: "x"\ns: "relu6"\n'),
])
def test_argument_text_is_protobufs(value: Any, kind: str, text: Any) -> None:
    if kind == "float":
        want = str(Argument(name="x", f=value))
    elif isinstance(value, str):
        want = str(Argument(name="x", s=value.encode()))
    else:
        want = str(Argument(name="x", i=int(value)))
    assert fbnet.arg_text("x", value, kind) == want and (text is None or want == text)


def test_their_device_name_finds_every_entry(tmp_path: Path) -> None:
    """`lut export --fbnet-device xavier`: the file RunTimeAPI loads as xavier-op_lut_database.json, every
    entry found by a query for device xavier (and none for the target id)."""
    pytest.importorskip("sqlalchemy")
    raw = _target("fbnet")
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"schema": "nas-lut/1", "targets": [raw], "devices": []}))
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    r = lut("import", str(doc), "--db", db)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "xavier-op_lut_database.json"
    r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "fbnet-jsonl",
            "--fbnet-device", "xavier", "-o", str(out))
    assert r.returncode == 0 and b"(fbnet-jsonl, device xavier)" in r.stderr, r.stderr
    db_recs = load_db(out.read_text())
    assert len(db_recs) == len(raw["entries"]) and {r["device"] for r in db_recs} == {"xavier"}
    for e in raw["entries"]:
        spec = spec_from_dict(e["spec"])
        assert get_op_runtime(db_recs, query(spec, 12, "xavier")) == pytest.approx(e["value_ms"] * 1e3, rel=1e-12)
        assert not [x for x in db_recs if all(query(spec, 12, "xavier/tensorrt/fp16")[k] == x[k] for k in TO_MATCH)]

    for args, code, words in [
        (("--target", "xavier/tensorrt/fp16", "--fbnet-device", "xavier"), 1,
         b"--fbnet-device names the records of one target in fbnet-jsonl: use it with --format fbnet-jsonl"),
        (("--format", "fbnet-jsonl", "--fbnet-device", "xavier"), 1, b"and --target"),  # all targets: one name merges
        (("--format", "fbnet-jsonl", "--target", "xavier/tensorrt/fp16", "--fbnet-device", "a/b"), 2,
         b"argument --fbnet-device: device name 'a/b' is part of their file name"),
        (("--format", "fbnet-jsonl", "--target", "xavier/tensorrt/fp16", "--fbnet-device", ".."), 2,
         b"not '.' or '..'"),
    ]:
        bad = tmp_path / "bad.json"
        r = lut("export", "--db", db, *args, "-o", str(bad))
        assert r.returncode == code and words in r.stderr and b"Traceback" not in r.stderr, r.stderr
        assert not bad.exists()


def test_one_device_name_is_refused_for_several_targets() -> None:
    """exchange.render, as `lut export` (--db or --server) calls it: one name would merge the targets."""
    pytest.importorskip("sqlalchemy")
    from lut_server.exchange import render
    from lut_server.util import BadInput

    raw = _target("fbnet")
    other = {**raw, "target": {**TARGET, "device": "orin"}}
    doc = {"schema": "nas-lut/1", "targets": [raw, other], "devices": []}
    with pytest.raises(BadInput, match=r"one device name \(--fbnet-device\) names one target's records"):
        render(doc, "fbnet-jsonl", fbnet_device="xavier")
    with pytest.raises(BadInput, match=r"a device name \(--fbnet-device\) is a field of fbnet-jsonl's records, not "
                                       r"of proxyless-yaml"):
        render({**doc, "targets": [raw]}, "proxyless-yaml", fbnet_device="xavier")
    recs = [json.loads(line) for line in render({**doc, "targets": [raw]}, "fbnet-jsonl", None, (), "xavier")
            .decode().splitlines()]
    assert {r["device"] for r in recs} == {"xavier"} and len(recs) == len(raw["entries"])

