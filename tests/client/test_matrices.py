"""mac/param matrices, file mode (an export document), pruning and predictions: no server needed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lutcore.ops import OpSpec
from lutcore.spaces import get_chain_arch, get_chain_space, get_space
from search_client import (
    Calibration,
    ClientError,
    LUTClient,
    MissingEntriesError,
    StaleCalibrationWarning,
    mac_matrix,
    masked_softmax,
    param_matrix,
    parse_calibration,
    prune_candidates,
)
from tests.client.lutdata import TARGET, export_doc, fake_ms

RES = "64x128"


@pytest.fixture(scope="module")
def space():
    return get_space("squeezenas-small", RES)


@pytest.fixture()
def lut_file(tmp_path, space):
    p = tmp_path / "lut.json"
    p.write_text(json.dumps(export_doc(space, calibration={"a": 1.2, "b": 0.5})))
    return p


def test_mac_and_param_matrices_match_the_specs(space):
    cm = mac_matrix(space)
    pm = param_matrix("squeezenas-small", RES, scale=1.0, dtype=torch.float64)
    assert cm.C.shape == (space.num_layers, len(space.candidates))
    for i, row in enumerate(space.grid):
        for j, cell in enumerate(row):
            if isinstance(cell, OpSpec):
                assert not cm.mask[i, j]
                assert float(cm.C[i, j]) == pytest.approx(cell.macs() * 1e-6, rel=1e-6)
                assert float(pm.C[i, j]) == cell.params()
            else:
                assert cm.mask[i, j] and float(cm.C[i, j]) == 0.0
    assert cm.fixed == pytest.approx(space.fixed_macs() * 1e-6)
    assert pm.fixed == space.fixed_params()
    assert cm.keys == space.key_matrix() and cm.candidates == space.candidates
    # an architecture's MACs are its chosen cells plus the fixed ops
    arch = get_chain_arch("squeezenas-small:random:3", RES)
    total = sum(float(cm.C[i, j]) for i, j in enumerate(arch.indices)) + cm.fixed
    assert total == pytest.approx(arch.macs() * 1e-6, rel=1e-6)


def test_mac_matrix_accepts_definitions(space):
    d = space.definition.to_dict()
    assert torch.equal(mac_matrix(d, RES).C, mac_matrix(space).C)
    assert torch.equal(mac_matrix(space.definition, RES).C, mac_matrix(space).C)


def test_file_mode_matrix_equals_entries(space, lut_file):
    client = LUTClient.from_file(lut_file)
    cm = client.cost_matrix("squeezenas-small", resolution=RES, dtype=torch.float64)
    assert client.round_trips == 0 and client.offline
    assert cm.lut_version == 3 and cm.target == TARGET and cm.complete
    every = {c.key for row in space.grid for c in row if isinstance(c, OpSpec)} | {f.spec.key for f in space.fixed}
    assert cm.coverage["fraction"] == 1.0 and cm.coverage["total"] == len(every)  # identities count as measured
    for i, row in enumerate(space.grid):
        for j, cell in enumerate(row):
            if not isinstance(cell, OpSpec):
                assert cm.mask[i, j]
            elif cell.is_identity:
                assert float(cm.C[i, j]) == 0.0
            else:
                assert float(cm.C[i, j]) == fake_ms(cell.key)
    assert cm.fixed == pytest.approx(sum(fake_ms(f.spec.key) for f in space.fixed))
    # a Space object at the same resolution is the same matrix, served from the cache
    assert client.cost_matrix("squeezenas-small", TARGET, resolution=RES, dtype=torch.float64) is cm
    assert torch.equal(client.cost_matrix(space, TARGET, dtype=torch.float64).C, cm.C)
    # other metrics come from the run statistics
    p90 = client.cost_matrix(space, TARGET, metric="p90_ms", dtype=torch.float64)
    j = next(j for j, c in enumerate(space.grid[0]) if isinstance(c, OpSpec) and not c.is_identity)
    assert float(p90.C[0, j]) == pytest.approx(float(cm.C[0, j]) * 1.04)


def test_file_mode_missing_entries(tmp_path, space):
    ops = list(space.unique_ops())
    drop = [ops[3], ops[-1]]  # a grid op and a fixed op
    p = tmp_path / "lut.json"
    p.write_text(json.dumps(export_doc(space, drop=drop)))
    client = LUTClient.from_file(p)
    with pytest.raises(MissingEntriesError) as e:
        client.cost_matrix(space)
    msg = str(e.value)
    assert set(e.value.missing) == set(drop)
    assert drop[0] in msg and "profiler-agent" in msg and "--backend pytorch-cpu" in msg
    assert f"2 of {e.value.total} ops" in msg
    cm = client.cost_matrix(space, missing="nan")
    assert math.isnan(cm.fixed) and cm.missing and cm.coverage["measured"] == cm.coverage["total"] - 2
    nan_cells = torch.isnan(cm.C)
    assert nan_cells.any() and not (nan_cells & cm.mask).any()
    assert all(cm.keys[i][j] == drop[0] for i, j in nan_cells.nonzero().tolist())
    with pytest.raises(ClientError, match="LUT file"):
        client.cost_matrix(space, missing="wait")


def test_file_errors(tmp_path, space):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ClientError, match="nas-lut/1"):
        LUTClient.from_file(p)
    with pytest.raises(ClientError, match="cannot read"):
        LUTClient.from_file(tmp_path / "nope.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(export_doc(space)))
    with pytest.raises(ClientError, match="not in the LUT file"):
        LUTClient.from_file(good).cost_matrix(space, "xavier/tensorrt/fp16")


def test_predict_latency_with_calibration(space, lut_file):
    client = LUTClient.from_file(lut_file)
    arch = get_chain_arch("squeezenas-small:random:11", RES)
    expect = sum(0.0 if s.is_identity else fake_ms(s.key) for s in arch.layer_ops())
    expect += sum(fake_ms(f.spec.key) for f in space.fixed)
    raw = client.predict_latency(space, arch.choices, calibration=None)
    assert raw.ms == pytest.approx(expect) and raw.calibration is None
    auto = client.predict_latency(space, arch)  # the LUT file's own calibration
    assert auto.lut_ms == pytest.approx(expect) and auto.ms == pytest.approx(1.2 * expect + 0.5)
    given = client.predict_latency(space, arch.indices, calibration={"a": 2.0, "b": 0.0})
    assert float(given) == pytest.approx(2 * expect)
    per_space = parse_calibration({"squeezenas-small": {"a": 3, "b": 1}}, "squeezenas-small")
    assert per_space == Calibration(3.0, 1.0)
    assert parse_calibration({"other-space": {"a": 3}}, "squeezenas-small") is None
    # the per-op term of lutcore.calibration: n_ops = ops the network runs, as validation counts them
    n_ops = len(arch.all_ops())
    per_op = client.predict_latency(space, arch, calibration=Calibration(a=1.0, b=0.0, c=0.01))
    assert per_op.n_ops == n_ops and per_op.ms == pytest.approx(expect + 0.01 * n_ops)


def test_a_stale_calibration_still_applies_but_warns(tmp_path, space):
    cal = {"a": 1.2, "b": 0.5, "stale": True, "fitted_at": "2026-01-01T00:00:00Z", "fitted_lut_version": 3}
    p = tmp_path / "lut.json"
    p.write_text(json.dumps(export_doc(space, calibration=cal)))
    client = LUTClient.from_file(p)
    arch = get_chain_arch("squeezenas-small:random:11", RES)
    with pytest.warns(StaleCalibrationWarning, match="fitted at 2026-01-01.*validate --server URL --calibrate"):
        pred = client.predict_latency(space, arch)
    assert pred.ms == pytest.approx(1.2 * pred.lut_ms + 0.5)


def test_predict_rejects_invalid_choices(tmp_path):
    mb = get_chain_space("mobilenetv2", "64x64")  # its skip candidate is invalid where shapes change
    p = tmp_path / "lut.json"
    p.write_text(json.dumps(export_doc(mb)))
    client = LUTClient.from_file(p)
    cm = client.cost_matrix(mb)
    assert int(cm.mask.sum()) == sum(map(sum, mb.mask())) > 0
    arch = get_chain_arch("mobilenetv2:random:1", "64x64")
    bad = list(arch.indices)
    i, j = cm.mask.nonzero()[0].tolist()
    bad[i] = j
    with pytest.raises(ValueError, match=f"choices\\[{i}\\].*not a valid candidate at layer {i}"):
        client.predict_latency(mb, bad)
    with pytest.raises(ValueError, match="layers"):
        client.predict_latency(mb, bad[:-1])


def test_predict_latency_missing_op_raises(tmp_path, space):
    arch = get_chain_arch("squeezenas-small:random:2", RES)
    op = next(s for s in arch.layer_ops() if not s.is_identity)
    p = tmp_path / "lut.json"
    p.write_text(json.dumps(export_doc(space, drop=[op.key])))
    with pytest.raises(MissingEntriesError) as e:
        LUTClient.from_file(p).predict_latency(space, arch)
    assert e.value.missing == [op.key]


def test_prune_candidates():
    g = torch.Generator().manual_seed(0)
    C = torch.rand(4, 5, generator=g)
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[1, 0] = mask[3, 4] = True
    logits = torch.tensor(
        [[5.0, 0, 0, 5, 0], [9, 1, -9, 1, 1], [0, 0, 0, 0, 0], [0, -9, -9, -9, 9]]
    )
    probs = masked_softmax(logits, mask)
    pr = prune_candidates(probs, C, mask, threshold=0.05)
    assert pr.kept(0) == [0, 3]
    assert pr.kept(1) == [1, 3, 4]  # the masked candidate 0 is dropped despite its logit
    assert pr.kept(2) == [0, 1, 2, 3, 4]
    assert pr.kept(3) == [0]  # only the best survives; the masked 4 never does
    assert pr.C.shape == (4, 5)
    for i in range(4):
        for r, j in enumerate(pr.kept(i)):
            assert float(pr.C[i, r]) == float(C[i, j])
        assert pr.mask[i].tolist() == [r >= len(pr.kept(i)) for r in range(5)]
    # reduce/expand round-trip the logits of kept candidates
    back = pr.expand(pr.reduce(logits), fill=-1e9)
    assert torch.equal(back[pr.keep], logits[pr.keep])
    assert torch.all(back[~pr.keep] == -1e9)
    pr2 = prune_candidates(probs, C, mask, threshold=0.3)
    assert pr2.C.shape[1] == 3 and pr2.kept(2) == [0] and pr2.kept(0) == [0, 3]
