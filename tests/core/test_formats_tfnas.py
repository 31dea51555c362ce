"""TF-NAS latency pickle, proven with TF-NAS's own lookup (AberHu/TF-NAS is not a package: its lines are
ported here verbatim, from commit 08b31a2e6dc2386ae72890369847c2206745006a).

Their search network's layers (``models/model_search.py``, ``Network.__init__``), their key
composition (``MixedOP.get_lookup_latency``), the candidates' SE and mid widths (``PRIMITIVES``/``OPS``
there, ``mc_mask_dddict`` in ``tools/config.py``) and their sum (``get_lookup_latency`` in
``train_search.py``) read our pickle; the sum must equal our LUT sum of the same architecture.
"""

from __future__ import annotations

import collections
import math
import pickle
import pickletools
import random
from collections import OrderedDict
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from lutcore.errors import FormatError
from lutcore.formats import tfnas
from lutcore.lutdoc import TargetLut
from lutcore.ops import OpSpec
from lutcore.spaces import get_chain_space, make_arch, random_arch
from lutcore.spaces.space import Space
from tests.core.lut_targets import export_target, imported_db, lut

# -- ported from TF-NAS (commit 08b31a2e) -----------------------------------------------------------
# models/model_search.py: PRIMITIVES; OPS gives the SE channels (0, ic, or ic*2 for the e6 SE ops)
PRIMITIVES = ["MBI_k3_e3", "MBI_k3_e6", "MBI_k5_e3", "MBI_k5_e6",
              "MBI_k3_e3_se", "MBI_k3_e6_se", "MBI_k5_e3_se", "MBI_k5_e6_se"]
SE_MULT = {"MBI_k3_e3": 0, "MBI_k3_e6": 0, "MBI_k5_e3": 0, "MBI_k5_e6": 0,
           "MBI_k3_e3_se": 1, "MBI_k3_e6_se": 2, "MBI_k5_e3_se": 1, "MBI_k5_e6_se": 2}
# models/model_search.py, Network.__init__: (ics, ocs, ss, acts) per stage
STAGES = [
    ([16, 24], [24, 24], [2, 1], ["relu", "relu"]),
    ([24, 40, 40], [40, 40, 40], [2, 1, 1], ["swish"] * 3),
    ([40, 80, 80, 80], [80, 80, 80, 80], [2, 1, 1, 1], ["swish"] * 4),
    ([80, 112, 112, 112], [112, 112, 112, 112], [1, 1, 1, 1], ["swish"] * 4),
    ([112, 192, 192, 192], [192, 192, 192, 192], [2, 1, 1, 1], ["swish"] * 4),
    ([192], [320], [1], ["swish"]),
]


def their_key(name: str, size: int, in_channels: int, se_channels: int, out_channels: int, kernel_size: int,
              stride: int, act_func: str) -> str:
    """MixedOP.get_lookup_latency's key, with op's attributes as arguments."""
    return '{}_{}_{}_{}_{}_k{}_s{}_{}'.format(  # noqa: UP032 (their line)
        name, size, in_channels, se_channels, out_channels, kernel_size, stride, act_func)


def get_lookup_latency(parsed_arch: Any, mc_num_dddict: Any, lat_lookup_key_dddict: Any, lat_lookup: Any) -> float:
    """train_search.py, verbatim."""
    lat = lat_lookup['base']

    for stage in parsed_arch:
        for block in parsed_arch[stage]:
            op_idx = parsed_arch[stage][block]
            mid_channels_key = mc_num_dddict[stage][block][op_idx]
            lat_lookup_key = lat_lookup_key_dddict[stage][block][op_idx]
            lat += lat_lookup[lat_lookup_key][mid_channels_key]

    return lat


def their_dicts(resolution: int, stages: Sequence[Any] = STAGES) -> Tuple[Any, Any]:
    """``lat_lookup_key_dddict`` and the full-width ``mc_num_dddict`` (mask sums: 3x / 6x c_in) of their
    search network at a resolution (tools/config.py holds them for 224)."""
    keys: Any = OrderedDict()
    mcs: Any = OrderedDict()
    size = (resolution + 1) // 2  # after the two stem layers: a stride-2 conv, then stride 1
    for s, (ics, ocs, ss, acts) in enumerate(stages, start=1):
        keys[f"stage{s}"], mcs[f"stage{s}"] = OrderedDict(), OrderedDict()
        for b, (ic, oc, st, act) in enumerate(zip(ics, ocs, ss, acts), start=1):
            keys[f"stage{s}"][f"block{b}"] = OrderedDict(
                (i, their_key("MBInvertedResBlock", size, ic, ic * SE_MULT[p], oc, int(p[5]), st, act))
                for i, p in enumerate(PRIMITIVES))
            mcs[f"stage{s}"][f"block{b}"] = OrderedDict(
                (i, ic * (6 if "_e6" in p else 3)) for i, p in enumerate(PRIMITIVES))
            size = (size + st - 1) // st
    return keys, mcs


# -- ours ------------------------------------------------------------------------------------------------
def _values(target: Dict[str, Any]) -> Dict[str, float]:
    out = {}
    for e in TargetLut.model_validate(target).entries:
        v = e.value()
        assert v is not None
        out[e.key] = v
    return out


def _random_their_arch(rng: random.Random) -> Any:
    """A parsed_arch (parsing_model.parse_architecture's shape): op index per kept block, depth >= 1."""
    arch: Any = OrderedDict()
    for s, (ics, *_rest) in enumerate(STAGES, start=1):
        depth = rng.randint(1, len(ics))
        arch[f"stage{s}"] = OrderedDict((f"block{b}", rng.randrange(len(PRIMITIVES))) for b in range(1, depth + 1))
    return arch


OUR_DEPTHS = [4, 4, 4, 4, 4, 1]  # our tfnas space's layers per stage (TF-NAS: 2, 3, 4, 4, 4, 1, searched)


def _at_our_depths() -> List[Any]:
    """Their stages with each stage's last block repeated to our depths (same shapes, so same keys)."""
    out = []
    for (ics, ocs, ss, acts), n in zip(STAGES, OUR_DEPTHS):
        more = n - len(ics)
        out.append((ics + [ocs[-1]] * more, ocs + [ocs[-1]] * more, ss + [1] * more, acts + [acts[-1]] * more))
    return out


def _our_sum_of_theirs(space: Space, values: Dict[str, float], parsed: Any) -> float:
    """Our LUT sum of their architecture: base's ops and, per kept block, our op in that stage's layer."""
    def layer(stage: str, block: str) -> int:
        return sum(OUR_DEPTHS[:int(stage[5:]) - 1]) + int(block[5:]) - 1

    cells = [space.cell(layer(st, b), PRIMITIVES[i][4:]) for st, bs in parsed.items() for b, i in bs.items()]
    blocks = [c for c in cells if isinstance(c, OpSpec)]
    assert len(blocks) == len(cells)  # no Invalid: every candidate is valid where their blocks sit
    return math.fsum(values[s.key] for s in tfnas.base_ops(space) + blocks)


@pytest.mark.parametrize("resolution", [224, 192])
def test_their_lookup_sums_our_pickle_to_our_lut_sum(resolution: int) -> None:
    space = get_chain_space("tfnas", f"{resolution}x{resolution}")
    assert sum(OUR_DEPTHS) == len(space.grid)
    values = _values(export_target([space]))
    data = tfnas.dump_pickle(tfnas.latency_table(space, values))
    lat_lookup = pickle.loads(data)  # as train_search.py loads --lookup_path
    rng = random.Random(resolution)
    # their search network's architectures (depth searched): their sum is base + our blocks' values
    keys, mcs = their_dicts(resolution)
    for _ in range(20):
        parsed = _random_their_arch(rng)
        theirs = get_lookup_latency(parsed, mcs, keys, lat_lookup)
        ours = _our_sum_of_theirs(space, values, parsed)
        assert theirs == pytest.approx(ours, rel=1e-9), parsed
    # our space's architectures (4 blocks in every stage), their keys composed for that network: our LUT sum
    keys4, mcs4 = their_dicts(resolution, _at_our_depths())
    for seed in range(20):
        choices = random_arch(space, seed)
        it = iter(choices)
        parsed = OrderedDict((f"stage{s}", OrderedDict((f"block{b}", PRIMITIVES.index("MBI_" + next(it)))
                                                        for b in range(1, n + 1)))
                             for s, n in enumerate(OUR_DEPTHS, start=1))
        theirs = get_lookup_latency(parsed, mcs4, keys4, lat_lookup)
        ours = math.fsum(values[s.key] for _, s in make_arch(space, list(choices)).all_ops())
        assert theirs == pytest.approx(ours, rel=1e-9), choices
    # every key and width either network can query is in the table, and nothing else is
    queried = {(k, mcs4[s][b][i]) for s in keys4 for b in keys4[s] for i, k in keys4[s][b].items()}
    assert queried >= {(k, mcs[s][b][i]) for s in keys for b in keys[s] for i, k in keys[s][b].items()}
    written = {(k, mid) for k, widths in lat_lookup.items() if k != "base" for mid in widths}
    assert queried == written


def test_our_key_composition_gives_their_literal_keys() -> None:
    """Keys copied from tools/config.py's lat_lookup_key_dddict (224)."""
    keys, _ = their_dicts(224)
    assert keys["stage1"]["block1"][5] == "MBInvertedResBlock_112_16_32_24_k3_s2_relu"
    assert keys["stage2"]["block2"][4] == "MBInvertedResBlock_28_40_40_40_k3_s1_swish"
    assert keys["stage6"]["block1"][7] == "MBInvertedResBlock_7_192_384_320_k5_s1_swish"
    table = tfnas.latency_table(get_chain_space("tfnas"), _values(export_target([get_chain_space("tfnas")])))
    assert {"MBInvertedResBlock_112_16_32_24_k3_s2_relu", "MBInvertedResBlock_7_192_384_320_k5_s1_swish"} <= set(table)
    assert len(table) == 67  # base + 66 keys: the key set of TF-NAS's own latency_gpu.pkl / latency_cpu.pkl


def test_base_is_their_fixed_layers_summed() -> None:
    space = get_chain_space("tfnas")
    values = _values(export_target([space]))
    table = tfnas.latency_table(space, values)
    fixed = [s.key for s in tfnas.base_ops(space)]
    assert [k.split(":")[0] for k in fixed] == ["conv", "ir", "conv", "pool_fc"]
    assert table["base"] == pytest.approx(math.fsum(values[k] for k in fixed), rel=1e-12)


def test_the_pickle_holds_plain_dicts_and_numbers_only() -> None:
    space = get_chain_space("tfnas")
    data = tfnas.dump_pickle(tfnas.latency_table(space, _values(export_target([space]))))
    opcodes = {op.name for op, _, _ in pickletools.genops(data)}
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
    table = tfnas.load_pickle(data)
    assert type(table) is dict and all(type(v) is dict for k, v in table.items() if k != "base")
    assert all(type(m) is int and type(ms) is float for k, v in table.items() if k != "base" for m, ms in v.items())


def test_round_trip_gives_back_our_ops_and_values() -> None:
    space = get_chain_space("tfnas")
    values = _values(export_target([space]))
    table = tfnas.load_pickle(tfnas.dump_pickle(tfnas.latency_table(space, values)))
    ops, left = tfnas.table_ops(table)
    back = {spec.key: ms for spec, ms in ops}
    blocks = {s.key for _, _, s in tfnas.layer_keys(space)}
    assert set(back) == blocks and all(back[k] == values[k] for k in blocks)
    assert list(left.values()) == [["base"]]


class _Boom:
    def __reduce__(self) -> Any:
        return (print, ("ran",))


@pytest.mark.parametrize("payload", [
    {"base": 1.0, "x": _Boom()},
    {"base": 1.0, "when": __import__("datetime").date(2020, 1, 1)},
    collections.Counter(a=1),
    {"base": 1.0, "f": math.sqrt},
])
def test_a_pickle_with_any_class_or_callable_is_refused(payload: Any, capsys: pytest.CaptureFixture) -> None:
    data = pickle.dumps(payload, protocol=4)
    with pytest.raises(FormatError, match="refers to"):
        tfnas.load_pickle(data)
    assert "ran" not in capsys.readouterr().out


def test_their_own_ordereddict_pickles_load() -> None:
    """TF-NAS's shipped pickles are OrderedDicts (make_lat_lut_example.py): that one class is allowed."""
    widths = OrderedDict([(72, 0.5), (20, -0.1)])
    src = OrderedDict([("base", 9.3), ("MBInvertedResBlock_56_24_48_24_k3_s1_relu", widths)])
    table = tfnas.load_pickle(pickle.dumps(src, protocol=3))
    assert table == src
    ops, left = tfnas.table_ops(table)
    assert [(s.key, ms) for s, ms in ops] == [("ir:k3_d1_e3_g1_se2:c24x56x56->c24:s1:relu", 0.5)]
    assert sorted(left) == ["base: the sum of the fixed layers, not one op",
                            "mid channels below c_in: their block builds c_in then"]


@pytest.mark.parametrize("data, words", [
    (b"not a pickle", "not a readable pickle"),
    (pickle.dumps(["base"]), "is a dict"),
    (pickle.dumps({"Conv_3x3": {1: 1.0}}), "is not MBInvertedResBlock_"),
    (pickle.dumps({"MBInvertedResBlock_56_24_0_24_k3_s1_relu": {"72": 1.0}}), "must be an int"),
])
def test_a_table_that_is_not_theirs_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        tfnas.table_ops(tfnas.load_pickle(data))


@pytest.mark.parametrize("name, words", [
    ("fbnet", "op ir:k3_d1_e1_g1:c16x112x112->c16:s1:relu .*drops the expansion conv"),
    ("ofa-mbv3", "_se0.25mbv3:.*their SE is sized in channels of c_in"),
    ("squeezenas-small", "decoder"),
])
def test_a_space_that_does_not_map_is_refused_naming_the_op(name: str, words: str) -> None:
    space = get_chain_space(name)
    with pytest.raises(FormatError, match=words):
        tfnas.latency_table(space, {k: 1.0 for k in space.unique_ops()})


def test_fixed_layers_other_than_theirs_are_refused() -> None:
    with pytest.raises(FormatError, match="stem has 2 op\\(s\\) and the head 4"):
        tfnas.base_ops(get_chain_space("ofa-mbv3"))
    with pytest.raises(FormatError, match="stem has 1 op\\(s\\)"):
        tfnas.base_ops(get_chain_space("fbnet"))


def test_missing_values_are_refused_with_the_ops_named() -> None:
    space = get_chain_space("tfnas")
    values = _values(export_target([space]))
    del values[space.head[1].spec.key]
    with pytest.raises(FormatError, match=r"1 op\(s\) of tfnas have no measured value.*pool_fc"):
        tfnas.latency_table(space, values)


def test_lut_export_writes_the_pickle_their_code_reads(tmp_path: Any) -> None:
    """`lut import` a nas-lut/1 document of tfnas's ops at 192, `lut export --format tfnas-pickle`, their sum."""
    pytest.importorskip("sqlalchemy")
    space = get_chain_space("tfnas", "192x192")
    target, db = imported_db(tmp_path, [space])
    r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "tfnas-pickle", "-r", "192")
    assert r.returncode == 0, r.stderr
    lat_lookup = pickle.loads(r.stdout)  # written to stdout as bytes
    keys, mcs = their_dicts(192)
    parsed = _random_their_arch(random.Random(7))
    ours = _our_sum_of_theirs(space, _values(target), parsed)
    assert get_lookup_latency(parsed, mcs, keys, lat_lookup) == pytest.approx(ours, rel=1e-9)

    for args, words in ((["-r", "160,192"], b"holds one resolution"), (["-r", "224"], b"have no measured value"),
                        (["--space", "fbnet"], b"has no counterpart in TF-NAS")):
        r = lut("export", "--db", db, "--target", "xavier/tensorrt/fp16", "--format", "tfnas-pickle", *args)
        assert r.returncode == 1 and words in r.stderr and b"Traceback" not in r.stderr, r.stderr
