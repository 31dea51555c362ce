"""Spaces, catalogues and architectures: the published numbers, grids, masks and user files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import pytest

from lutcore.catalogues import get_catalogue
from lutcore.catalogues.base import Invalid
from lutcore.errors import SpaceError, UnknownNameError
from lutcore.ops import LRASPP, InvertedResidual, OpSpec, Skip
from lutcore.spaces import (
    get_arch,
    get_chain_arch,
    get_chain_space,
    get_space,
    load_space_file,
    paper_figures,
    published_names,
    space_from_dict,
)

GOLDEN = Path(__file__).with_name("golden")


def op(cell: Union[OpSpec, Invalid]) -> OpSpec:
    """A grid cell the test knows to be a valid op (not an ``Invalid``)."""
    assert isinstance(cell, OpSpec), cell
    return cell


def test_six_published_networks_match_table1_macs():
    names = published_names()
    assert len(names) == 6
    for name in names:
        arch = get_arch(name)  # default resolution 1x3x1024x2048
        assert arch.space.resolution == (1024, 2048)
        paper = paper_figures(name)["gmacs"]
        assert abs(arch.macs() / 1e9 - paper) / paper < 0.005, (name, arch.macs() / 1e9, paper)


def test_published_gmacs_values_are_the_papers():
    got = [
        paper_figures(n)["gmacs"]
        for n in [
            "squeezenas-mac-small",
            "squeezenas-mac-large",
            "squeezenas-mac-xlarge",
            "squeezenas-lat-small",
            "squeezenas-lat-large",
            "squeezenas-lat-xlarge",
        ]
    ]
    assert got == [3.01, 9.39, 21.84, 4.47, 19.57, 32.73]


@pytest.mark.parametrize("name, n", [("squeezenas", 13), ("fbnet", 9), ("tfnas", 8), ("proxyless", 7)])
def test_catalogue_sizes(name, n):
    assert len(get_catalogue(name).candidates) == n


def test_squeezenas_candidates_are_the_reference_list():
    assert get_catalogue("squeezenas").names == [
        "k3_d1_e1_g2",
        "k3_d1_e1_g1",
        "k3_d1_e3_g1",
        "k3_d1_e6_g1",
        "k3_d2_e1_g2",
        "k3_d2_e1_g1",
        "k3_d2_e3_g1",
        "k3_d2_e6_g1",
        "k5_d1_e1_g2",
        "k5_d1_e1_g1",
        "k5_d1_e3_g1",
        "k5_d1_e6_g1",
        "skip",
    ]


def test_squeezenas_skip_adapts_to_shape():
    sp = get_chain_space("squeezenas-small")
    assert sp.cell(0, "skip") == Skip(16, 512, 1024, 16, stride=2, mode="factorized_reduce")
    assert op(sp.cell(1, "skip")).is_identity
    skip12 = sp.cell(12, "skip")
    assert isinstance(skip12, Skip) and skip12.mode == "relu_conv_bn"  # 40 -> 48 at stride 1
    e1 = sp.cell(5, "k3_d1_e1_g2")
    assert isinstance(e1, InvertedResidual) and e1.pw_expand and e1.groups == 2 and not e1.shuffle


def test_tfnas_activation_per_stage_and_se():
    sp = get_chain_space("tfnas")
    assert {s.act for s in sp.slots[:4]} == {"relu"} and {s.act for s in sp.slots[4:]} == {"swish"}
    cell = sp.cell(6, "k5_e6_se")
    assert isinstance(cell, InvertedResidual)
    assert cell.se == 2 and cell.act == "swish" and cell.kernel == 5


def test_mobilenetv2_skip_is_masked_where_shape_changes():
    sp = get_chain_space("mobilenetv2")
    mask = sp.mask()
    j = sp.candidates.index("skip")
    for i, slot in enumerate(sp.slots):
        assert mask[i][j] == (slot.stride != 1 or slot.c_in != slot.c_out)
    assert sum(mask[i][j] for i in range(sp.num_layers)) == 6


def test_unique_ops_are_deduplicated_and_exclude_identities():
    sp = get_chain_space("squeezenas-small", "256x512")
    ops = sp.unique_ops()
    keys = [op(c).key for row in sp.grid for c in row if not op(c).is_identity] + [f.spec.key for f in sp.fixed]
    assert len(ops) == len(set(keys)) < len(keys)
    assert all(not s.is_identity for s in ops.values())


def test_any_resolution_and_bad_resolution():
    sp = get_chain_space("squeezenas-large", "128x256")
    assert sp.decoder is not None and isinstance(sp.decoder.spec, LRASPP)
    assert sp.decoder.spec.out_hw == (128, 256)
    assert sp.decoder.spec.pool_kernel == (8, 16)  # the 49-cell window shrinks to fit
    with pytest.raises(SpaceError, match="divisible by 16"):
        get_space("squeezenas-small", "100x200")
    with pytest.raises(SpaceError, match="HxW"):
        get_space("fbnet", "big")


def test_golden_keys_of_squeezenas_small():
    sp = get_chain_space("squeezenas-small")
    lines = [f"{i} {name} {op(cell).key}" for i, row in enumerate(sp.grid) for name, cell in zip(sp.candidates, row)]
    lines += [f"{f.name} {f.spec.key}" for f in sp.fixed]
    golden = (GOLDEN / "squeezenas-small.keys").read_text().splitlines()
    assert lines == golden


def test_golden_digests_are_stable():
    data = json.loads((GOLDEN / "digests.json").read_text())
    sp = get_space("squeezenas-small")
    for key, digest in data.items():
        assert sp.unique_ops()[key].digest == digest


def test_random_arch_is_seeded_and_valid():
    a, b = get_arch("squeezenas-small:random:7"), get_arch("squeezenas-small:random:7")
    assert a.choices == b.choices != get_arch("squeezenas-small:random:8").choices
    golden = json.loads((GOLDEN / "random_archs.json").read_text())
    assert list(a.choices) == golden["squeezenas-small:random:7"]
    for seed in range(5):
        arch = get_chain_arch(f"mobilenetv2:random:{seed}")
        assert not any(row[j] for row, j in zip(arch.space.mask(), arch.indices))


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: .*squeezenas-small"):
        get_space("squeezenas-tiny")
    with pytest.raises(UnknownNameError, match="squeezenas-lat-small"):
        get_arch("squeezenas-lat-tiny")


USER_SPACE = """
name: tiny
input: [3, 64, 64]
catalogue:
  name: mine
  skip_policy: identity
  candidates:
    - {name: k3_e3, kernel: 3, expansion: 3}
    - {name: k5_e6_se, kernel: 5, expansion: 6, se: 0.25, act: hswish}
    - {name: skip}
stem: [{op: conv, c_out: 16, kernel: 3, stride: 2}]
layers:
  - {c_out: 24, stride: 2, repeat: 2}
  - {c_out: 32, stride: 2, act: swish}
head: [{op: pool_fc, classes: 10}]
"""


def test_user_space_from_yaml(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(USER_SPACE)
    (sdef,) = load_space_file(p)
    sp = sdef.at("128x128")
    assert sp.num_layers == 3 and sp.candidates == ["k3_e3", "k5_e6_se", "skip"]
    assert sp.mask() == [[False, False, True], [False, False, False], [False, False, True]]
    k5, k3 = sp.cell(1, "k5_e6_se"), sp.cell(2, "k3_e3")
    assert isinstance(k5, InvertedResidual) and isinstance(k3, InvertedResidual)
    assert k5.act == "hswish" and k3.act == "swish"
    assert get_chain_space(str(p)).num_layers == 3


@pytest.mark.parametrize(
    "edit, path",
    [
        (lambda d: d["layers"][1].update(stride=3), "layers[1].stride"),
        (lambda d: d["layers"][0].update(chanels=3), "layers[0].chanels"),
        (lambda d: d["catalogue"]["candidates"][0].update(kernel=4), "catalogue.candidates[0].kernel"),
        (lambda d: d["stem"][0].update(op="maxpool"), "stem[0].op"),
        (lambda d: d["stem"][0].update(groups=5), "stem[0].groups"),
        (lambda d: d.pop("layers"), "layers"),
        (lambda d: d.update(input=[3, 64]), "input"),
    ],
)
def test_user_space_errors_point_at_the_field(edit, path):
    import yaml

    d = yaml.safe_load(USER_SPACE)
    edit(d)
    with pytest.raises(SpaceError) as e:
        space_from_dict(d)
    assert e.value.path == path, str(e.value)


def test_bad_yaml_file_is_reported(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space_file(p)
