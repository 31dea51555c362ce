"""Cell spaces against torch: every edge op, and random deployed networks, counted by FlopCounterMode."""

from __future__ import annotations

from typing import Dict, Set

import pytest

torch = pytest.importorskip("torch")

from lutcore.ops import OpSpec  # noqa: E402
from lutcore.spaces import get_arch, get_cell_space  # noqa: E402
from lutcore.torch import build_network, network_input  # noqa: E402
from lutcore.torch.cellnet import Cell, CellNetwork  # noqa: E402
from tests.core.test_cells import cell_arch  # noqa: E402
from tests.core.test_torch import check_shape_and_costs, counted_macs, n_params  # noqa: E402

SMALL = {"darts-cifar10": "32x32", "darts-imagenet": "64x96", "autortnet": "64x128"}


@pytest.mark.parametrize("space_name", list(SMALL))
def test_every_edge_op_matches_torch(space_name):
    """Every (cell, edge, op) spec, the preprocessing, the depth-dependent and the fixed ops."""
    sp = get_cell_space(space_name, SMALL[space_name])
    specs: Dict[str, OpSpec] = {}
    for cell in sp.cells:
        for e in cell.edges:
            for s in e.row:
                if s is not None:
                    specs.setdefault(s.key, s)
        for f in (cell.pre0, cell.pre1, cell.node_add, cell.concat):
            if f is not None:
                specs.setdefault(f.spec.key, f.spec)
    for per in sp.depth_ops:
        for ops in per:
            specs.update({f.spec.key: f.spec for f in ops})
    specs.update({f.spec.key: f.spec for f in sp.fixed if f.spec.family != "lr_aspp"})
    assert {k for k in sp.unique_ops()} - set(specs) <= {sp.decoder.spec.key if sp.decoder else ""}
    families: Set[str] = set()
    for spec in specs.values():
        check_shape_and_costs(spec)  # declared output shape, MACs and params equal torch's
        families.add(spec.family)
    assert {"skip", "pool", "add", "concat"} | ({"upsample"} if sp.decoder else set()) <= families


@pytest.mark.parametrize(
    "name",
    ["darts-v2-cifar10", "darts-cifar10:random:11", "darts-imagenet:random:2", "autortnet:random:0",
     "autortnet:random:5", "autortnet:random:13"],
)
def test_deployed_network_equals_the_sum_of_its_ops(name):
    space = name.split(":")[0] if ":" in name else "darts-cifar10"
    arch = cell_arch(name, SMALL[space])
    net = build_network(arch).eval()  # as deployed
    x = network_input(arch)
    assert counted_macs(net, (x,)) == arch.macs() == sum(s.macs() for _, s in arch.all_ops())
    assert n_params(net) == arch.params()
    cells = [m for m in net.modules() if isinstance(m, Cell)]
    assert len(cells) == len(arch.kept_cells())
    # zero edges are gone: one module per non-zero edge
    assert sum(len(c.ops) for c in cells) == sum(len(arch.cell_edge_ops(c)) for c, _ in arch.kept_cells())
    with torch.no_grad():
        y = net(x)
    if space == "autortnet":
        assert tuple(y.shape) == (1, 19, 64, 128)
    else:
        assert tuple(y.shape) == (1, 10 if "cifar" in space else 1000)


def test_darts_v2_imagenet_full_size_counts():
    arch = get_arch("darts-v2-imagenet")
    net = build_network(arch)
    x = network_input(arch)
    assert counted_macs(net, (x,)) == arch.macs()
    assert n_params(net) == arch.params() == 4_718_752


@pytest.mark.parametrize("name", ["darts-cifar10:random:11", "autortnet:random:5", "empty-node"])
def test_networks_run_the_glue_all_ops_lists(name):
    """Outside its ops, a network runs exactly the adds, concats and upsamplings that ``all_ops`` costs:
    each cell's node sums and concat, AutoRTNet's aggregation sums, upsamplings and concat. A node whose
    edges are all zero holds zeros and runs nothing."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from tests.core.test_cells import empty_node_arch

    arch = empty_node_arch() if name == "empty-node" else cell_arch(name, SMALL[name.split(":")[0]])
    net = build_network(arch).eval()  # as deployed (and BN without batch statistics: a quicker dispatch)
    assert isinstance(net, CellNetwork)
    if name == "empty-node":
        assert counted_macs(net, (network_input(arch),)) == arch.macs() and n_params(net) == arch.params()
    depth = {"op": 0}
    counts = {"add": 0, "cat": 0, "upsample_bilinear2d": 0}

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            base = func.overloadpacket.__name__
            if not depth["op"] and base in counts:
                counts[base] += 1
            return func(*args, **(kwargs or {}))

    def pre(m, i):
        depth["op"] += 1

    def post(m, i, o):
        depth["op"] -= 1

    cells = [m for m in net.modules() if isinstance(m, Cell)]
    ops = [*net.stem, *net.agg, net.head, *([net.decoder] if net.decoder is not None else [])]
    for op in ops + [m for c in cells for m in (c.pre0, c.pre1, *c.ops)]:
        op.register_forward_pre_hook(pre)
        op.register_forward_hook(post)
    with torch.no_grad(), Count():
        net(network_input(arch))
    families = [s.family for _, s in arch.all_ops()]
    assert counts == {"add": families.count("add"), "cat": families.count("concat"),
                      "upsample_bilinear2d": families.count("upsample")}
    assert counts["add"] > 0
    if arch.space.decoder is not None:  # the aggregation's: 3 sums, 2 upsamplings, 1 concat
        glue = [f.name for f in arch.space.agg_glue]
        assert counts["upsample_bilinear2d"] == 2 and len(glue) == 6 and "agg.concat" in glue
