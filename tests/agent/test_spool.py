"""The on-disk outbox on its own: atomic files, order, outages, torn files. (Delivery to a live
server, exactly once across outages, is in test_spool_live.py.)"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from profiler_agent.api import LutApi
from profiler_agent.spool import Spool, atomic_write_text, default_spool_dir


def _dead_url() -> str:
    """A localhost port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def _batch(run_id: str = "run-0001", n: int = 2) -> dict:
    return {
        "run_id": run_id,
        "target": {"device": "cpu-x86", "backend": "pytorch-cpu", "precision": "fp32", "batch": 1, "settings": {}},
        "device_name": "box-1",
        "fingerprint": {},
        "items": [{"op": {"key": f"k{i}", "spec": {}}, "stats": {}} for i in range(n)],
    }


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_add_persists_in_order_and_survives_a_new_instance(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    paths = [sp.add(_batch(f"run-{i:04d}", n=i + 1)) for i in range(3)]
    assert sp.pending() == paths
    again = Spool(tmp_path)  # a restarted process sees the same outbox
    assert [json.loads(p.read_text())["run_id"] for p in again.pending()] == ["run-0000", "run-0001", "run-0002"]
    assert again.pending_items() == 1 + 2 + 3


def test_add_rejects_something_that_is_not_a_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks 'run_id'"):
        Spool(tmp_path).add({"items": []})


def test_flush_to_a_dead_server_keeps_everything(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.add(_batch())
    sp.add(_batch("run-0002"))
    with LutApi(_dead_url(), "tok", retries=1, backoff=0.01) as api:
        res = sp.flush(api)
    assert res.error is not None and "cannot reach the server" in res.error
    assert res.batches == 0 and res.pending == 2 and not res.ok
    assert len(sp.pending()) == 2
    assert not (tmp_path / "sent.jsonl").exists()


def test_temp_and_hidden_files_are_not_pending(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    (sp.pending_dir / ".tmp-abc.json").write_text("{partial")
    assert sp.pending() == []


def test_default_spool_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUT_SPOOL", str(tmp_path / "s"))
    assert default_spool_dir() == tmp_path / "s"
    monkeypatch.delenv("LUT_SPOOL")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_spool_dir() == tmp_path / "cache" / "profiler-agent" / "spool"


def test_pending_file_names_sort_by_creation(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    a = sp.add(_batch("zzzz-late"))
    b = sp.add(_batch("aaaa-early"))
    assert sp.pending() == [a, b]
    assert os.path.basename(a) < os.path.basename(b)
