"""The spool delivering to a real server: nothing lost while it is down, nothing stored twice after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from lutcore.records import Job, Measurement, OpRecord, Target, TimingStats
from lutcore.spaces.definition import space_from_dict
from profiler_agent.api import LutApi
from profiler_agent.daemon import make_batch
from profiler_agent.spool import Spool
from tests.agent.agent_helpers import TINY_SPACE, dead_url, measurement_counts, queue, register_space, tiny_keys
from tests.agent.flaky_proxy import FlakyProxy

TARGET = Target(device="cpu-test", backend="pytorch-cpu", precision="fp32", batch=1, settings={"threads": "1"})


def _batch(run_id: str) -> Dict[str, Any]:
    ops = space_from_dict(TINY_SPACE).at().unique_ops()
    items = []
    for i, (key, spec) in enumerate(sorted(ops.items())):
        t = 0.1 + i / 100
        stats = TimingStats(median_ms=t, mean_ms=t, std_ms=0.0, min_ms=t, p10_ms=t, p90_ms=t, n=10,
                            iters_per_sample=1, ci_low_ms=None, ci_high_ms=None, outliers=0)
        items.append(Measurement(op=OpRecord(key=key, spec=spec.to_dict()), stats=stats, job_id=None,
                                 measured_at=None))
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

    Spool(tmp_path / "spool").add(dict(_batch("run-spool-0006"), target="not/a-target"))
    assert cli.main(argv) == cli.EXIT_ERROR  # a batch the server refused as a whole is said, not only logged
    err = capsys.readouterr().err
    assert "refused 1 batch(es)" in err and str(tmp_path / "spool" / "dead") in err


class RefusingProxy(FlakyProxy):
    """A real proxy to the live server that answers a batch naming no job with ``status`` itself.

    The live server cannot refuse the retry of a 409 (without job ids nothing it checks after the
    job conflict can fail), so the second refusal, or an outage at that moment, is the proxy's.
    """

    def __init__(self, upstream: str, status: int, detail: str) -> None:
        super().__init__(upstream)
        self.answer = (status, {"Content-Type": "application/json"}, json.dumps({"detail": detail}).encode())

    def _route(self, method: str, path: str, headers: dict, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        if method == "POST" and path.endswith("/measurements"):
            items = json.loads(body).get("items", [])
            if not any(isinstance(it, dict) and it.get("job_id") is not None for it in items):
                with self._lock:
                    self.seen[f"{method} {path}"] += 1
                return self.answer
        return super()._route(method, path, headers, body)


def _job_held_by_other_board(live_server) -> Job:
    """Board box-2 took over a job of TARGET (as after box-1's lease on it ran out)."""
    register_space(live_server.url, live_server.admin_token, TARGET.id)
    with LutApi(live_server.url, live_server.agent_token("box-2")) as other:
        other.register_device("box-2", "cpu-test", {})
        (job,) = other.claim(TARGET.id, 1, lease_s=600.0)
    return job


def _naming(batch: Dict[str, Any], job: Job) -> Dict[str, Any]:
    out = json.loads(json.dumps(batch))
    assert job.op is not None
    (item,) = [it for it in out["items"] if it["op"]["key"] == job.op.key]
    item["job_id"] = job.id
    return out


def _still_held_by_box2(live_server, job: Job) -> bool:
    with LutApi(live_server.url, live_server.agent_token("box-2")) as other:
        return other.heartbeat([job.id], 600.0)["extended"] == [job.id]


def test_a_batch_naming_a_job_another_board_took_over_is_kept_without_its_job_id(live_server, tmp_path: Path) -> None:
    job = _job_held_by_other_board(live_server)
    logged: List[str] = []
    spool = Spool(tmp_path / "spool", log=logged.append)
    spool.add(_naming(_batch("run-spool-0006"), job))
    with FlakyProxy(live_server.url) as proxy, LutApi(proxy.url, live_server.agent_token("box-1")) as api:
        res = spool.flush(api)
    assert proxy.forwarded["POST /api/v1/measurements"] == 2  # the real server's 409, then the retry
    assert (res.batches, res.accepted, res.dead, res.pending, res.jobs_dropped) == (1, len(tiny_keys()), 0, 0, 1)
    counts = measurement_counts(live_server.url, TARGET.id)
    assert sorted(counts) == tiny_keys() and set(counts.values()) == {1}
    assert _still_held_by_box2(live_server, job)
    q = queue(live_server.url)
    assert (q["claimed"], q["queued"], q["done"]) == (1, 0, len(tiny_keys()) - 1)  # the rest completed by op
    assert not (tmp_path / "spool" / "dead").exists()
    (sent,) = [json.loads(line) for line in (tmp_path / "spool" / "sent.jsonl").read_text().splitlines()]
    assert sent["jobs_dropped"] == 1 and sent["accepted"] == len(tiny_keys())
    (line,) = [m for m in logged if "lease lost to another board" in m]
    assert f"job {job.id} is held by" in line and "1 job id(s) dropped, their jobs left to their holders" in line


def test_a_409_refused_again_without_job_ids_buries_the_original_batch(live_server, tmp_path: Path) -> None:
    job = _job_held_by_other_board(live_server)
    spool = Spool(tmp_path / "spool")
    original = _naming(_batch("run-spool-0007"), job)
    name = spool.add(original).name
    malformed = dict(_naming(_batch("run-spool-0008"), job), target="not/a-target")
    spool.add(malformed)
    with RefusingProxy(live_server.url, 409, "proxy: refused again") as proxy, \
            LutApi(proxy.url, live_server.agent_token("box-1")) as api:
        res = spool.flush(api)
    # one 409 from the server and the proxy's refusal of the retry; the 422 is not retried
    assert proxy.forwarded["POST /api/v1/measurements"] == 2 and proxy.seen["POST /api/v1/measurements"] == 3
    assert (res.batches, res.accepted, res.dead, res.pending, res.jobs_dropped) == (0, 0, 2, 0, 0)
    dead = tmp_path / "spool" / "dead"
    assert json.loads((dead / name).read_text()) == original  # with its job id, as spooled
    reason = (dead / (name + ".error.txt")).read_text()
    assert f"job {job.id} is held by box-2" in reason and "posted again without its 1 job id(s)" in reason
    assert "proxy: refused again" in reason
    assert measurement_counts(live_server.url, TARGET.id) == {}
    assert _still_held_by_box2(live_server, job)


def test_an_outage_during_the_retry_keeps_the_batch_as_spooled(live_server, tmp_path: Path, capsys) -> None:
    from profiler_agent import cli

    job = _job_held_by_other_board(live_server)
    spool = Spool(tmp_path / "spool")
    path = spool.add(_naming(_batch("run-spool-0009"), job))
    before = path.read_bytes()
    with RefusingProxy(live_server.url, 503, "proxy: server down") as proxy, \
            LutApi(proxy.url, live_server.agent_token("box-1"), retries=1, sleep=lambda s: None) as api:
        res = spool.flush(api)
    assert res.error and (res.pending, res.dead, res.jobs_dropped) == (1, 0, 0)
    assert path.read_bytes() == before and not (tmp_path / "spool" / "dead").exists()

    argv = ["flush", "--spool", str(tmp_path / "spool"), "--server", live_server.url,
            "--token", live_server.agent_token("box-1")]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"{len(tiny_keys())} accepted, 0 duplicate(s), 0 rejected, 1 job id(s) dropped" in out
    assert sorted(measurement_counts(live_server.url, TARGET.id)) == tiny_keys()
    assert _still_held_by_box2(live_server, job)
