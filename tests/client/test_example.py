"""examples/search_step.py runs offline (MACs, and a LUT file) and the expected cost falls."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from lutcore.spaces import space_from_dict
from tests.client.lutdata import TINY, export_doc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "search_step.py"


def _run(capsys, *args: str) -> list:
    spec = importlib.util.spec_from_file_location("search_step", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--steps", "3", "--batch", "1", *args]) == 0
    out = capsys.readouterr().out
    return [float(x) for x in re.findall(r"expected cost ([0-9.]+)", out)]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_example_with_macs_and_with_a_lut_file(capsys, tmp_path):
    space_file = tmp_path / "tiny.json"  # a small user space keeps the supernet small
    space_file.write_text(json.dumps(TINY))
    costs = _run(capsys, "--space", str(space_file), "--resolution", "32x32")  # on MACs: no LUT, no server
    assert len(costs) == 3 and costs[0] > costs[1] > costs[2]
    lut = tmp_path / "lut.json"
    lut.write_text(json.dumps(export_doc(space_from_dict(TINY).at(None))))
    costs = _run(capsys, "--space", str(space_file), "--resolution", "32x32", "--lut", str(lut))
    assert len(costs) == 3 and costs[0] > costs[1] > costs[2]
