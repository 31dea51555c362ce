"""A new op family is one declaration: the toy family below, defined in this module alone, works
through a space definition, MACs and parameters, the catalogue and the torch builder."""

from __future__ import annotations

import dataclasses
from typing import List

import pytest

from lutcore.catalogues import catalogue_from_dict
from lutcore.errors import SpaceError
from lutcore.ops import OpSpec, conv_out, families, get_family, register_family, spec_from_dict, unregister_family
from lutcore.spaces import make_arch, space_from_dict


@dataclasses.dataclass(frozen=True)
class Toy(OpSpec):
    """kxk conv with bias (no batch norm) -> act."""

    kernel: int = 3
    act: str = "relu"

    def validate(self) -> None:
        self._check_choice("kernel", (1, 3))
        self._check_choice("act", ("relu", "none"))

    @property
    def out_hw(self):
        return conv_out(self.h, self.kernel, self.stride), conv_out(self.w, self.kernel, self.stride)

    def macs(self) -> int:
        ho, wo = self.out_hw
        return ho * wo * self.c_out * self.c_in * self.kernel**2 * self.batch

    def params(self) -> int:
        return self.c_out * self.c_in * self.kernel**2 + self.c_out

    def _tag(self) -> str:
        return f"k{self.kernel}"

    def _key_parts(self) -> List[str]:
        return super()._key_parts() + [self.act]


def build_toy(s: Toy):
    """The toy's torch builder; torch is imported only when a module is built."""
    from torch import nn

    layers: List[nn.Module] = [nn.Conv2d(s.c_in, s.c_out, s.kernel, s.stride, s.kernel // 2, bias=True)]
    layers.append(nn.ReLU() if s.act == "relu" else nn.Identity())
    return nn.Sequential(*layers)


@pytest.fixture
def toy():
    register_family("toy", roles=("block", "fixed"), torch=f"{__name__}:build_toy")(Toy)
    yield Toy
    unregister_family("toy")
    assert "toy" not in families()


TOY_SPACE = {
    "name": "toy-space",
    "input": [3, 16, 16],
    "catalogue": {
        "name": "toys",
        "candidates": [
            {"name": "t1", "family": "toy", "kernel": 1},
            {"name": "t3", "family": "toy", "kernel": 3},
            {"name": "ir", "family": "ir", "kernel": 3, "expansion": 2},
            {"name": "skip"},
        ],
    },
    "stem": [{"op": "toy", "c_out": 8, "kernel": 3, "stride": 2}],
    "layers": [{"c_out": 8}, {"c_out": 16, "stride": 2, "act": "none"}],
    "head": [{"op": "pool_fc", "classes": 10}],
}


def test_registration_declares_roles_inputs_and_builder(toy):
    fam = get_family("toy")
    assert (fam.spec, fam.roles, fam.inputs, fam.fields) == (Toy, ("block", "fixed"), 1, ["kernel", "act"])
    assert "toy" in families("block") and "toy" in families("fixed") and "toy" not in families("decoder")
    assert fam.torch_builder() is build_toy
    spec = Toy(c_in=4, h=8, w=8, c_out=6, stride=2)
    assert spec.key == "toy:k3:c4x8x8->c6:s2:relu"
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec.macs() == 4 * 4 * 6 * 4 * 9 and spec.params() == 6 * 4 * 9 + 6
    with pytest.raises(ValueError, match="registered twice"):
        register_family("toy", roles=("block",), torch=f"{__name__}:build_toy")(Toy)


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="roles"):
        register_family("toy2", roles=("layer",), torch="m:f")
    with pytest.raises(ValueError, match="module:function"):
        register_family("toy2", roles=("block",), torch="build_toy")
    assert "toy2" not in families()


def test_toy_family_through_a_space_definition(toy):
    sp = space_from_dict(TOY_SPACE).at()
    assert sp.stem[0].spec == Toy(c_in=3, h=16, w=16, c_out=8, stride=2, kernel=3)
    # the catalogue placed the toy at each layer with the layer's activation
    assert sp.cell(0, "t1") == Toy(c_in=8, h=8, w=8, c_out=8, kernel=1, act="relu")
    assert sp.cell(1, "t3") == Toy(c_in=8, h=8, w=8, c_out=16, stride=2, kernel=3, act="none")
    t3 = sp.cell(1, "t3")
    assert isinstance(t3, Toy) and t3.key == "toy:k3:c8x8x8->c16:s2:none"
    assert sp.mac_matrix()[1][:2] == [4 * 4 * 16 * 8 * 1, 4 * 4 * 16 * 8 * 9]
    assert sp.head[0].spec.c_in == 16 and sp.head[0].spec.h == 4
    assert sp.fixed_macs() == 8 * 8 * 8 * 3 * 9 + 16 * 10
    keys = {k.split(":")[0] for k in sp.unique_ops()}
    assert keys == {"toy", "ir", "skip", "pool_fc"}


def test_toy_family_errors_name_the_field(toy):
    bad = dict(TOY_SPACE, stem=[{"op": "toy", "c_out": 8, "kernel": 5}])
    with pytest.raises(SpaceError, match=r"stem\[0\]\.kernel"):
        space_from_dict(bad)
    with pytest.raises(SpaceError, match=r"candidates\[0\]\.groups"):
        catalogue_from_dict({"candidates": [{"name": "t", "family": "toy", "groups": 2}]})
    with pytest.raises(SpaceError, match=r"candidates\[0\]\.kernel"):
        catalogue_from_dict({"candidates": [{"name": "t", "family": "toy", "kernel": 7}]})


def test_unregistered_family_is_unknown_to_spaces():
    with pytest.raises(SpaceError, match=r"candidates\[0\]\.family"):
        catalogue_from_dict({"candidates": [{"name": "t", "family": "toy"}]})
    with pytest.raises(SpaceError, match=r"stem\[0\]\.op"):
        space_from_dict(dict(TOY_SPACE, catalogue="fbnet"))


def test_toy_family_through_the_torch_builder(toy):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from lutcore.torch import build_network, build_op, example_inputs, network_input

    sp = space_from_dict(TOY_SPACE).at()
    toys = [s for s in sp.unique_ops().values() if s.family == "toy"]
    assert len(toys) == 5  # stem, t1 and t3 at both layers
    for spec in toys:
        m = build_op(spec)
        (x,) = example_inputs(spec)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            y = m(x)
        assert tuple(y.shape) == spec.out_shape
        assert fc.get_total_flops() // 2 == spec.macs()
        assert sum(p.numel() for p in m.parameters()) == spec.params()
    arch = make_arch(sp, ["t3", "t1"])
    net = build_network(arch)
    with torch.no_grad():
        assert tuple(net(network_input(arch)).shape) == (1, 10)
    assert sum(p.numel() for p in net.parameters()) == arch.params()


def test_every_builtin_family_names_a_torch_builder_that_exists():
    """Read statically (no torch needed): the module each family names defines the function."""
    import ast
    import importlib.util

    for name in families():
        module, _, func = get_family(name).torch.partition(":")
        found = importlib.util.find_spec(module)
        assert found is not None and found.origin is not None, module
        origin = found.origin
        with open(origin) as f:
            tree = ast.parse(f.read())
        assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (name, module, func)
