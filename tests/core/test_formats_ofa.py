"""OFA / ProxylessNAS latency tables, proven with Once-for-All's own code (the ``ofa`` package, dev extra).

Their supernets (``OFAProxylessNASNets``, ``OFAMobileNetV3``) turn an architecture into the network
config their latency tables read, and their ``ProxylessNASLatencyTable`` / ``MBv3LatencyTable`` sum our
exported YAML over it; the sum must equal our own LUT sum of the same architecture, and their subnet
must have our network's parameter count (the spaces are their networks, not look-alikes). Only torchvision
is stubbed when absent: ``ofa.utils`` imports its image transforms for data loaders that latency
tables never touch.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import types
from typing import Any, Dict, List, Sequence, Tuple

import pytest
import yaml

from lutcore.errors import FormatError, SpaceError, SpecError
from lutcore.formats.ofa import (
    MBV3,
    PROXYLESS,
    Dialect,
    OpStats,
    dump_yaml,
    latency_table,
    layer_keys,
    pooled_stats,
    stats_from_lut,
)
from lutcore.lutdoc import TargetLut
from lutcore.ops import InvertedResidual, OpSpec
from lutcore.spaces import get_chain_space, get_space, make_arch, random_arch
from lutcore.spaces.space import Space
from tests.core.lut_targets import export_target, imported_db, lut

pytest.importorskip("torch")


def _stub_torchvision() -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:

        class _Stub(types.ModuleType):
            transforms: types.ModuleType  # set below: torchvision.transforms
            functional: types.ModuleType  # set below: torchvision.transforms.functional

            def __getattr__(self, name: str) -> Any:
                if name.startswith("__"):
                    raise AttributeError(name)
                return type(name, (), {})

        tv, tr, fn = (_Stub(n) for n in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
        tv.transforms, tr.functional = tr, fn
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})


_stub_torchvision()
lut_module = pytest.importorskip("ofa.nas.efficiency_predictor.latency_lookup_table")
networks = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")


def ir(cell: object) -> InvertedResidual:
    """A grid cell the test knows to be an inverted-residual block (not a skip, not an ``Invalid``)."""
    assert isinstance(cell, InvertedResidual), cell
    return cell


def _stats(target: Dict[str, Any]) -> Dict[str, OpStats]:
    return stats_from_lut(TargetLut.model_validate(target))


def _our_sum(space: Space, choices: Sequence[str], stats: Dict[str, OpStats]) -> float:
    return math.fsum(stats[s.key].mean_ms for _, s in make_arch(space, list(choices)).all_ops())


def _their_table(table_cls: type, path: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Their table over our file, unmodified but for PyYAML 6's required Loader: a safe one."""
    monkeypatch.setattr(lut_module, "yaml", types.SimpleNamespace(load=yaml.safe_load))
    return table_cls(url=path)


def _ofa_settings(space: Space, choices: Sequence[str], stage_len: int) -> Tuple[List[int], List[int], List[int]]:
    """Our choices as OFA's ks/e/d: per stage, the non-skip layers in order are its active blocks."""
    ks: List[int] = []
    es: List[int] = []
    ds: List[int] = []
    for s in range(0, len(choices), stage_len):
        stage = choices[s:s + stage_len]
        active = [c for c in stage if c != "skip"]
        ds.append(len(active))
        for j in range(len(stage)):
            k, e = active[j].split("_") if j < len(active) else ("k3", "e3")
            ks.append(int(k[1:]))
            es.append(int(e[1:]))
    return ks, es, ds


CASES = {
    # (space, dialect, their table, their supernet, layers per stage, resolutions)
    "proxyless": ("mobilenetv2", PROXYLESS, "ProxylessNASLatencyTable",
                  lambda: networks.OFAProxylessNASNets(ks_list=[3, 5, 7], expand_ratio_list=[3, 6],
                                                       depth_list=[1, 2, 3, 4]), 4, (160, 192, 208, 224)),
    "mbv3": ("ofa-mbv3", MBV3, "MBv3LatencyTable",
             lambda: networks.OFAMobileNetV3(ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4]),
             4, (128, 132, 160, 176, 208, 224)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_their_latency_table_sums_our_export_to_our_lut_sum(case: str, tmp_path: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    name, dialect, table_name, supernet, stage_len, resolutions = CASES[case]
    spaces = [get_chain_space(name, f"{r}x{r}") for r in resolutions]
    stats = _stats(export_target(spaces))
    path = tmp_path / "lut.yaml"
    path.write_text(dump_yaml(latency_table(spaces, stats, dialect)))
    table = _their_table(getattr(lut_module, table_name), str(path), monkeypatch)
    net = supernet()
    checked = 0
    for seed in range(20):
        space = spaces[seed % len(spaces)]
        choices = random_arch(space, seed)
        ks, es, ds = _ofa_settings(space, choices, stage_len)
        net.set_active_subnet(ks=ks, e=es, d=ds)
        cfg = net.get_active_net_config()
        assert len(cfg["blocks"]) == 1 + sum(c != "skip" for c in choices)  # their net has our blocks
        theirs = table.predict_network_latency_given_config(cfg, space.resolution[0])
        ours = _our_sum(space, choices, stats)
        assert theirs == pytest.approx(ours, rel=1e-9), (seed, choices)
        if seed % 4 == 0:  # and their subnet is our network: the same parameters, layer by layer
            sub = net.get_active_subnet(preserve_weight=False)
            assert sum(p.numel() for p in sub.parameters()) == make_arch(space, list(choices)).params()
        checked += 1
    assert checked == 20


def test_their_loader_needs_a_loader_on_pyyaml_6(tmp_path: Any) -> None:
    """Why users patch their loader (docs/formats/ofa.md): PyYAML 6 made ``Loader`` required."""
    path = tmp_path / "lut.yaml"
    path.write_text("Logits-input:7x7x1280-output:1000: {mean: 0.5, count: 10, var: 0.01}\n")
    if int(yaml.__version__.split(".")[0]) < 6:
        pytest.skip("PyYAML < 6 still defaults the loader")
    with pytest.raises(TypeError, match="Loader"):
        lut_module.ProxylessNASLatencyTable(url=str(path))


def test_keys_are_the_ones_their_code_composes() -> None:
    keys = [k for k, _ in layer_keys(get_chain_space("mobilenetv2"), PROXYLESS)]
    assert keys[0] == "Conv-input:224x224x3-output:112x112x32"
    assert keys[1] == "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0"
    assert "expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:7-stride:1-idskip:1" in keys
    assert keys[-2:] == ["Conv_1-input:7x7x320-output:7x7x1280", "Logits-input:7x7x1280-output:1000"]
    mb = [k for k, _ in layer_keys(get_chain_space("ofa-mbv3", "160x160"), MBV3)]
    assert mb[0] == "Conv-input:160x160x3-output:80x80x16"
    assert "expanded_conv-input:40x40x24-output:20x20x40-expand:144-kernel:5-stride:2-idskip:0-se:1-hs:0" in mb
    assert "expanded_conv-input:10x10x80-output:10x10x80-expand:240-kernel:3-stride:1-idskip:1-se:0-hs:1" in mb
    assert mb[-4:] == ["Conv_1-input:5x5x160-output:5x5x960", "AvgPool2D-input:5x5x960-output:1x1x960",
                       "Conv_2-input:1x1x960-output:1x1x1280", "Logits-input:1x1x1280-output:1000"]


def test_pooled_variance_is_the_variance_of_all_samples() -> None:
    rng = random.Random(3)
    runs = [[rng.gauss(mu, sd) for _ in range(n)] for mu, sd, n in ((1.0, 0.1, 30), (1.2, 0.05, 12), (0.9, 0.2, 7))]
    st = pooled_stats(1.05, [(statistics.mean(r), statistics.stdev(r), len(r)) for r in runs])
    everything = [x for r in runs for x in r]
    assert st.count == 49 and st.mean_ms == 1.05
    assert st.var == pytest.approx(statistics.variance(everything), rel=1e-12)
    assert pooled_stats(2.0, [(2.0, 0.0, 1)]) == OpStats(2.0, 1, 0.0)


def test_the_table_rows_carry_value_count_and_pooled_variance() -> None:
    space = get_chain_space("mobilenetv2")
    target = export_target([space])
    stats = _stats(target)
    table = latency_table([space], stats, PROXYLESS)
    stem = space.stem[0].spec
    entry = next(e for e in target["entries"] if e["key"] == stem.key)
    row = table["Conv-input:224x224x3-output:112x112x32"]
    assert row["mean"] == entry["value_ms"]
    assert row["count"] == sum(m["stats"]["n"] for m in entry["measurements"])
    assert row["var"] > 0 and row == {"mean": stats[stem.key].mean_ms, "count": stats[stem.key].count,
                                      "var": stats[stem.key].var}
    assert yaml.safe_load(dump_yaml(table)) == table


@pytest.mark.parametrize(
    "name, dialect, words",
    [
        ("fbnet", PROXYLESS,
         ["conv:k3_d1_g1_bn:c3x224x224->c16:s2:relu", "their Conv is a 3x3 stride-2 conv-BN-relu6"]),
        ("tfnas", MBV3, ["their Conv is a 3x3 stride-2 conv-BN-hswish"]),
        ("ofa-mbv3", PROXYLESS, ["their Conv is a 3x3 stride-2 conv-BN-relu6"]),
        ("mobilenetv2", MBV3, ["hswish"]),
        ("squeezenas-small", PROXYLESS, ["decoder"]),
    ],
)
def test_a_space_that_does_not_map_is_refused_naming_the_op(name: str, dialect: Dialect, words: List[str]) -> None:
    with pytest.raises(FormatError) as e:
        layer_keys(get_chain_space(name), dialect)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize(
    "block, dialect, act, words",
    [
        ({"kernel": 3, "dilation": 2, "expansion": 3}, PROXYLESS, "relu6",
         "ir:k3_d2_e3_g1:c16x32x32->c16:s1:relu6 .*dilation"),
        ({"kernel": 3, "expansion": 1}, PROXYLESS, "relu6",
         "ir:k3_d1_e1_g1:c16x32x32.*expansion 1 has no expansion conv"),
        ({"kernel": 3, "expansion": 2.5}, PROXYLESS, "relu6", "e2.5.*expansion ratio as an integer"),
        ({"kernel": 5, "expansion": 3.25}, MBV3, "hswish", "e3.25.*multiple of 8.*not 52"),
        ({"kernel": 5, "expansion": 3, "se": 1}, MBV3, "hswish", "_se1:.*their SE is se=0.25"),
    ],
)
def test_a_block_that_does_not_map_is_named(block: Dict[str, Any], dialect: Dialect, act: str, words: str) -> None:
    from lutcore.spaces import space_from_dict

    head = [{"op": "conv", "c_out": 64, "kernel": 1, "act": act}, {"op": "pool_fc", "classes": 10}]
    if dialect is MBV3:
        head[1:1] = [{"op": "gap"}, {"op": "conv", "c_out": 64, "kernel": 1, "bn": False, "act": "hswish"}]
    sdef = space_from_dict({
        "name": "one-block", "input": [3, 64, 64], "catalogue": {"candidates": [dict(name="b", **block)]},
        "stem": [{"op": "conv", "c_out": 16, "kernel": 3, "stride": 2, "act": act}],
        "layers": [{"c_out": 16, "act": act}], "head": head,
    })
    with pytest.raises(FormatError, match=words):
        layer_keys(sdef.at(), dialect)


def test_missing_measurements_are_refused_with_the_ops_named() -> None:
    space = get_chain_space("mobilenetv2")
    stats = _stats(export_target([space]))
    gone = space.head[1].spec.key
    del stats[gone]
    with pytest.raises(FormatError, match=r"1 op\(s\) of mobilenetv2 have no measured value.*pool_fc"):
        latency_table([space], stats, PROXYLESS)


def test_ofa_mbv3_space_is_ofa_s_supernet() -> None:
    """Depth 2-4 per stage (skip only at a stage's 3rd/4th layer), SE where OFA has it, h-swish late."""
    space = get_chain_space("ofa-mbv3")
    skip = space.candidates.index("skip")
    assert [not isinstance(row[skip], OpSpec) for row in space.grid] == [True, True, False, False] * 5
    se_stages = [bool(ir(space.grid[4 * s][0]).se) for s in range(5)]
    assert se_stages == [False, True, False, True, True]
    acts = [ir(space.grid[4 * s][0]).act for s in range(5)]
    assert acts == ["relu", "relu", "hswish", "hswish", "hswish"]
    blk = ir(space.cell(4, "k5_e3"))  # 24 -> 40, mid 72: OFA's SE width make_divisible(72 // 4, 8) = 24
    assert blk.se_hidden == 24 and blk.hidden == 72


def test_lut_export_writes_the_table_their_code_reads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lut import` a nas-lut/1 document of mobilenetv2's ops, `lut export --format proxyless-yaml`, their table."""
    pytest.importorskip("sqlalchemy")
    space = get_chain_space("mobilenetv2", "192x192")
    target, db = imported_db(tmp_path, [space])
    out = tmp_path / "lut.yaml"
    r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "proxyless-yaml", "-r", "192",
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    table = _their_table(lut_module.ProxylessNASLatencyTable, str(out), monkeypatch)
    net = CASES["proxyless"][3]()
    choices = random_arch(space, 5)
    ks, es, ds = _ofa_settings(space, choices, 4)
    net.set_active_subnet(ks=ks, e=es, d=ds)
    theirs = table.predict_network_latency_given_config(net.get_active_net_config(), 192)
    assert theirs == pytest.approx(_our_sum(space, choices, _stats(target)), rel=1e-9)

    r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "ofa-mbv3-yaml")
    assert r.returncode == 1 and b"have no measured value" in r.stderr and b"Traceback" not in r.stderr, r.stderr
    r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "proxyless-yaml", "--space", "fbnet")
    assert r.returncode == 1 and b"has no counterpart" in r.stderr and b"Traceback" not in r.stderr, r.stderr


def test_ofa_sizes_between_multiples_of_32_round_up_like_their_code_and_torch() -> None:
    """OFA samples 128-224 in steps of 4: a classifier space takes them, every stride rounding up."""
    import torch

    from lutcore.spaces import get_arch
    from lutcore.torch.network import build_network, network_input

    arch = get_arch("ofa-mbv3:random:3", "132x132")
    assert [s.h for _, s in arch.all_ops()][:2] == [132, 66]
    feature = next(s for n, s in arch.all_ops() if s.family == "gap")
    assert (feature.h, feature.w) == (5, 5)  # 132 -> 66 -> 33 -> 17 -> 9 -> 5, as (f - 1) // 2 + 1
    net = build_network(arch)
    with torch.no_grad():
        assert tuple(net(network_input(arch)).shape) == (1, 1000)
    with pytest.raises(SpaceError, match="divisible by 16"):  # a decoder still needs aligned sizes
        get_space("squeezenas-small", "100x200")


def test_layer_fields_and_min_depth_are_validated_with_paths() -> None:
    from lutcore.ops import InvertedResidual
    from lutcore.spaces import space_from_dict

    base = {"name": "s", "input": [3, 64, 64], "catalogue": "ofa-mbv3",
            "stem": [{"op": "conv", "c_out": 16, "kernel": 3, "stride": 2, "act": "hswish"}]}
    for layer, where in (({"c_out": 24, "repeat": 2, "min_depth": 3}, "layers[0].min_depth"),
                         ({"c_out": 24, "fields": {"sse": 1}}, "layers[0].fields.sse"),
                         ({"c_out": 24, "fields": [1]}, "layers[0].fields")):
        with pytest.raises(SpaceError) as e:
            space_from_dict(dict(base, layers=[layer]))
        assert e.value.path == where
    sp = space_from_dict(dict(base, layers=[{"c_out": 16, "repeat": 3, "min_depth": 1,
                                            "fields": {"se": 0.25, "se_style": "mbv3"}}])).at()
    assert [isinstance(row[-1], OpSpec) for row in sp.grid] == [False, True, True]  # skip from the 2nd on
    assert all(ir(c).se_style == "mbv3" for row in sp.grid for c in row[:-1])
    with pytest.raises(SpecError, match="se_style"):
        InvertedResidual(c_in=16, h=8, w=8, c_out=16, se_style="mbv3")  # no SE to style


def test_existing_ir_specs_keep_their_dict_and_key() -> None:
    """``se_style`` is new: a default-style spec's dict (what agents send) and key are what they were."""
    from lutcore.ops import InvertedResidual, spec_from_dict

    old = InvertedResidual(c_in=40, h=28, w=28, c_out=40, kernel=5, expansion=3, se=1, act="swish")
    assert "se_style" not in old.to_dict() and old.key == "ir:k5_d1_e3_g1_se1:c40x28x28->c40:s1:swish"
    new = old.replace(se=0.25, se_style="mbv3", act="relu")
    assert new.key == "ir:k5_d1_e3_g1_se0.25mbv3:c40x28x28->c40:s1:relu" and new.se_hidden == 32
    assert spec_from_dict(new.to_dict()) == new and spec_from_dict(old.to_dict()) == old


@pytest.mark.parametrize("field, value", [("se", 1e308), ("se", float("nan")), ("expansion", 1e308)])
def test_ratios_that_would_overflow_a_width_are_a_spec_error(field: str, value: float) -> None:
    """A layer's ``fields`` (and a catalogue's) reach these: a clear SpecError, not an OverflowError."""
    from lutcore.ops import InvertedResidual

    with pytest.raises(SpecError, match=f"{field}.*at most 1024"):
        kwargs: Dict[str, Any] = {field: value}
        InvertedResidual(c_in=16, h=8, w=8, c_out=16, **kwargs)
