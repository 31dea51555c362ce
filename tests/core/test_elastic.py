"""The width-elastic space ``tfnas-elastic``: mid widths in op keys, its enumeration against one computed
from TF-NAS's own stage table, and its TF-NAS pickle read by TF-NAS's lookup at our widths.

(MACs and params against torch: ``test_torch.py``, a seeded sample of this space's ops.)"""

from __future__ import annotations

import json
import math
import pickle
import random
from collections import OrderedDict
from typing import Any, Dict, Set, Tuple

import pytest

from lutcore.errors import SpecError
from lutcore.formats import tfnas
from lutcore.ops import InvertedResidual, OpSpec
from lutcore.ops.registry import spec_from_dict
from lutcore.spaces import get_chain_space, make_arch, random_arch
from tests.core.lut_targets import TARGET, export_target
from tests.core.test_formats_tfnas import (
    OUR_DEPTHS,
    PRIMITIVES,
    SE_MULT,
    _at_our_depths,
    _values,
    get_lookup_latency,
    their_dicts,
)

# TF-NAS's elastic range (train_search.py bound_clip: half to all of the mask, 4x / 8x c_in), 5 levels
LEVELS = {"e3": (2, 2.5, 3, 3.5, 4), "e6": (4, 5, 6, 7, 8)}


def nearest8(v: float) -> int:
    return 8 * math.floor(v / 8 + 0.5)


def expected_blocks(resolution: int) -> Set[Tuple[int, int, int, int, int, str, int, int, int]]:
    """(c_in, size, c_out, stride, kernel, act, mid, SE channels, out size) of every block, from TF-NAS's
    stage table at our depths: computed without the catalogue or the spec."""
    out = set()
    size = (resolution + 1) // 2  # after the stem conv (stride 2) and the stem block
    for ics, ocs, ss, acts in _at_our_depths():
        for ic, oc, st, act in zip(ics, ocs, ss, acts):
            after = (size + st - 1) // st
            for p in PRIMITIVES:
                e = "e6" if "_e6" in p else "e3"
                for t in LEVELS[e]:
                    out.add((ic, size, oc, st, int(p[5]), act, nearest8(ic * t), ic * SE_MULT[p], after))
            size = after
    return out


@pytest.mark.parametrize("resolution", [224, 96])
def test_unique_ops_are_the_blocks_computed_from_tfnas_stages(resolution: int) -> None:
    space = get_chain_space("tfnas-elastic", f"{resolution}x{resolution}")
    blocks = [s for s in space.unique_ops().values() if s.key not in {f.spec.key for f in space.fixed}]
    assert all(isinstance(s, InvertedResidual) for s in blocks)
    got = {(s.c_in, s.h, s.c_out, s.stride, s.kernel, s.act, s.hidden, s.se_hidden if s.se else 0, s.out_hw[0])
           for s in blocks if isinstance(s, InvertedResidual)}
    assert len(got) == len(blocks)  # one key per distinct block
    assert got == expected_blocks(resolution)
    assert len(space.unique_ops()) == len(expected_blocks(resolution)) + 4  # + stem conv, stem block, head x2
    assert len(space.candidates) == 40 and not any(any(r) for r in space.mask())


def test_the_starting_widths_are_the_tfnas_blocks_with_the_same_keys() -> None:
    elastic, fixed = get_chain_space("tfnas-elastic"), get_chain_space("tfnas")
    for i in range(fixed.num_layers):
        for name in fixed.candidates:
            start = "x3" if "_e3" in name else "x6"
            assert elastic.cell(i, f"{name}_{start}") == fixed.cell(i, name)
    assert set(fixed.unique_ops()) <= set(elastic.unique_ops())


def test_mid_is_in_the_key_and_one_op_has_one_key() -> None:
    base: Dict[str, Any] = dict(c_in=24, h=14, w=14, c_out=40, stride=2, kernel=5, act="swish")
    odd = InvertedResidual(**base, mid=88, se=1)
    assert odd.key == "ir:k5_d1_m88_g1_se1:c24x14x14->c40:s2:swish" and odd.hidden == 88
    assert InvertedResidual(**base, mid=72) == InvertedResidual(**base, expansion=3)  # a whole multiple
    assert InvertedResidual(**base, mid=72).key == InvertedResidual(**base, expansion=3).key
    assert "mid" not in InvertedResidual(**base, expansion=3).to_dict()  # older servers' dicts unchanged
    for bad, field in (({"mid": 88, "expansion": 2}, "mid"), ({"mid": -8}, "mid"), ({"mid": True}, "mid"),
                       ({"mid": 8.5}, "mid")):
        with pytest.raises(SpecError) as e:
            InvertedResidual(**base, **bad)
        assert e.value.field == field, bad


def test_every_op_round_trips_through_its_dict() -> None:
    space = get_chain_space("tfnas-elastic", "96x96")
    widths = set()
    for key, spec in space.unique_ops().items():
        back = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
        assert back == spec and back.key == key
        if isinstance(spec, InvertedResidual):
            widths.add(spec.mid > 0)
    assert widths == {True, False}  # both m<channels> and e<ratio> keys occur


def _mid_of(spec: OpSpec) -> int:
    assert isinstance(spec, InvertedResidual)
    return spec.hidden


@pytest.mark.parametrize("resolution", [224, 160])
def test_their_lookup_at_our_widths_sums_to_our_lut_sum(resolution: int) -> None:
    """TF-NAS's get_lookup_latency with mc_num_dddict set to each block's width (what its elasticity
    phase writes there) over our pickle equals our LUT sum of the same architecture."""
    space = get_chain_space("tfnas-elastic", f"{resolution}x{resolution}")
    values = _values(export_target([space]))
    lat_lookup = pickle.loads(tfnas.dump_pickle(tfnas.latency_table(space, values)))
    keys, _ = their_dicts(resolution, _at_our_depths())
    for seed in range(10):
        arch = make_arch(space, list(random_arch(space, seed)))
        parsed: Any = OrderedDict()
        mcs: Any = OrderedDict()
        it = iter(zip(arch.choices, arch.layer_ops()))
        for s, n in enumerate(OUR_DEPTHS, start=1):
            parsed[f"stage{s}"], mcs[f"stage{s}"] = OrderedDict(), OrderedDict()
            for b in range(1, n + 1):
                choice, spec = next(it)
                op_idx = PRIMITIVES.index("MBI_" + choice.rsplit("_x", 1)[0])
                parsed[f"stage{s}"][f"block{b}"] = op_idx
                mcs[f"stage{s}"][f"block{b}"] = {op_idx: _mid_of(spec)}
        theirs = get_lookup_latency(parsed, mcs, keys, lat_lookup)
        ours = math.fsum(values[s.key] for _, s in arch.all_ops())
        assert theirs == pytest.approx(ours, rel=1e-9), arch.choices
    widths = {k: sorted(v) for k, v in lat_lookup.items() if k != "base"}
    assert len(widths) == 66  # the tfnas keys: widths add entries, not keys
    assert {len(v) for k, v in widths.items()} == {5, 9}  # SE-less keys: e3's 4x is e6's 4x


def test_export_then_import_gives_back_every_width() -> None:
    space = get_chain_space("tfnas-elastic", "96x96")
    values = _values(export_target([space]))
    ops, left = tfnas.table_ops(tfnas.load_pickle(tfnas.dump_pickle(tfnas.latency_table(space, values))))
    back = {spec.key: ms for spec, ms in ops}
    blocks = {s.key for _, _, s in tfnas.layer_keys(space)}
    assert set(back) == blocks and all(back[k] == values[k] for k in blocks)
    assert len(blocks) == len(space.unique_ops()) - 4 and list(left.values()) == [["base"]]


def test_the_export_writes_every_width_of_the_space_it_is_given() -> None:
    """What `lut export --format tfnas-pickle --space tfnas-elastic` writes (its CLI path: test_formats_tfnas)."""
    pytest.importorskip("sqlalchemy")
    from lut_server.exchange import render

    space = get_chain_space("tfnas-elastic", "96x96")
    target = export_target([space])
    doc = {"schema": "nas-lut/1", "targets": [{**{k: v for k, v in target.items() if k != "id"}, "target": TARGET}]}
    table = pickle.loads(render(doc, "tfnas-pickle", "tfnas-elastic", ["96x96"]))
    values = _values(target)
    for key, mid, spec in random.Random(3).sample(tfnas.layer_keys(space), 20):
        assert table[key][mid] == values[spec.key]
    assert sum(len(v) for k, v in table.items() if k != "base") == len(space.unique_ops()) - 4
    fixed = pickle.loads(render(doc, "tfnas-pickle", None, ["96x96"]))  # the default space is still tfnas
    assert {len(v) for k, v in fixed.items() if k != "base"} == {1, 2}  # 3x / 6x c_in; both where no SE
