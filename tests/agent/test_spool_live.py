"""The spool delivering to a real server: nothing lost while it is down, nothing stored twice after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from lutcore.records import Measurement, OpRecord, Target, TimingStats
from lutcore.spaces.definition import space_from_dict
from profiler_agent.api import LutApi
from profiler_agent.daemon import make_batch
from profiler_agent.spool import Spool
from tests.agent.agent_helpers import TINY_SPACE, dead_url, measurement_counts, tiny_keys

TARGET = Target(device="cpu-test", backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})


def _batch(run_id: str) -> Dict[str, Any]:
    ops = space_from_dict(TINY_SPACE).at().unique_ops()
    items = []
    for i, (key, spec) in enumerate(sorted(ops.items())):
        t = 0.1 + i / 100
        stats = TimingStats(median_ms=t, mean_ms=t, std_ms=0.0, min_ms=t, p10_ms=t, p90_ms=t, n=10)
        items.append(Measurement(op=OpRecord(key=key, spec=spec.to_dict()), stats=stats))
    return make_batch(run_id, TARGET, "box-1", {"cpu": {"model": "test"}}, items)


def test_results_wait_for_the_server_and_arrive_exactly_once(live_server, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    batch = _batch("run-spool-0001")
    spool.add(batch)
    token = live_server.agent_token("box-1")

    with LutApi(dead_url(), token, retries=1, sleep=lambda s: None) as down:
        res = spool.flush(down)
    assert res.error and res.pending == 1

    restarted = Spool(tmp_path / "spool")  # as after a reboot of the board
    with LutApi(live_server.url, token) as api:
        res = restarted.flush(api)
        assert (res.batches, res.accepted, res.duplicates, res.pending) == (1, len(tiny_keys()), 0, 0)
        assert restarted.flush(api).batches == 0  # nothing left to send

        # A crash between the server's answer and the file's removal: the batch is posted again.
        restarted.add(batch)
        res = restarted.flush(api)
        assert (res.accepted, res.duplicates) == (0, len(tiny_keys()))

    counts = measurement_counts(live_server.url, TARGET.id)
    assert sorted(counts) == tiny_keys() and set(counts.values()) == {1}
    log = [json.loads(line) for line in (tmp_path / "spool" / "sent.jsonl").read_text().splitlines()]
    assert [(e["accepted"], e["duplicates"]) for e in log] == [(len(tiny_keys()), 0), (0, len(tiny_keys()))]


def test_rejected_items_and_refused_batches_are_kept_aside(live_server, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    good = _batch("run-spool-0002")
    bad_item = json.loads(json.dumps(good))
    bad_item["run_id"] = "run-spool-0003"
    bad_item["items"][0]["op"]["key"] = "conv:not-the-key"
    spool.add(bad_item)
    refused = dict(good, run_id="run-spool-0004", target="not/a-target")
    spool.add(refused)
    with LutApi(live_server.url, live_server.agent_token("box-1")) as api:
        res = spool.flush(api)
    assert res.pending == 0 and res.dead == 1
    assert res.accepted == len(tiny_keys()) - 1 and len(res.rejected) == 1
    rej = [json.loads(line) for line in (tmp_path / "spool" / "rejected.jsonl").read_text().splitlines()]
    assert rej[0]["key"] == "conv:not-the-key" and "does not match" in rej[0]["reason"]
    dead = sorted((tmp_path / "spool" / "dead").iterdir())
    assert len(dead) == 2 and dead[1].name.endswith(".error.txt") and "422" in dead[1].read_text()


def test_flush_command(live_server, tmp_path: Path, capsys) -> None:
    from profiler_agent import cli

    Spool(tmp_path / "spool").add(_batch("run-spool-0005"))
    argv = ["flush", "--spool", str(tmp_path / "spool"), "--server", live_server.url,
            "--token", live_server.agent_token("box-1")]
    assert cli.main(argv) == cli.EXIT_OK
    assert f"flushed 1 batch(es): {len(tiny_keys())} accepted" in capsys.readouterr().out
    assert cli.main(argv) == cli.EXIT_OK
    assert "flushed 0 batch(es)" in capsys.readouterr().out
