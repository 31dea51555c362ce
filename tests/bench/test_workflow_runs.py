"""The workflow bench's run bookkeeping: which code a run measured, appending runs, the consecutive verdict.

The timing itself is the bench's job (an hour a run); here ``Server`` and ``one`` are replaced so the
control flow around them runs in milliseconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def wf(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_workflow

    class NoServer:
        def __init__(self, workdir: Path) -> None:
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(bench_workflow, "Server", NoServer)
    return bench_workflow


def _scripted(wf: Any, monkeypatch: pytest.MonkeyPatch, medians: List[float]) -> List[str]:
    """``one`` answers the given calibrated medians in turn (max 5%); raises when they run out."""
    seen: List[str] = []

    def one(server: Any, backend: str, threads: int, space: str, res: str, args: Any, workdir: Path) -> Dict[str, Any]:
        if len(seen) == len(medians):
            raise RuntimeError("the agent failed")
        seen.append(space)
        return {"space": space, "cal_median": medians[len(seen) - 1], "cal_max": 0.05}

    monkeypatch.setattr(wf, "one", one)
    return seen


def _runs(path: Path) -> List[Dict[str, Any]]:
    return list(json.loads(path.read_text())["runs"])


def test_consecutive_counts_back_to_a_miss_an_unfinished_run_or_other_code(wf: Any) -> None:
    def run(digest: str, met: bool = True, complete: bool = True) -> Dict[str, Any]:
        return {"code": {"product_digest": digest}, "goal_met": met, "complete": complete}

    assert wf.consecutive_met([run("a")] * 3) == 3
    assert wf.consecutive_met([run("a"), run("a", met=False), run("a"), run("a")]) == 2
    assert wf.consecutive_met([run("b"), run("a"), run("a")]) == 2
    assert wf.consecutive_met([run("a"), run("a", complete=False)]) == 0
    assert wf.consecutive_met([{"goal_met": True}]) == 0  # a run that never recorded its code counts for nothing


def test_append_adds_runs_of_the_same_code_and_settings(wf: Any, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "w.json"
    _scripted(wf, monkeypatch, [0.01] * 9 + [0.01] * 8 + [0.04])
    assert wf.main(["--json", str(out)]) == 0
    assert wf.main(["--json", str(out), "--append"]) == 0
    runs = _runs(out)
    assert [(r["run"], r["goal_met"], r["complete"], len(r["results"])) for r in runs] == [
        (1, True, True, 9), (2, False, True, 9)]
    assert runs[0]["code"] == runs[1]["code"] == wf.code_state()
    assert "consecutive runs of this code meeting the goal in every configuration: 0 (of 2" in capsys.readouterr().out

    before = out.read_text()
    with pytest.raises(SystemExit):
        wf.main(["--json", str(out), "--append", "--fit", "10"])  # other settings: not comparable
    doc = json.loads(before)
    doc["runs"][0]["code"]["product_digest"] = "0" * 16
    out.write_text(json.dumps(doc))
    with pytest.raises(SystemExit):
        wf.main(["--json", str(out), "--append"])  # other product code
    assert "other product code" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        wf.main(["--json", str(tmp_path / "none.json"), "--append"])


def test_an_interrupted_run_keeps_what_it_measured(wf: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    _scripted(wf, monkeypatch, [0.01, 0.02])
    with pytest.raises(RuntimeError):
        wf.main(["--json", str(out)])
    (run,) = _runs(out)
    assert run["complete"] is False and [r["cal_median"] for r in run["results"]] == [0.01, 0.02]
    assert wf.consecutive_met([run]) == 0


def test_code_state_names_the_checkout(wf: Any) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the bench records no commit here")
    state = wf.code_state()
    assert len(state["commit"]) == 40 and len(state["product_digest"]) == 16
    assert state == wf.code_state() and isinstance(state["dirty"], bool)


def test_held_out_architectures_were_not_fitted_on(wf: Any) -> None:
    from argparse import Namespace

    from lutcore.spaces import parse_arch_list

    args = Namespace(seed=5000, fit=20, held=12)
    fitted = set(parse_arch_list(f"random:{args.fit}", "squeezenas-small", args.seed))
    held = set(parse_arch_list(f"random:{args.held}", "squeezenas-small", wf.held_out_seed(args)))
    assert len(fitted) == 20 and len(held) == 12 and not fitted & held


def test_a_file_older_than_a_setting_appends_at_the_value_it_ran_with(wf: Any, monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    _scripted(wf, monkeypatch, [0.01] * 18)
    assert wf.main(["--json", str(out), "--sensitivity", "0.5"]) == 0
    doc = json.loads(out.read_text())
    del doc["args"]["sensitivity"]  # written before the bench passed --speed-sensitivity
    out.write_text(json.dumps(doc))
    with pytest.raises(SystemExit):
        wf.main(["--json", str(out), "--append"])  # the agent's default (auto) is not what it ran with
    assert wf.main(["--json", str(out), "--append", "--sensitivity", "0.5"]) == 0 and len(_runs(out)) == 2
