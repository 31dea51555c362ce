"""Cell-space costs in the client: from a LUT file and from a live server's lookups, the AutoRTNet
latency loss (gradcheck, and equal to the discrete sum at one-hot weights), and predictions."""

from __future__ import annotations

import uuid
from typing import Union

import httpx
import pytest
import torch

from lutcore.records import Target
from lutcore.spaces import Arch, get_arch, get_cell_space
from lutcore.spaces.cells import CellArch, make_cell_arch
from search_client import (
    CellLatencyLoss,
    ClientError,
    LUTClient,
    MissingEntriesError,
    cell_costs_from_response,
    cell_costs_from_values,
    predict_cell_latency,
)
from tests.client.lutdata import TARGET, export_doc, fake_ms, measurement_batch

RES = {"darts-cifar10": "32x32", "autortnet": "64x128"}


def lut_sum(arch) -> float:
    return sum(fake_ms(s.key) for _, s in arch.all_ops())


def one_hot(arch, costs):
    p = torch.zeros(len(costs.cell_types), costs.C.shape[1], costs.C.shape[2], dtype=torch.float64)
    for t, ops in enumerate(arch.choices):
        for e, op in enumerate(ops):
            p[t, e, costs.ops.index(op)] = 1.0
    betas = [torch.nn.functional.one_hot(torch.tensor(d - 1), n).double()
             for d, n in zip(arch.depths, costs.layout.hyper_sizes)]
    return p, betas


@pytest.mark.parametrize("space", list(RES))
def test_costs_from_a_lut_file_predict_the_sum_of_deployed_ops(space):
    sp = get_cell_space(space, RES[space])
    client = LUTClient.from_export(export_doc(sp))
    costs = client.cell_costs(space, resolution=RES[space], dtype=torch.float64)
    assert not costs.missing and costs.coverage["fraction"] == 1.0
    assert costs.C.shape == (len(sp.cells), sp.num_edges, len(sp.ops))
    cell = sp.cells[1]
    add = fake_ms(cell.node_add.spec.key)  # every non-zero op, identities too, carries one node-sum add
    for e, edge in enumerate(cell.edges):
        for j, spec in enumerate(edge.row):
            want = 0.0 if spec is None else add + (0.0 if spec.is_identity else fake_ms(spec.key))
            assert float(costs.C[1, e, j]) == pytest.approx(want)
    for seed in range(4):
        arch: Union[Arch, CellArch] = get_arch(f"{space}:random:{seed}", RES[space])
        assert isinstance(arch, CellArch)  # get_arch is typed Arch, but gives a cell space's architectures as CellArch
        pred = client.predict_latency(space, arch, resolution=RES[space])
        assert pred.lut_ms == pytest.approx(lut_sum(arch), rel=1e-9)
        assert pred.n_ops == len(arch.all_ops()) and pred.choices == [c.name for c, _ in arch.kept_cells()]
        loss = CellLatencyLoss(costs)  # at one-hot weights, the expected latency is that same sum
        assert float(loss(*one_hot(arch, costs))) == pytest.approx(lut_sum(arch), rel=1e-9)
    # by name, and with the LUT file's calibration
    doc = export_doc(sp, calibration={"a": 2.0, "b": 1.0, "c": 0.0})
    pred = LUTClient.from_export(doc).predict_latency(space, f"{space}:random:1", resolution=RES[space])
    arch = get_arch(f"{space}:random:1", RES[space])
    assert pred.ms == pytest.approx(2 * lut_sum(arch) + 1) and pred.lut_ms == pytest.approx(lut_sum(arch))


EMPTY_NODE = {t: ["zero", "zero", "conv_3x3", "max_pool_3x3", "skip_connect"]  # node 2 has no input
              for t in ("h0.reduce", "h0.normal", "h1.reduce", "h1.normal", "h2.reduce", "h2.normal")}


def test_a_node_without_input_costs_what_the_network_runs():
    """A node whose edges are all zero runs no add (the network holds zeros there): the discrete sum and the
    loss at one-hot weights are the deployed ops' sum, not one add below it; soft weights move smoothly."""
    sp = get_cell_space("autortnet", RES["autortnet"])
    costs = LUTClient.from_export(export_doc(sp)).cell_costs(sp, dtype=torch.float64)
    arch = make_cell_arch(sp, EMPTY_NODE, [2, 3, 1], name="empty-node")
    pred = predict_cell_latency(costs, arch)
    assert pred.lut_ms == pytest.approx(lut_sum(arch), rel=1e-12)
    p, betas = one_hot(arch, costs)
    loss = CellLatencyLoss(costs)
    assert float(loss(p, betas)) == pytest.approx(lut_sum(arch), rel=1e-12)
    assert costs.add is not None
    assert bool((costs.add > 0).all())
    # half the zero weight on one of node 2's edges: half the give-back (the product of the zero weights)
    j, z = costs.ops.index("conv_3x3"), costs.layout.zero_op
    q = p.clone()
    q[:, 0, z], q[:, 0, j] = 0.5, 0.5
    cells = costs.cell_costs(q) - costs.cell_costs(p)
    want = 0.5 * (costs.C[:, 0, j] - costs.add)  # half a conv (with its add), half the add given back
    assert torch.allclose(cells, want)


def test_darts_edge_costs_sum_the_cells_of_a_type():
    sp = get_cell_space("darts-cifar10")
    costs = LUTClient.from_export(export_doc(sp)).cell_costs("darts-cifar10", dtype=torch.float64)
    E = costs.edge_costs()
    assert E.shape == (2, 14, 8)
    normal = [i for i, c in enumerate(sp.cells) if c.type == "normal"]
    assert len(normal) == 18
    assert torch.allclose(E[0], costs.C[normal].sum(0))
    assert float(E[0, 0, costs.ops.index("none")]) == 0.0 and float(E[1, 0, costs.ops.index("max_pool_3x3")]) > 0


def test_depth_options_and_gating():
    sp = get_cell_space("autortnet", RES["autortnet"])
    costs = LUTClient.from_export(export_doc(sp)).cell_costs(sp, dtype=torch.float64)
    p = torch.softmax(torch.randn(6, 5, 5, dtype=torch.float64), -1)
    opts = costs.depth_options(p)
    assert [len(o) for o in opts] == [5, 10, 10]
    loss = CellLatencyLoss(costs)
    betas = [torch.nn.functional.one_hot(torch.tensor(d - 1), n).double() for d, n in zip((2, 7, 1), (5, 10, 10))]
    want = costs.fixed + float(opts[0][1] + opts[1][6] + opts[2][0])
    assert float(loss(p, betas)) == pytest.approx(want, rel=1e-12)
    assert bool((opts[1][1:] > opts[1][:-1]).all())  # a deeper hyper-cell costs more


def test_latency_loss_gradcheck_in_edge_and_depth_weights():
    sp = get_cell_space("autortnet", RES["autortnet"])
    costs = LUTClient.from_export(export_doc(sp)).cell_costs(sp, dtype=torch.float64)
    loss = CellLatencyLoss(costs, from_logits=True, weight=0.01)
    alpha = torch.randn(6, 5, 5, dtype=torch.float64, requires_grad=True)
    betas = [torch.randn(n, dtype=torch.float64, requires_grad=True) for n in (5, 10, 10)]
    assert torch.autograd.gradcheck(lambda a, b0, b1, b2: loss(a, [b0, b1, b2]), (alpha, *betas))
    out = loss(alpha, betas)
    out.backward()
    assert betas[2].grad is not None and alpha.grad is not None
    assert betas[2].grad.abs().sum() > 0 and alpha.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="depth weights for 3 hyper-cells"):
        loss(alpha, betas[:2])


def test_darts_loss_gradcheck_without_depths():
    sp = get_cell_space("darts-cifar10")
    costs = LUTClient.from_export(export_doc(sp)).cell_costs(sp, dtype=torch.float64)
    loss = CellLatencyLoss(costs, from_logits=True)
    alpha = torch.randn(2, 14, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: loss(a), (alpha,))


def test_missing_entries_are_named():
    sp = get_cell_space("autortnet", RES["autortnet"])
    arch: Union[Arch, CellArch] = get_arch("autortnet:random:2", RES["autortnet"])
    assert isinstance(arch, CellArch)
    gone = next(s.key for n, s in arch.all_ops() if ".e" in n)
    client = LUTClient.from_export(export_doc(sp, drop=[gone]))
    with pytest.raises(MissingEntriesError) as e:
        client.cell_costs(sp)
    assert gone in e.value.missing
    costs = client.cell_costs(sp, missing="nan", dtype=torch.float64)
    assert costs.missing == [gone]
    with pytest.raises(MissingEntriesError) as e:
        predict_cell_latency(costs, arch)
    assert e.value.missing == [gone]
    with pytest.raises(ValueError, match="unmeasured"):
        CellLatencyLoss(costs)


def test_costs_from_a_live_servers_lookups(live_server):
    """POST /lookup takes any keys: the client builds the same tensors from the server as from a file."""
    space = "autortnet"
    sp = get_cell_space(space, RES[space])
    target = Target(device="cpu-cells", backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})
    name = "cpu-cells-01"
    auth = {"Authorization": f"Bearer {live_server.agent_token(name)}"}
    r = httpx.post(live_server.api + "/devices", json={"name": name, "device_class": target.device}, headers=auth)
    assert r.status_code == 200, r.text
    body = measurement_batch(sp, target, name, uuid.uuid4().hex)
    r = httpx.post(live_server.api + "/measurements", json=body, headers=auth, timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    with LUTClient(live_server.url) as client:
        costs = client.cell_costs(space, target, resolution=RES[space], dtype=torch.float64)
        offline = LUTClient.from_export(export_doc(sp, target=TARGET)).cell_costs(sp, dtype=torch.float64)
        assert torch.allclose(costs.C, offline.C) and costs.fixed == pytest.approx(offline.fixed)
        assert costs.add is not None and offline.add is not None
        assert torch.allclose(costs.add, offline.add)  # what a node without input gives back, from the server too
        assert costs.lut_version
        arch = get_arch("autortnet:random:6", RES[space])
        assert client.predict_latency(space, arch, target, resolution=RES[space]).lut_ms == pytest.approx(
            lut_sum(arch), rel=1e-9)
        empty = make_cell_arch(sp, EMPTY_NODE, [2, 3, 1], name="empty-node")
        assert client.predict_latency(space, empty, target, resolution=RES[space]).lut_ms == pytest.approx(
            lut_sum(empty), rel=1e-9)
        n = client.round_trips
        assert client.cell_costs(space, target, resolution=RES[space], dtype=torch.float64) is costs
        assert client.round_trips == n
        again = client.cell_costs(space, target, resolution=RES[space], dtype=torch.float64, refresh=True)
        assert client.round_trips == n + 1 and torch.equal(again.C, costs.C)  # one POST /cell-costs
        assert [torch.equal(a, b) for a, b in zip(again.depth, offline.depth)] == [True] * 3
        # registering a cell space enqueues its unique ops, as for a chain space (nothing is missing here)
        with LUTClient(live_server.url, live_server.search_token()) as searcher:
            reg = searcher.register_space(space, target, resolution=RES[space])
        assert reg["unique_ops"] == len(sp.unique_ops()) and reg["enqueued"] == 0
        # a cell space has no [layers x candidates] matrix: the client says what to use instead
        with pytest.raises(ClientError, match="use client.cell_costs"):
            client.cost_matrix(space, target, resolution=RES[space])
        # and the server's endpoint refuses it with a 4xx, not a traceback
        r = httpx.post(live_server.api + "/cost-matrix", headers=live_server.headers(live_server.read_token()),
                       json={"space": space, "resolution": RES[space], "target": target.id})
        assert r.status_code == 422 and "cell_costs" in r.text, r.text


def test_a_server_answer_is_checked_against_the_local_layout():
    """The client fills tensors from a /cell-costs answer only when its layout is lutcore's here."""
    sp = get_cell_space("darts-cifar10")
    layout = sp.layout()
    values = {k: fake_ms(k) for k in layout.all_keys()[::2]}
    filled = layout.fill(values)
    resp = {"layout": layout.to_dict(), "C": filled.C, "pre": filled.pre, "depth": filled.depth,
            "fixed": [{"name": n, "key": k, "value_ms": v} for (n, k), v in zip(layout.fixed, filled.fixed)],
            "fixed_ms": filled.fixed_ms, "missing": filled.missing, "coverage": filled.coverage, "target": TARGET}
    got = cell_costs_from_response(resp, layout, missing="nan", dtype=torch.float64)
    want = cell_costs_from_values(layout, values, missing="nan", dtype=torch.float64)
    assert torch.equal(got.C.isnan(), want.C.isnan()) and got.missing == want.missing and got.missing
    assert torch.allclose(got.C.nan_to_num(-1), want.C.nan_to_num(-1))
    with pytest.raises(MissingEntriesError):
        cell_costs_from_response(resp, layout)
    with pytest.raises(ClientError, match="version skew"):
        cell_costs_from_response(resp, get_cell_space("darts-cifar10", "64x64").layout(), missing="nan")
