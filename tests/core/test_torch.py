"""The analytic costs against torch's own counters, and module shapes against spec shapes."""

from __future__ import annotations

import copy
import random

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lutcore.errors import SpecError  # noqa: E402
from lutcore.ops import Conv, InvertedResidual, Skip  # noqa: E402
from lutcore.spaces import get_arch, get_chain_arch, get_space, space_names  # noqa: E402
from lutcore.torch import build_network, build_op, example_inputs, network_input  # noqa: E402
from lutcore.torch.network import Network  # noqa: E402

# Small but valid resolutions: every space at a size other than its default.
SMALL = {"squeezenas-small": "128x256", "squeezenas-large": "128x256", "squeezenas-xlarge": "128x256"}
# A space with more unique ops than this (tfnas-elastic's ~420 widths) is checked on a seeded sample of them.
MAX_OPS, SAMPLE = 160, 64


def counted_macs(module, inputs) -> int:
    """torch's count from shapes alone, as deployed: a meta copy computes nothing, and eval() keeps batch norm off
    its training decomposition (several times faster; BN counts no MACs either way). A module already on meta
    (built under ``torch.device("meta")``) is counted as it is."""
    on_meta = all(p.is_meta for p in module.parameters())
    meta = module if on_meta else copy.deepcopy(module).to("meta")
    meta.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:  # inference_mode would count nothing
        meta(*[t.to("meta") for t in inputs])
    return fc.get_total_flops() // 2


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("space_name", space_names())
def test_every_op_of_every_space_matches_flop_counter(space_name):
    sp = get_space(space_name, SMALL.get(space_name, "64x64"))
    ops = sorted(sp.unique_ops().items())
    if len(ops) > MAX_OPS:
        ops = random.Random(space_name).sample(ops, SAMPLE)
    for key, spec in ops:
        with torch.device("meta"):
            m = build_op(spec)
        inputs = example_inputs(spec)
        assert counted_macs(m, inputs) == spec.macs(), key
        assert n_params(m) == spec.params(), key


@pytest.mark.parametrize("space_name", space_names())
@pytest.mark.parametrize("seed", [0, 1])
def test_network_macs_and_params_equal_sum_of_ops(space_name, seed):
    arch = get_arch(f"{space_name}:random:{seed}", SMALL.get(space_name, "96x128"))
    with torch.device("meta"):
        net = build_network(arch)
    x = network_input(arch)
    assert counted_macs(net, (x,)) == arch.macs() == sum(s.macs() for _, s in arch.all_ops())
    assert n_params(net) == arch.params()


@pytest.mark.parametrize("name", ["squeezenas-lat-small", "squeezenas-mac-large", "squeezenas-lat-xlarge"])
def test_published_networks_at_small_resolution(name):
    arch = get_arch(name, "128x256")
    net = build_network(arch).eval()  # as deployed; training-mode BN would also compute batch statistics
    x = network_input(arch)
    with torch.no_grad():
        y = net(x)
    assert tuple(y.shape) == (1, 19, 128, 256)
    assert counted_macs(net, (x,)) == arch.macs()
    assert n_params(net) == arch.params()


def test_deployed_network_drops_same_shape_skips():
    arch = get_chain_arch("squeezenas-lat-small", "128x256")
    skips_same = sum(1 for s in arch.layer_ops() if s.is_identity)
    assert skips_same > 0
    net = build_network(arch)
    assert isinstance(net, Network)
    assert len(net.layers) == arch.space.num_layers - skips_same


@st.composite
def ir_specs(draw):
    g = draw(st.sampled_from([1, 2, 4]))
    c_in = g * draw(st.integers(1, 8))
    c_out = g * draw(st.integers(1, 8))
    e = draw(st.sampled_from([1, 2, 3, 6, 0.5, 1.5]))
    return dict(
        family="ir",
        c_in=c_in,
        h=draw(st.integers(1, 20)),
        w=draw(st.integers(1, 20)),
        c_out=c_out,
        stride=draw(st.sampled_from([1, 2])),
        kernel=draw(st.sampled_from([3, 5, 7])),
        dilation=draw(st.sampled_from([1, 2])),
        expansion=e,
        groups=g,
        se=draw(st.sampled_from([0, 0.25, 1])),
        shuffle=g > 1 and draw(st.booleans()),
        act=draw(st.sampled_from(["relu", "relu6", "swish", "hswish"])),
    )


@st.composite
def other_specs(draw):
    c_in = draw(st.integers(1, 12)) * 2
    h, w = draw(st.integers(1, 12)) * 2, draw(st.integers(1, 12)) * 2
    kind = draw(st.sampled_from(["conv", "skip_fr", "skip_rcb", "skip_cbr"]))
    if kind == "conv":
        g = draw(st.sampled_from([1, 2]))
        return Conv(
            c_in,
            h,
            w,
            g * draw(st.integers(1, 8)),
            stride=draw(st.sampled_from([1, 2])),
            kernel=draw(st.sampled_from([1, 3, 5, 7])),
            groups=g,
            dilation=draw(st.sampled_from([1, 2])),
            bias=draw(st.booleans()),
            bn=draw(st.booleans()),
        )
    c_out = draw(st.integers(1, 12)) * 2
    if kind == "skip_fr":
        return Skip(c_in, h, w, c_out, stride=2, mode="factorized_reduce")
    if kind == "skip_rcb":
        return Skip(c_in, h, w, c_out, stride=1, mode="relu_conv_bn")
    return Skip(c_in, h, w, c_out, stride=draw(st.sampled_from([1, 2])), mode="conv_bn_relu")


def check_shape_and_costs(spec):
    m = build_op(spec)
    inputs = example_inputs(spec)
    with torch.no_grad():
        y = m(*inputs)
    assert tuple(y.shape) == spec.out_shape, spec.key
    assert counted_macs(m, inputs) == spec.macs(), spec.key
    assert n_params(m) == spec.params(), spec.key


@settings(max_examples=60, deadline=None)
@given(ir_specs())
def test_ir_module_shape_equals_declared(d):
    try:
        spec = InvertedResidual(**{k: v for k, v in d.items() if k != "family"})
    except SpecError:
        return  # e.g. a fractional expansion whose width the groups do not divide
    check_shape_and_costs(spec)


@settings(max_examples=40, deadline=None)
@given(other_specs())
def test_other_module_shapes_equal_declared(spec):
    check_shape_and_costs(spec)
