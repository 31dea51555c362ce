"""``profile`` offline, then ``sync`` to a real server: uploaded exactly once however often it runs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from profiler_agent import cli
from tests.agent.agent_helpers import dead_url, measurement_counts, tiny_keys
from tests.agent.test_offline import profile_argv, space_file

TID = "cpu-test/pytorch-cpu/fp32@threads=1"


def test_profile_then_sync_twice_uploads_exactly_once(live_server, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run.jsonl"
    assert cli.main(profile_argv(space_file(tmp_path), run)) == cli.EXIT_OK
    capsys.readouterr()
    token = live_server.agent_token("box-1")
    sync = ["sync", str(run), "--server", live_server.url, "--token", token, "--json"]

    assert cli.main(sync) == cli.EXIT_OK
    first = json.loads(capsys.readouterr().out)
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (len(tiny_keys()), 0, [])

    assert cli.main(sync) == cli.EXIT_OK
    second = json.loads(capsys.readouterr().out)
    assert (second["accepted"], second["duplicates"]) == (0, len(tiny_keys()))
    assert second["run_id"] == first["run_id"]

    counts = measurement_counts(live_server.url, TID)
    assert sorted(counts) == tiny_keys() and set(counts.values()) == {1}
    r = httpx.post(live_server.api + "/lookup", json={"target": TID, "keys": tiny_keys(), "metric": "median_ms"})
    assert r.json()["missing"] == []
    devices = httpx.get(live_server.api + "/devices", headers=live_server.headers(), timeout=30).json()
    assert [d["name"] for d in devices] == ["box-1"]


def test_sync_errors_are_clear(live_server, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run.jsonl"
    assert cli.main(profile_argv(space_file(tmp_path), run, "--limit", "1")) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["sync", str(run), "--server", live_server.url, "--token", "nope"]) == cli.EXIT_AUTH
    assert "401 unauthorized" in capsys.readouterr().err
    other = live_server.agent_token("box-2")  # the file was made as box-1
    assert cli.main(["sync", str(run), "--server", live_server.url, "--token", other]) == cli.EXIT_AUTH
    assert "403 forbidden" in capsys.readouterr().err
    # ...unless the upload is explicitly made under the token's name.
    assert cli.main(["sync", str(run), "--server", live_server.url, "--token", other, "--name", "box-2"]) == 0
    assert "1 new" in capsys.readouterr().out
    assert cli.main(["sync", str(run), "--server", dead_url(), "--token", "t", "--retries", "0"]) == cli.EXIT_PENDING
    assert "server unreachable" in capsys.readouterr().err
    assert cli.main(["sync", str(tmp_path / "missing.jsonl"), "--server", live_server.url, "--token", other]) == 1
    assert "no such run file" in capsys.readouterr().err


def test_profile_with_server_skips_ops_the_server_has(live_server, tmp_path: Path, capsys) -> None:
    first = tmp_path / "first.jsonl"
    assert cli.main(profile_argv(space_file(tmp_path), first, "--limit", "2")) == cli.EXIT_OK
    token = live_server.agent_token("box-1")
    assert cli.main(["sync", str(first), "--server", live_server.url, "--token", token]) == cli.EXIT_OK
    capsys.readouterr()
    second = tmp_path / "second.jsonl"
    argv = profile_argv(space_file(tmp_path), second, "--server", live_server.url, "--json")
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr()
    assert json.loads(out.out)["ops"] == len(tiny_keys()) - 2
    assert f"skipping 2 of {len(tiny_keys())} op(s)" in out.err
    timed = {json.loads(line)["op"]["key"] for line in second.read_text().splitlines()[1:]}
    assert timed == set(tiny_keys()) - set(measurement_counts(live_server.url, TID))
    again = tmp_path / "again.jsonl"
    assert cli.main(profile_argv(space_file(tmp_path), again, "--server", live_server.url, "--remeasure",
                                 "--json")) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["ops"] == len(tiny_keys())
    assert cli.main(profile_argv(space_file(tmp_path), tmp_path / "x.jsonl", "--server", dead_url())) == 2
    assert "cannot look up the LUT" in capsys.readouterr().err
