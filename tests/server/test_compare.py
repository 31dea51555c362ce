"""An old (imported) LUT against fresh measurements of another target: lut_server.compare's figures, and
GET /compare, `lut status --compare` and `lut report --compare` on a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import httpx
import pytest
import yaml

from lut_server import report, report_data
from lut_server.compare import figures
from lutcore.cli.main import main
from lutcore.formats import legacy, ofa
from lutcore.lutdoc import TargetLut
from lutcore.spaces import get_chain_space
from tests.core.lut_targets import export_target
from tests.live_server import LiveServer

OLD = "old-phone/onnxruntime/fp32"
NEW = "new-phone/onnxruntime/fp32"


def test_figures_of_two_maps_whose_values_are_set() -> None:
    keys = [f"op{i:02d}" for i in range(20)]
    old = {k: 0.5 + i for i, k in enumerate(keys)}
    factor = [0.5] + [1.0] * 9 + [1.05] * 3 + [1.25] * 7  # op00 2x faster, op13..op19 25% slower
    new = {k: old[k] * f for k, f in zip(keys, factor)}
    old.update({"gone-a": 1.0, "gone-b": 2.0, "zero": 0.0})
    new.update({"fresh": 3.0, "zero": 0.0})
    f = figures(old, new, worst=3)
    assert f["common"] == 20 and f["not_positive"] == 1
    assert f["median_ratio"] == pytest.approx((1.0 + 1.05) / 2)  # 10th and 11th of the sorted ratios
    assert f["median_abs_diff"] == pytest.approx(0.05)
    assert f["within_10pct"] == pytest.approx(12 / 20)
    assert [w["key"] for w in f["worst"]] == ["op00", "op13", "op14"]  # 2x faster ranks above 1.25x slower
    assert f["worst"][0] == {"key": "op00", "old_ms": 0.5, "new_ms": 0.25, "ratio": 0.5}
    assert (f["only_old"], f["only_old_examples"], f["only_new"], f["only_new_examples"]) == (
        2, ["gone-a", "gone-b"], 1, ["fresh"])
    empty = figures({"a": 1.0}, {"b": 1.0})
    assert empty["common"] == 0 and empty["median_ratio"] is None and empty["worst"] == []


def _table(size: int) -> Dict[str, Dict[str, Any]]:
    space = get_chain_space("ofa-mbv3", f"{size}x{size}")
    stats = ofa.stats_from_lut(TargetLut.model_validate(export_target([space])))
    return yaml.safe_load(ofa.dump_yaml(ofa.latency_table([space], stats, ofa.MBV3)))


SLOW = "-kernel:7-stride:1-idskip:1-se:1-"  # the subset measured 25% slower now; the rest 2% faster


def _populate(live: LiveServer) -> Tuple[int, List[str]]:
    """OLD: OFA's MBv3 table at 160 (imported as `lut import` does); NEW: the same ops, SLOW ones 1.25x and
    the rest 0.98x, without Logits, plus one op of the 224 table. (ops in both, our keys of the SLOW ones)"""
    old = _table(160)
    new = {k: dict(row, mean=row["mean"] * (1.25 if SLOW in k else 0.98)) for k, row in old.items()}
    del new["Logits-input:1x1x1280-output:1000"]
    extra = "Conv-input:224x224x3-output:112x112x16"
    new[extra] = _table(224)[extra]
    slow = []
    for tid, table in ((OLD, old), (NEW, new)):
        doc, left = legacy.document("ofa-mbv3-yaml", yaml.safe_dump(table).encode(), tid)
        assert left == {}
        r = httpx.post(live.api + "/import", json=doc, headers=live.headers(), timeout=60)
        assert r.status_code == 200, r.text
    ours = {key: spec.key for key, spec in ofa.layer_keys(get_chain_space("ofa-mbv3", "160x160"), ofa.MBV3)}
    slow = sorted({ours[k] for k in old if SLOW in k})
    return len(old) - 1, slow


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_compare_over_http_status_and_report(backend: str, start_server: Callable[..., LiveServer],
                                             request: pytest.FixtureRequest, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def lut(*args: str) -> Tuple[int, str, str]:
        """The `lut` CLI in this process (a subprocess would cost seconds per call to start)."""
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    live = start_server(request.getfixturevalue("pg_db_url") if backend == "postgres" else None)
    common, slow = _populate(live)
    assert 0 < len(slow) < common / 2
    q = {"old": OLD, "new": NEW, "space": "ofa-mbv3", "resolution": "160x160", "worst": "5"}
    r = httpx.get(live.api + "/compare", params=q, timeout=60)
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["space"], c["resolution"], c["space_ops"], c["common"]) == ("ofa-mbv3", "160x160", common + 1, common)
    assert c["median_ratio"] == pytest.approx(0.98) and c["median_abs_diff"] == pytest.approx(0.02)
    assert c["within_10pct"] == pytest.approx((common - len(slow)) / common)
    assert [w["key"] for w in c["worst"]] == slow[:5] and all(w["ratio"] == pytest.approx(1.25) for w in c["worst"])
    assert (c["only_old"], c["only_new"]) == (1, 0) and c["only_old_examples"][0].startswith("pool_fc:")
    every = httpx.get(live.api + "/compare", params={"old": OLD, "new": NEW}, timeout=60).json()
    assert every["space"] is None and every["common"] == common and every["only_new"] == 1
    assert every["only_new_examples"] == ["conv:k3_d1_g1_bn:c3x224x224->c16:s2:hswish"]
    bad = httpx.get(live.api + "/compare", params={"old": "nobody/tensorrt/fp16", "new": NEW}, timeout=60)
    assert bad.status_code == 404 and "unknown target 'nobody/tensorrt/fp16'" in bad.text
    assert httpx.get(live.api + "/compare", params={**q, "worst": "0"}, timeout=60).status_code == 422

    # the CLI: over REST and on the database, the same document; and as text
    cli = ["status", "--compare", OLD, "--against", NEW, "--space", "ofa-mbv3", "--resolution", "160x160",
           "--worst", "5"]
    for where in (["--server", live.url], ["--db", live.db_url]):
        code, out, err = lut(*cli, *where, "--json")
        assert code == 0 and json.loads(out) == c, err
    code, text, err = lut(*cli, "--server", live.url)
    assert code == 0, err
    assert f"{common} op(s) in both" in text and "median new/old 0.980, median |difference| 2.0%" in text
    assert f"within +-10%: {100 * (common - len(slow)) / common:.1f}%" in text and slow[0] in text
    assert f"only in old ({OLD}): 1 op(s), e.g. pool_fc:" in text
    code, _, err = lut("status", "--compare", OLD, "--db", live.db_url)
    assert code == 1 and "--compare OLD_TARGET and --against NEW_TARGET go together" in err
    code, _, err = lut("status", "--compare", "nobody/tensorrt/fp16", "--against", NEW, "--server", live.url)
    assert code == 1 and "unknown target 'nobody/tensorrt/fp16'" in err

    # the report's section: `lut report` over REST on one backend (plots and all); gathered from the
    # database on the other, the page without plots (drawing them costs seconds and is not what is tested)
    if backend == "sqlite":
        pytest.importorskip("matplotlib")
        page = tmp_path / "report.html"
        code, _, err = lut("report", "--server", live.url, "--target", NEW, "--space", "ofa-mbv3", "--resolution",
                           "160x160", "--compare", OLD, "-o", str(page))
        assert code == 0, err
        html = page.read_text()
    else:
        data = report_data.from_db(live.db_url, NEW, "ofa-mbv3", "160x160", OLD)
        got = data["comparison"]
        assert got["worst"][:5] == c["worst"] and dict(got, worst=None) == dict(c, worst=None)
        html = report.render_html(data, {name: (None, "not drawn") for name in report.PLOTS})
    section = html[html.index('<section id="comparison">'):]
    section = section[:section.index("</section>")]
    assert f"<td>{common}</td><td>0.980</td><td>2.0%</td>" in section and slow[0].replace(">", "&gt;") in section
