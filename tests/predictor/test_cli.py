"""`lut predictor eval`, registered through the lut.commands entry point named in pyproject.toml."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, List

import pytest

from tests.predictor import synthetic

ROOT = Path(__file__).resolve().parents[2]


def _entry_point() -> Callable[..., Any]:
    """The registrar pyproject.toml declares for `predictor` (the installed metadata may predate it)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split('[project.entry-points."lut.commands"]', 1)[1].split("\n[", 1)[0]
    m = re.search(r'^predictor\s*=\s*"([\w.]+):(\w+)"', section, re.M)
    assert m, "pyproject.toml registers no `predictor` lut command"
    return getattr(importlib.import_module(m.group(1)), m.group(2))


def lut(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *argv: str) -> tuple:
    importlib.import_module("lutcore.cli.main")
    main_mod = sys.modules["lutcore.cli.main"]  # the package's `main` attribute is the function, not the module
    monkeypatch.setattr(main_mod, "_plugins", lambda: [_entry_point()])
    code = main_mod.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("lut") / "lut.json"
    p.write_text(json.dumps(synthetic.export_doc(synthetic.entries("squeezenas-small", "128x256"))))
    return p


def test_eval_json_has_the_issue_figures(monkeypatch, capsys, lut_file: Path) -> None:
    code, out, _ = lut(monkeypatch, capsys, "predictor", "eval", "--lut", str(lut_file), "--train-share", "0.5",
                       "--seed", "3", "--learner", "ridge", "--json", "--space", "squeezenas-small", "-r", "128x256",
                       "--archs", "published,random:5")
    assert code == 0
    r = json.loads(out)
    n = len(synthetic.entries("squeezenas-small", "128x256"))
    assert r["n_train"] + r["n_test"] == n and r["n_train"] == round(0.5 * n)
    for k in ("median_abs_error", "within_5pct", "within_10pct", "interval_coverage"):
        assert 0.0 <= r[k] <= 1.0
    assert r["median_abs_error"] < 0.1 and r["target"] == synthetic.TARGET
    assert r["networks"] == 7 and 0.0 <= r["network_within_10pct"] <= 1.0
    assert "network_median_abs_error" in r


def test_eval_table_and_seed_changes_the_split(monkeypatch, capsys, lut_file: Path) -> None:
    args = ["predictor", "eval", "--lut", str(lut_file), "--learner", "ridge", "--json"]
    a = json.loads(lut(monkeypatch, capsys, *args, "--seed", "1")[1])
    b = json.loads(lut(monkeypatch, capsys, *args, "--seed", "2")[1])
    assert a["median_abs_error"] != b["median_abs_error"]
    code, out, _ = lut(monkeypatch, capsys, "predictor", "eval", "--lut", str(lut_file), "--learner", "none")
    assert code == 0 and "within_10pct" in out and "interval_coverage" in out


def _error(monkeypatch, capsys, *argv: str) -> str:
    code, _, err = lut(monkeypatch, capsys, "predictor", "eval", *argv)
    assert code == 1 and err.startswith("lut: error:") and "Traceback" not in err, err
    return err


def test_clear_errors(monkeypatch, capsys, tmp_path: Path, lut_file: Path) -> None:
    assert "cannot read" in _error(monkeypatch, capsys, "--lut", str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in _error(monkeypatch, capsys, "--lut", str(bad))
    bad.write_text(json.dumps({"schema": "other"}))
    assert "nas-lut/1" in _error(monkeypatch, capsys, "--lut", str(bad))
    assert "no target 'x/y/z'" in _error(monkeypatch, capsys, "--lut", str(lut_file), "--target", "x/y/z")
    assert "without --archs" in _error(monkeypatch, capsys, "--lut", str(lut_file), "--space", "squeezenas-small")
    assert "needs --space" in _error(monkeypatch, capsys, "--lut", str(lut_file), "--archs", "random:3")
    assert "needs the space" in _error(monkeypatch, capsys, "--lut", str(lut_file), "--choose", "planner")
    assert "lacks" in _error(monkeypatch, capsys, "--lut", str(lut_file), "--space", "squeezenas-small",
                             "--archs", "published")  # the space's own resolution is not the LUT's
    doc = synthetic.export_doc(synthetic.entries("squeezenas-small", "128x256"))
    doc["targets"][0]["entries"][3]["value_ms"] = -2
    bad.write_text(json.dumps(doc))
    assert "entries[3]" in _error(monkeypatch, capsys, "--lut", str(bad))


def test_planner_choice_from_the_cli(monkeypatch, capsys, lut_file: Path) -> None:
    code, out, _ = lut(monkeypatch, capsys, "predictor", "eval", "--lut", str(lut_file), "--learner", "ridge",
                       "--choose", "planner", "--space", "squeezenas-small", "-r", "128x256", "--archs", "random:5",
                       "--json")
    r = json.loads(out)
    assert code == 0 and r["choose"] == "planner" and r["networks"] == 5
    n = r["n_train"] + r["n_test"]
    assert r["n_train"] == round(0.25 * n)


def test_bad_share_is_a_usage_error(monkeypatch, capsys, lut_file: Path) -> None:
    with pytest.raises(SystemExit) as e:
        lut(monkeypatch, capsys, "predictor", "eval", "--lut", str(lut_file), "--train-share", "1.5")
    assert e.value.code == 2


def test_never_imports_torch(lut_file: Path) -> None:
    code = ("import sys\n"
            "from lut_server.predictor.cli import cmd_eval, register\n"
            "from lut_server.predictor import Predictor\n"
            "from lut_server.predictor.lutfile import read_doc, target_entries\n"
            f"_, es = target_entries(read_doc({str(lut_file)!r}), None)\n"
            "Predictor('extra-trees').fit(es).predict([s for s, _ in es[:3]])\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n")
    argv: List[str] = [sys.executable, "-c", code]
    r = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
