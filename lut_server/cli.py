"""`lut serve|token|register|export|import|status|report`, added to the core `lut` CLI (entry point lut.commands).

Token management and `--db` export/import work straight on the database (whoever can open the
database is the administrator); export/import/status also work over REST with `--server URL`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Optional, Tuple

from lutcore.cli.table import render
from lutcore.errors import LutError
from lutcore.formats import OTHER_FORMATS

if TYPE_CHECKING:  # SQLAlchemy costs 0.2 s per `lut` call: imported where a database is opened
    from lut_server.db import Database


class CliError(LutError):
    """A command-line problem reported as `lut: error: ...`."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db_help = "database URL (sqlite:///lut.db, postgresql://user@host/db); default $LUT_DB, $DATABASE_URL or sqlite:///lut.db"

    p = sub.add_parser("serve", help="run the LUT server (upgrades the database schema first)")
    p.add_argument("--db", help=db_help)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--read-token-required", action="store_true", default=None,
                   help="reads need a token too (also $LUT_READ_TOKEN_REQUIRED=1)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level on stderr (default: warning); the access log is separate")
    p.add_argument("--max-body-mb", type=_positive_mb, default=None,
                   help="largest request body in MiB; larger ones get 413 (default $LUT_MAX_BODY_MB or 8)")
    p.add_argument("--no-access-log", action="store_true",
                   help="no access-log lines (also $LUT_ACCESS_LOG=0); uvicorn's own access log stays off")
    p.set_defaults(func=_guarded(cmd_serve))

    t = sub.add_parser("token", help="create, list or revoke API tokens (works on the database directly)")
    tsub = t.add_subparsers(dest="token_cmd", metavar="ACTION")
    tsub.required = True
    tc = tsub.add_parser("create", help="create a token and print its secret (shown once)")
    who = tc.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", help="agent token that writes only for this device name")
    who.add_argument("--admin", action="store_true", help="admin token (tokens over REST, import)")
    who.add_argument("--read", action="store_true", help="read-only token (for --read-token-required servers)")
    who.add_argument("--search", action="store_true", help="search-job token (registers spaces, requests validations)")
    tc.add_argument("--device-class", help="with --device: the target class it writes for (xavier)")
    tc.add_argument("--note", default="", help="free text shown by `lut token list`")
    tc.add_argument("--db", help=db_help)
    tc.add_argument("--json", action="store_true", help="print a JSON object instead of the bare secret")
    tc.add_argument("--create", action="store_true",
                    help="create the database when it does not exist yet (else a mistyped --db is refused)")
    tc.set_defaults(func=_guarded(cmd_token_create))
    tl = tsub.add_parser("list", help="list tokens (secrets are never shown)")
    tl.add_argument("--db", help=db_help)
    tl.add_argument("--json", action="store_true", help="print the tokens as a JSON list")
    tl.set_defaults(func=_guarded(cmd_token_list))
    tr = tsub.add_parser("revoke", help="revoke a token by id, prefix or secret")
    tr.add_argument("token", help="token id (from `lut token list`), its shown prefix, or the secret")
    tr.add_argument("--db", help=db_help)
    tr.set_defaults(func=_guarded(cmd_token_revoke))

    e = sub.add_parser("export", help="write the LUT (one target or all) as nas-lut/1 JSON, YAML or JSON lines")
    _source(e, db_help)
    e.add_argument("--target", help="target id, e.g. xavier/tensorrt/fp16 (default: all targets)")
    e.add_argument("--format", default="nas-lut",
                   choices=["nas-lut", *OTHER_FORMATS],
                   help="nas-lut: our lossless JSON; proxyless-yaml / ofa-mbv3-yaml: the latency table OFA's "
                        "ProxylessNASLatencyTable / MBv3LatencyTable read (docs/formats/ofa.md); tfnas-pickle: "
                        "TF-NAS's latency pickle (docs/formats/tfnas.md); fbnet-jsonl: FBNet's runtime LUT records "
                        "(docs/formats/fbnet.md)")
    e.add_argument("--space", help="the yaml and pickle formats: the space whose layers the table covers "
                                   "(default mobilenetv2 / ofa-mbv3 / tfnas)")
    e.add_argument("--resolution", "-r", help="the yaml formats: sizes, e.g. 160,192,224; tfnas-pickle: one size "
                                              "(default: the space's own)")
    e.add_argument("--missing", choices=["report", "predict"], default="report",
                   help="predict (nas-lut only, with --target and --space): add the space's unmeasured ops as "
                        "predicted entries, each marked predicted: true with its 90%% interval lo_ms..hi_ms; "
                        "the other formats cannot mark them and refuse (default report: measured entries only)")
    e.add_argument("--fbnet-device", metavar="NAME", type=_fbnet_device,
                   help="fbnet-jsonl, with --target: the device name written in every record, the one their "
                        "RunTimeAPI loads (<NAME>-op_lut_database.json) and find_op matches, e.g. xavier "
                        "(default: the target id)")
    e.add_argument("-o", "--output", help="file to write (default stdout)")
    e.set_defaults(func=_guarded(cmd_export))

    i = sub.add_parser("import", help="merge a nas-lut/1 JSON document, or an old LUT of another tool as a target "
                                      "of its own, into a server or database")
    i.add_argument("file", help="export document (JSON), or with --format the old LUT; '-' reads stdin")
    i.add_argument("--format", default="nas-lut",
                   choices=["nas-lut", *OTHER_FORMATS],
                   help="proxyless-yaml / ofa-mbv3-yaml: the latency table OFA's ProxylessNASLatencyTable / "
                        "MBv3LatencyTable read; tfnas-pickle: a TF-NAS latency pickle (read without running any "
                        "code); fbnet-jsonl: FBNet's runtime LUT records (JSON lines); all need --target "
                        "(docs/formats/)")
    i.add_argument("--target", help="with --format: the target id the old numbers are stored as, "
                                    "e.g. galaxy-s8/onnxruntime/fp32")
    i.add_argument("--fbnet-device", metavar="NAME", type=_fbnet_device,
                   help="fbnet-jsonl: import the records of this device of the file (e.g. xavier), the others "
                        "left out and reported (default: the file's one device, or the target id's records)")
    _source(i, db_help)
    i.set_defaults(func=_guarded(cmd_import))

    s = sub.add_parser("status", help="targets, coverage per registered space, queue depth, parked jobs")
    _source(s, db_help)
    s.add_argument("--json", action="store_true", help="print the GET /status (or /compare) document as JSON")
    s.add_argument("--compare", metavar="OLD_TARGET",
                   help="instead: op by op, this target's LUT (e.g. an imported old table) against --against's")
    s.add_argument("--against", metavar="NEW_TARGET", help="with --compare: the target with the fresh measurements")
    s.add_argument("--space", help="with --compare: only the ops of this space (default: every key both hold)")
    s.add_argument("--resolution", help="with --space: HxW (default: the space's own)")
    s.add_argument("--worst", type=int, default=10, help="with --compare: how many of the ops furthest apart "
                                                         "(default 10)")
    s.set_defaults(func=_guarded(cmd_status))

    g = sub.add_parser("register", help="enqueue every op of a space the LUT lacks for a target (idempotent)")
    g.add_argument("space", help="a built-in space name, or a YAML/JSON space file (sent as its definition)")
    g.add_argument("--target", required=True, help="target id, e.g. xavier/tensorrt/fp16")
    g.add_argument("--resolution", "-r", help="HxW (default: the space's own)")
    g.add_argument("--priority", type=int, default=0, help="higher is claimed first (default 0)")
    g.add_argument("--validate", metavar="ARCHS",
                   help="also queue a validate job after the ops, e.g. published,random:20: an agent times those "
                        "networks against the LUT, posts the validations and refits the calibration")
    g.add_argument("--validate-rounds", type=int, default=5, help="timing rounds per network (default 5)")
    g.add_argument("--seed", type=int, default=0, help="seed of the first random architecture (default 0)")
    g.add_argument("--budget", type=_budget, metavar="N",
                   help="measure at most N ops (or a share, e.g. 0.25 of the unique ops), planned by the predictor: "
                        "a batch at a time, the ops that most reduce the cost matrix's uncertainty, refitted as "
                        "results arrive (default: every op the LUT lacks)")
    g.add_argument("--interval-bound", type=float, metavar="W",
                   help="with --budget: stop once every predicted cell's 90%% interval is at most W of its value "
                        "(default 0.3)")
    g.add_argument("--json", action="store_true", help="print the registration's answer as JSON")
    _source(g, db_help)
    g.set_defaults(func=_guarded(cmd_register))

    r = sub.add_parser("report", help="one self-contained HTML page (and PNGs) on a target's LUT for a space")
    r.add_argument("--target", required=True, help="target id, e.g. cpu-x86/pytorch-cpu/fp32@threads=1")
    r.add_argument("--space", required=True, help="space name (built-in or registered)")
    r.add_argument("--resolution", help="HxW (default: the space's own)")
    r.add_argument("--compare", metavar="OLD_TARGET",
                   help="add a section comparing this target's LUT (e.g. an imported old table) with --target's, "
                        "op by op over the space's ops")
    r.add_argument("-o", "--output", default="report.html", help="HTML file; plots go beside it as <stem>_*.png")
    _source(r, db_help)
    r.set_defaults(func=_guarded(cmd_report))

    a = sub.add_parser("audit", help="admin actions (who, what, when), newest first")
    _source(a, db_help)
    a.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    a.add_argument("--action", help="only this action, e.g. run.quarantine")
    a.add_argument("--json", action="store_true", help="print the audit entries as a JSON list")
    a.set_defaults(func=cmd_audit)


def _source(p: argparse.ArgumentParser, db_help: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--server", help="LUT server URL, e.g. http://lut:8000 (else --db)")
    g.add_argument("--db", help=db_help)
    p.add_argument("--token", default=os.environ.get("LUT_TOKEN"), help="bearer token for --server ($LUT_TOKEN)")


def _fbnet_device(text: str) -> str:
    """--fbnet-device: refused at parse time, before any database or server is touched."""
    from lutcore.formats.fbnet import check_device

    try:
        return check_device(text)
    except LutError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_mb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of MiB")
    return value


def _guarded(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Failures a user can cause (database, files, a closed pipe) become one `lut: error:` line; the
    server's answers already arrive as lutcore.rest's typed errors, which `lut` prints as one line too."""

    @functools.wraps(cmd)
    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            code = cmd(args)
            sys.stdout.flush()  # here, so that a reader that went away is reported like any other error
            return code
        except BrokenPipeError:
            _drop_stdout()
            raise CliError("the output was closed before everything was written (broken pipe)") from None
        except SQLAlchemyError as e:
            raise CliError(f"database: {_first_line(e)}") from None
        except OSError as e:
            raise CliError(_first_line(e)) from None

    return run


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(text):
            yield
    else:
        yield


def _database(url: Optional[str], must_exist: bool = False) -> Database:
    """The database at ``url``, schema upgraded. ``must_exist``: refuse a URL that holds no LUT database
    (a mistyped SQLite path would otherwise become a new, empty file)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from lut_server.db import Database, default_url, normalize_url

    raw = url or default_url()
    try:
        parsed = make_url(normalize_url(raw))
    except Exception:  # sqlalchemy's ArgumentError, or ValueError for a bad port
        raise CliError("--db: not a database URL (sqlite:///lut.db, postgresql://user@host/db)") from None
    where = parsed.render_as_string(hide_password=True)
    fix = "check --db (or $LUT_DB), or create it with `lut serve --db URL`"
    if must_exist and parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise CliError(f"no LUT database at {path or where}: {fix}")
    db = Database(raw)
    if must_exist and not inspect(db.read_engine).has_table("tokens"):
        db.dispose()
        raise CliError(f"{where} holds no LUT database (no tokens table): {fix}")
    db.upgrade()
    return db


def _check_output(path: str) -> None:
    """Refuse an output file that cannot be written before any work is done."""
    out = Path(path)
    if out.is_dir():
        raise CliError(f"-o {path}: is a folder; name a file in it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"-o {path}: folder {parent} does not exist")


def _rest(args: argparse.Namespace, method: str, path: str, body: Any = None,
          params: Optional[Dict[str, str]] = None) -> Any:
    """One call to ``--server`` through the shared client (lutcore.rest); every call here is safe to repeat."""
    from lutcore.rest import BadResponse, RestClient, ServerFault, Unavailable

    try:
        with RestClient(args.server, args.token, timeout=300, user_agent="lut", hints=REST_HINTS) as client:
            return client.request(method, path, json=body, params=params, idempotent=True)
    except ValueError as e:
        raise CliError(f"cannot reach {args.server}: {e}") from None
    except BadResponse:
        raise CliError(f"{args.server} answered {method} {path} with something other than JSON; "
                       "is it a LUT server?") from None
    except Unavailable as e:
        if isinstance(e, ServerFault):
            raise
        raise CliError(f"cannot reach {args.server}: {e}") from None


REST_HINTS = {401: "this server wants a token; pass --token (or set $LUT_TOKEN), e.g. a search token made on the "
                   "server's database with `lut token create --search --db URL`",
              403: "the token may not do this (import and audit need an admin token, register a search token)"}


# -- serve -------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lut_server.app import create_app
    from lut_server.config import Settings

    try:
        settings = Settings.from_env(args.db, args.read_token_required, args.max_body_mb)
    except ValueError as e:
        raise CliError(str(e)) from None
    settings.access_log = settings.access_log and not args.no_access_log
    app = create_app(settings)  # upgrades the schema once, before any worker starts
    print(f"lut server on http://{args.host}:{args.port} (db {app.state.db.safe_url()}); docs at /docs",
          file=sys.stderr, flush=True)
    if args.workers > 1:
        app.state.db.dispose()
        os.environ["LUT_DB"] = settings.db_url
        os.environ["LUT_READ_TOKEN_REQUIRED"] = "1" if settings.read_token_required else "0"
        os.environ["LUT_MAX_BODY_MB"] = repr(settings.max_body_mb)
        os.environ["LUT_ACCESS_LOG"] = "1" if settings.access_log else "0"
        uvicorn.run("lut_server.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level, access_log=False)
        return 0
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


# -- tokens ------------------------------------------------------------------------------------
def cmd_token_create(args: argparse.Namespace) -> int:
    from lut_server.tokens import create_token
    from lut_server.util import BadInput

    role = "admin" if args.admin else "read" if args.read else "search" if args.search else "agent"
    db = _database(args.db, must_exist=not args.create)
    try:
        with db.write() as conn:
            tok = create_token(conn, role, args.device, args.note, device_class=args.device_class, origin="cli",
                               actor=_cli_actor())
    except BadInput as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(tok))
    else:
        print(tok["token"])
        scope = f"device {tok['device']}, class {tok['device_class']}" if tok["device"] else role
        print(f"token {tok['id']} ({scope}); store it now, it is not shown again", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from lut_server.tokens import list_tokens

    with _database(args.db, must_exist=True).read() as conn:
        toks = list_tokens(conn)
    if args.json:
        print(json.dumps(toks, indent=2))
        return 0
    print(render(["id", "prefix", "role", "device", "class", "revoked", "note"],
                 [[t["id"], t["prefix"] + "...", t["role"], t["device"], t.get("device_class"),
                   "yes" if t["revoked"] else "", t["note"]] for t in toks]))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from lut_server.tokens import revoke_token

    with _database(args.db, must_exist=True).write() as conn:
        n = revoke_token(conn, args.token, actor=_cli_actor())
    if not n:
        raise CliError(f"no active token matches {args.token!r} (see `lut token list`)")
    print(f"revoked {n} token(s)")
    return 0


# -- export / import / status -------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from lut_server import exchange
    from lut_server.util import BadInput

    if args.output:
        _check_output(args.output)
    if args.missing == "predict" and (args.format != "nas-lut" or not args.target or not args.space):
        raise CliError("--missing predict exports predicted entries as nas-lut (the other formats cannot mark them), "
                       "for one --target and one --space")
    if args.fbnet_device is not None and (args.format != "fbnet-jsonl" or not args.target):
        raise CliError("--fbnet-device names the records of one target in fbnet-jsonl: use it with "
                       "--format fbnet-jsonl and --target")
    with _spinner("exporting"):
        if args.server:
            params = {"target": args.target} if args.target else {}
            if args.missing == "predict":
                params.update({"missing": "predict", "space": args.space, **_opt("resolution", args.resolution)})
            doc = _rest(args, "GET", "/export", params=params or None)
        else:
            with _database(args.db, must_exist=True).read() as conn:
                doc = exchange.export_doc(conn, args.target)
                if args.target and not doc["targets"]:
                    raise CliError(f"unknown target {args.target!r}")
                if args.missing == "predict":
                    doc = _predicted_export(conn, doc, args.space, args.resolution)
    res = [r if "x" in r else f"{r}x{r}" for r in (args.resolution or "").replace(" ", "").split(",") if r]
    try:
        data = exchange.render(doc, args.format, args.space, res, args.fbnet_device)
    except BadInput as e:
        raise CliError(str(e)) from None
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as e:
            raise CliError(f"cannot write {args.output}: {e.strerror or e}") from None
        n = sum(len(t["entries"]) for t in doc["targets"])
        dev = "" if args.fbnet_device is None else f", device {args.fbnet_device}"
        print(f"wrote {n} entries of {len(doc['targets'])} target(s) to {args.output} ({args.format}{dev})",
              file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def _opt(name: str, value: Optional[str]) -> Dict[str, str]:
    return {name: value} if value else {}


def _predicted_export(conn: Any, doc: Dict[str, Any], space: str, resolution: Optional[str]) -> Dict[str, Any]:
    from lut_server import predicted, spaces
    from lut_server.predictor import PredictorError
    from lut_server.util import BadInput

    try:
        return predicted.fill_export(conn, predicted.PredictorCache(1), doc, spaces.resolve(conn, space, resolution))
    except (BadInput, PredictorError) as e:
        raise CliError(str(e)) from None


def cmd_import(args: argparse.Namespace) -> int:
    from lut_server import exchange
    from lut_server.util import BadInput

    if (args.format == "nas-lut") == bool(args.target):
        raise CliError(f"--target goes with --format {'|'.join(OTHER_FORMATS)} (and is required there)")
    if args.fbnet_device is not None and args.format != "fbnet-jsonl":
        raise CliError("--fbnet-device picks a device's records of an fbnet-jsonl file: use it with --format "
                       "fbnet-jsonl")
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
    except OSError as e:
        raise CliError(f"cannot read {args.file}: {e.strerror or e}") from None
    if args.format == "nas-lut":
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError as e:
            raise CliError(f"cannot read {args.file}: {e}") from None
    else:
        doc = _legacy_document(args.format, data, args.target, args.file, args.fbnet_device)
    with _spinner("importing"):
        if args.server:
            out = _rest(args, "POST", "/import", body=doc)
        else:
            try:
                with _database(args.db).write() as conn:
                    out = exchange.import_doc(conn, doc)
            except BadInput as e:
                raise CliError(f"{args.file}: {e}") from None
    print(f"imported {out['targets']} target(s), {out['entries']} entries: {out['measurements_added']} "
          f"measurements added, {out['duplicates']} already present, {out['devices']} device(s)")
    return 0


def _legacy_document(fmt: str, data: bytes, target: str, name: str,
                     fbnet_device: Optional[str] = None) -> Dict[str, Any]:
    """An old LUT as a nas-lut/1 document, every entry mapped before anything is sent or stored (so
    --server and --db import the same document)."""
    from lutcore.formats import legacy

    try:
        doc, left = legacy.document(fmt, data, target, fbnet_device)
    except LutError as e:
        raise CliError(f"{name}: {e}") from None
    for why, keys in left.items():
        print(f"left out {len(keys)} of the file's entries ({why}), e.g. {'; '.join(keys[:3])}", file=sys.stderr)
    return doc


def cmd_status(args: argparse.Namespace) -> int:
    from lut_server import status

    if args.compare or args.against:
        return cmd_compare(args)
    if args.space or args.resolution:
        raise CliError("--space and --resolution go with --compare OLD_TARGET --against NEW_TARGET")
    if args.server:
        st = _rest(args, "GET", "/status")
    else:
        with _database(args.db, must_exist=True).read() as conn:
            st = status.status(conn)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print("targets:")
    print(render(["target", "lut_version", "ops_measured"],
                 [[t["id"], t["lut_version"], t["ops_measured"]] for t in st["targets"]]))
    print("\nregistered spaces:")
    print(render(["space", "resolution", "target", "measured", "total", "coverage"],
                 [[c["space"], c["resolution"], c["target"], c.get("measured"), c.get("total"),
                   f"{100 * c['fraction']:.1f}%" if "fraction" in c else c.get("error")] for c in st["spaces"]]))
    if st["spaces"]:
        print("(measured/total count every key of the cost matrix: the unique ops that `lut register` reports plus "
              "the identity (skip) keys, which cost 0 and count as measured)")
    if st.get("validations"):
        print("\nLUT vs whole networks (latest result per architecture; calibrated = held-out architectures):")
        print(render(["space", "resolution", "target", "n", "median|e|", "max|e|", "<=5%", "<=10%",
                      "cal median|e|", "cal max|e|", "cal <=5%", "cal <=10%"],
                     [_validation_row(v) for v in st["validations"]]))
    if st.get("plans"):
        print("\nmeasurement plans (issue 20):")
        print("\n".join(_plan_line(p) for p in st["plans"]))
    q = st["queue"]
    print(f"\njobs: {q['queued']} queued, {q['claimed']} claimed, {q['done']} done, {q['parked']} parked")
    if st["parked"]:
        print("\nparked jobs:")
        print(render(["id", "target", "key", "attempts", "error"],
                     [[p["id"], p["target"], p["key"], p["attempts"], (p["error"] or "")[:80]] for p in st["parked"]]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """`lut status --compare OLD --against NEW`: GET /compare, or lut_server.compare on the database."""
    from lut_server import compare

    if not (args.compare and args.against):
        raise CliError("--compare OLD_TARGET and --against NEW_TARGET go together")
    if args.resolution and not args.space:
        raise CliError("--resolution goes with --space")
    if not 1 <= args.worst <= compare.MAX_WORST:
        raise CliError(f"--worst must be between 1 and {compare.MAX_WORST}")
    if args.server:
        params = {"old": args.compare, "new": args.against, "worst": str(args.worst),
                  **({"space": args.space} if args.space else {}),
                  **({"resolution": args.resolution} if args.resolution else {})}
        out = _rest(args, "GET", "/compare", params=params)
    else:
        from lut_server.util import BadInput

        try:
            with _database(args.db, must_exist=True).read() as conn:
                out = compare.compare(conn, args.compare, args.against, args.space, args.resolution, args.worst)
        except (BadInput, LutError) as e:
            raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(compare_text(out))
    return 0


def compare_text(c: Dict[str, Any]) -> str:
    """The GET /compare answer as `lut status --compare` prints it."""
    def pct(x: Optional[float]) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    where = f" over {c['space']} @ {c['resolution']} ({c['space_ops']} ops)" if c.get("space") else ""
    lines = [f"old {c['old']} vs new {c['new']}{where}: {c['common']} op(s) in both"]
    if c["median_ratio"] is not None:
        lines.append(f"median new/old {c['median_ratio']:.3f}, median |difference| {pct(c['median_abs_diff'])}, "
                     f"within +-10%: {pct(c['within_10pct'])}")
    if c["not_positive"]:
        lines.append(f"{c['not_positive']} op(s) in both have a value <= 0 on one side (no ratio)")
    if c["worst"]:
        lines += ["", "furthest apart:", render(["op", "old ms", "new ms", "new/old"],
                                                [[w["key"], f"{w['old_ms']:.4g}", f"{w['new_ms']:.4g}",
                                                  f"{w['ratio']:.3f}"] for w in c["worst"]])]
    for side in ("old", "new"):
        n, ex = c[f"only_{side}"], c[f"only_{side}_examples"]
        if n:
            lines.append(f"only in {side} ({c[side]}): {n} op(s), e.g. {', '.join(ex)}")
    return "\n".join(lines)


def cmd_register(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lut_server import plans
    from lutcore.records import Target

    try:
        Target.parse(args.target)
    except ValueError as e:
        raise CliError(f"--target: {e}") from None
    space: Any = args.space
    if Path(space).suffix.lower() in (".yaml", ".yml", ".json") and Path(space).exists():
        from lutcore.spaces import load_space_file

        space = load_space_file(space)[0].to_dict()
    if args.validate and not isinstance(space, str):
        raise CliError("--validate needs a built-in space (agents build the networks from its name)")
    job: Optional[Dict[str, Any]] = None
    budget, share = args.budget or (None, None)
    if args.server:
        body = {"space": space, "resolution": args.resolution, "target": args.target, "priority": args.priority}
        body.update({k: v for k, v in (("budget", budget), ("budget_share", share),
                                       ("interval_bound", args.interval_bound)) if v is not None})
        out = _rest(args, "POST", "/spaces", body)
        if args.validate:
            job = _rest(args, "POST", "/validations/jobs", _validate_body(args, out))
    else:
        from lut_server import validation_jobs
        from lut_server.config import Settings
        from lut_server.util import BadInput

        attempts = Settings.from_env(args.db, None).max_attempts
        try:
            with _database(args.db).write() as conn:
                out = plans.register(conn, space, args.resolution, args.target, args.priority, attempts, budget, share,
                                     args.interval_bound)
                if args.validate:
                    body_in = validation_jobs.ValidateJobIn(**_validate_body(args, out))
                    job = validation_jobs.enqueue(conn, body_in, attempts)
        except (BadInput, ValueError) as e:
            raise CliError(str(e)) from None
    if job is not None:
        out["validate_job"] = job
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out.get('space')} at {out.get('resolution')} for {out.get('target')}: {out.get('unique_ops')} unique "
              f"ops, {out.get('enqueued')} jobs enqueued, {out.get('already_measured')} already measured")
        if out.get("plan"):
            print(_plan_line(out["plan"]))
        if job is not None:
            state = "queued" if job.get("created") else f"already {job.get('status')}"
            print(f"validate job {job.get('id')} ({job.get('architectures')} networks x {job.get('rounds')} rounds): "
                  f"{state}")
    return 0


def _budget(text: str) -> Tuple[Optional[int], Optional[float]]:
    """--budget: a whole number of ops, or a share of the space's unique ops (0 < share <= 1)."""
    try:
        if text.strip().isdigit() and int(text) >= 1:
            return int(text), None
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.0 < share <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of ops (>= 1) or a share in (0, 1], e.g. 0.25")
    return None, share


def _plan_line(p: Dict[str, Any]) -> str:
    worst = "-" if p.get("worst_interval") is None else f"{100 * p['worst_interval']:.0f}%"
    return (f"measurement plan {p['space']} at {p['resolution']} for {p['target']}: {p['state']}, {p['spent']}/"
            f"{p['budget']} ops spent in {p['batches']} batch(es), widest interval {worst} (bound "
            f"{100 * p['bound']:.0f}%)")


def _validate_body(args: argparse.Namespace, registered: Dict[str, Any]) -> Dict[str, Any]:
    return {"target": args.target, "space": registered["space"], "resolution": registered["resolution"],
            "archs": args.validate, "seed": args.seed, "rounds": args.validate_rounds,
            "priority": min(args.priority - 1, 1000)}


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lut_server import report, report_data
    from lut_server.util import BadInput

    try:
        with _spinner("gathering"):
            if args.server:
                data = report_data.from_server(args.server, args.token, args.target, args.space, args.resolution,
                                               args.compare)
            else:
                data = report_data.from_db(args.db, args.target, args.space, args.resolution, args.compare)
        with _spinner("drawing"):
            paths = report.write_report(data, Path(args.output))
    except (BadInput, RuntimeError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"wrote {paths[0]} and {len(paths) - 1} plot(s): {', '.join(p.name for p in paths[1:])}", file=sys.stderr)
    return 0


def _validation_row(v: Dict[str, Any]) -> list:
    def pct(x: Any) -> str:
        return "" if x is None else f"{100 * x:.1f}%"

    c = v.get("calibrated") or {}
    if "error" in v:
        return [v["space"], v["resolution"], v["target"], v["error"], "", "", "", "", "", "", "", ""]
    return [v["space"], v["resolution"], v["target"], v["n"], pct(v["median_abs_error"]), pct(v["max_abs_error"]),
            pct(v["within_5pct"]), pct(v["within_10pct"]), pct(c.get("median_abs_error")),
            pct(c.get("max_abs_error")), pct(c.get("within_5pct")), pct(c.get("within_10pct"))]


# -- audit -------------------------------------------------------------------------------------
def cmd_audit(args: argparse.Namespace) -> int:
    """`lut audit`: the admin actions recorded by the server (an admin token with --server)."""
    if not 1 <= args.limit <= 10_000:
        raise CliError("--limit must be between 1 and 10000")
    if args.server:
        params = {"limit": str(args.limit), **({"action": args.action} if args.action else {})}
        rows = _rest(args, "GET", "/audit", params=params)
    else:
        from lut_server.store.audit import listing

        with _database(args.db, must_exist=True).read() as conn:
            rows = listing(conn, args.limit, args.action)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no admin actions recorded")
    else:
        print(render(["at", "actor", "action", "subject", "detail"],
                     [[r["at"], r["actor"], r["action"], r["subject"], json.dumps(r["detail"])[:80]] for r in rows]))
    return 0


def _cli_actor() -> str:
    """How the audit trail names an action taken with `lut ... --db` (whoever can open the database)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
