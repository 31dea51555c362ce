"""``profiler-agent validate`` on cell spaces: the same command, the deployed cell networks."""

from __future__ import annotations

import json
from typing import cast

import pytest

from lutcore.spaces import get_arch
from lutcore.spaces.cells import CellArch
from profiler_agent.validate import LutValues
from tests.agent.test_validate import FAST, agent


def test_prediction_sums_the_kept_cells_only():
    arch = get_arch("autortnet:random:3", "64x128")
    # get_arch is typed Arch, but gives a cell space's architectures as CellArch
    cell_arch = cast(CellArch, arch)
    assert isinstance(cell_arch, CellArch)
    lut = LutValues({s.key: 1.0 for s in arch.space.unique_ops().values()}, "t")
    assert lut.prediction(arch) == pytest.approx(len(arch.all_ops()))
    assert len(cell_arch.kept_cells()) == sum(cell_arch.depths) < len(cell_arch.space.cells)


@pytest.mark.slow
def test_validate_a_cell_space_offline():
    r = agent("validate", "--space", "darts-cifar10", "--archs", "published,random:3", "--measure-lut",
              "--json", "-q", *FAST)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    archs, summary = lines[:-1], lines[-1]
    assert [a["arch"] for a in archs][0] == "darts-v2-cifar10" and len(archs) == 4
    for a in archs:
        assert a["predicted_ms"] > 0 and a["measured_ms"] > 0
        assert a["n_ops"] == len(get_arch(a["arch"]).all_ops())
    assert summary["raw"]["n"] == 4


def test_profile_times_every_op_family_of_a_cell_space(tmp_path):
    """The agent measures a cell space's unique ops as any space's: sep/dil convs, pools, preprocessing, glue."""
    from lutcore.spaces import get_space
    from profiler_agent import cli
    from profiler_agent.offline import read_run
    from tests.agent.agent_helpers import FAST as PROFILE_FAST

    out = tmp_path / "darts.jsonl"
    argv = ["profile", "--space", "darts-cifar10", "--resolution", "16x16", "-o", str(out), "--device", "cpu-test",
            "--threads", "1", "-q", *PROFILE_FAST]
    assert cli.main(argv) == cli.EXIT_OK
    header, items = read_run(out)
    keys = {m["op"]["key"] for m in items}
    assert keys == set(get_space("darts-cifar10", "16x16").unique_ops())
    assert {k.split(":")[0] for k in keys} == {"conv", "skip", "pool", "sep_conv", "dil_conv", "pool_fc", "add",
                                               "concat"}  # a cell's glue: node sums and its concat
    assert all(m["stats"]["median_ms"] > 0 for m in items)
