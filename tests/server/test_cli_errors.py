"""`lut` server commands fail with one `lut: error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.live_server import REPO, free_port, server_env


def _lut(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True, input=stdin,
                          env=server_env({"LUT_DB": "", "DATABASE_URL": ""}), cwd=str(REPO), timeout=120)


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert len(err.splitlines()) == 1 and err.startswith("lut: error: "), err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def lut_db(tmp_path: Path) -> str:
    """A LUT database made the documented way (token create --create), with one token in it."""
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    r = _lut("token", "create", "--device", "xavier-01", "--device-class", "xavier", "--db", db, "--create")
    assert r.returncode == 0 and r.stdout.startswith("lut_"), r.stderr
    return db


def test_export_to_a_missing_folder_or_onto_a_folder(lut_db: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "out.json"
    _one_line_error(_lut("export", "--db", lut_db, "-o", str(missing)), "does not exist")
    assert not missing.parent.exists()
    _one_line_error(_lut("export", "--db", lut_db, "-o", str(tmp_path)), "is a folder")
    ok = _lut("export", "--db", lut_db, "-o", str(tmp_path / "out.json"))
    assert ok.returncode == 0 and (tmp_path / "out.json").read_text().startswith("{"), ok.stderr


def test_closed_pipe(lut_db: str) -> None:
    """The reader is gone before the export is written, as with `lut export | head -1` on a long export."""
    p = subprocess.Popen([sys.executable, "-m", "lutcore", "export", "--db", lut_db], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=server_env(), cwd=str(REPO))
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    _one_line_error(subprocess.CompletedProcess(p.args, p.returncode, "", err), "broken pipe")


def test_closed_pipe_in_a_shell(lut_db: str) -> None:
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m lutcore export --db {lut_db} | head -c 1"],
                       capture_output=True, text=True, env=server_env(), cwd=str(REPO), timeout=120)
    assert r.stdout == "{" and "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert r.stderr == "" or r.stderr.startswith("lut: error: ") and len(r.stderr.splitlines()) == 1, r.stderr


@pytest.mark.parametrize("argv, needle", [
    (["export", "--db", "postgresql://lut:pw@127.0.0.1:1/lut"], "database:"),
    (["status", "--db", "postgresql://lut:pw@127.0.0.1:1/lut"], "database:"),
    (["token", "list", "--db", "postgresql://lut:pw@127.0.0.1:1/lut"], "database:"),
    (["import", "-", "--db", "postgresql://lut:pw@127.0.0.1:1/lut"], "database:"),
    (["serve", "--db", "postgresql://lut:pw@127.0.0.1:1/lut", "--port", "1"], "database:"),
    (["export", "--db", "postgresql://lut@host:notaport/lut"], "not a database URL"),
    (["export", "--db", "nosuchdialect://x/y"], "database:"),
    (["export", "--server", "localhost:8000"], "cannot reach"),
    (["export", "--server", "http://[::1"], "cannot reach"),
    (["status", "--server", "http://127.0.0.1:1"], "cannot reach"),
])
def test_unreachable_or_bad_urls(argv: List[str], needle: str) -> None:
    err = _one_line_error(_lut(*argv, stdin='{"schema": "nas-lut/1", "targets": []}'), needle)
    assert "pw@" not in err  # a password in a URL is never echoed


def test_unreachable_postgres_names_the_cause(pg_url: str) -> None:
    missing = pg_url.rsplit("/", 1)[0] + "/lut_no_such_database"
    _one_line_error(_lut("token", "list", "--db", missing), "lut_no_such_database", "does not exist")


def test_a_server_that_is_not_a_lut_server(tmp_path: Path) -> None:
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=str(tmp_path),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        (tmp_path / "api").mkdir()
        (tmp_path / "api" / "v1").mkdir()
        (tmp_path / "api" / "v1" / "status").write_text("<html>not json</html>")
        _one_line_error(_lut("status", "--server", f"http://127.0.0.1:{port}"), "other than JSON")
    finally:
        web.terminate()
        web.wait(timeout=10)


@pytest.mark.slow
def test_token_create_refuses_a_mistyped_database(tmp_path: Path, lut_db: str) -> None:
    typo = tmp_path / "lut-typo.db"
    for argv in (["token", "create", "--device", "xavier-01", "--device-class", "xavier", "--db", f"sqlite:///{typo}"],
                 ["token", "create", "--admin", "--db", str(typo)],
                 ["token", "list", "--db", str(typo)],
                 ["token", "revoke", "1", "--db", str(typo)],
                 ["export", "--db", str(typo)],
                 ["status", "--db", str(typo)]):
        _one_line_error(_lut(*argv), "no LUT database", "lut serve")
        assert not typo.exists(), argv
    # a file that exists but holds no LUT database is refused too, and left as it was
    other = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE notes (x TEXT)")
    _one_line_error(_lut("token", "create", "--read", "--db", str(other)), "no LUT database")
    with sqlite3.connect(other) as c:
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["notes"]
    # the existing database works, and --create makes a new one on purpose
    r = _lut("token", "create", "--read", "--db", lut_db)
    assert r.returncode == 0 and r.stdout.startswith("lut_"), r.stderr
    r = _lut("token", "create", "--read", "--db", str(typo), "--create")
    assert r.returncode == 0 and typo.is_file(), r.stderr


def test_token_create_refuses_an_empty_postgres_database(pg_db_url: str) -> None:
    _one_line_error(_lut("token", "create", "--admin", "--db", pg_db_url), "no LUT database")
    r = _lut("token", "create", "--admin", "--db", pg_db_url, "--create")
    assert r.returncode == 0 and r.stdout.startswith("lut_"), r.stderr
    r = _lut("token", "list", "--db", pg_db_url)
    assert r.returncode == 0 and "admin" in r.stdout, r.stderr


def test_serve_refuses_a_bad_body_limit(tmp_path: Path) -> None:
    r = _lut("serve", "--db", str(tmp_path / "s.db"), "--max-body-mb", "0")
    assert r.returncode == 2 and "positive" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "lutcore", "serve", "--db", str(tmp_path / "s.db")],
                       capture_output=True, text=True, env=server_env({"LUT_MAX_BODY_MB": "lots"}), cwd=str(REPO),
                       timeout=120)
    _one_line_error(r, "LUT_MAX_BODY_MB")
