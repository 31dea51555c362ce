"""``profiler-agent``: the daemon (default), offline ``profile``/``sync``, ``flush``, ``probe``, ``backends``.

Exit codes: 0 done; 1 error; 2 bad usage; 3 the server refused the token (401/403);
4 the server could not be reached and results wait in the spool.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import platform
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from lutcore.cli.table import render
from lutcore.errors import LutError
from profiler_agent.rounds import ESTIMATORS

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_PENDING = 4

COMMANDS = ("run", "profile", "sync", "flush", "probe", "backends", "validate")
log = logging.getLogger("profiler_agent")


class UsageError(Exception):
    """A missing or inconsistent option; the message says which one."""


# -- defaults derived from the machine --------------------------------------------------------


def sanitize_name(text: str) -> str:
    """Lower-case ``[a-z0-9._-]``, at most 64 characters: the shape device names must have."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return (name or "agent")[:64]


def default_device_name() -> str:
    """``$LUT_NAME``, else the host name (the board's name as registered with the server)."""
    return sanitize_name(os.environ.get("LUT_NAME") or socket.gethostname().split(".")[0])


def guess_device_class(root: str = "/", backend: Optional[str] = None) -> str:
    """A Jetson's module (``xavier``, ``orin``, ...) from its device tree; for a GPU backend on a
    discrete GPU the GPU's class from its name (``h100``, ``a100``, ``l4``, ...); else ``cpu-<arch>``."""
    tree = Path(root) / "proc/device-tree"
    texts = []
    for name in ("model", "compatible"):  # some devkits' model is just "Jetson-AGX"; the SoC tells
        with contextlib.suppress(OSError):
            texts.append((tree / name).read_bytes().decode("utf-8", "replace").replace("\x00", " ").lower())
    text = " ".join(texts)
    for known, soc in (("orin", "tegra234"), ("xavier", "tegra194"), ("tx2", "tegra186"), ("nano", "tegra210")):
        if known in text or soc in text:
            return known
    if backend in ("pytorch-cuda", "tensorrt"):
        from profiler_agent.probe.gpu import discrete_gpu_class

        gpu = discrete_gpu_class(root)
        if gpu:
            return sanitize_name(gpu)
    arch = platform.machine().lower()
    arch = {"x86_64": "x86", "amd64": "x86", "aarch64": "arm64"}.get(arch, arch)
    return sanitize_name(f"cpu-{arch}")


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# -- argument parsing -------------------------------------------------------------------------


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for HTTP)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def _add_server(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--server", default=_env("LUT_SERVER"), help="LUT server URL (env LUT_SERVER)")
    g.add_argument("--token", default=_env("LUT_TOKEN"), help="agent token (env LUT_TOKEN)")
    g.add_argument("--token-file", help="read the token from this file instead")
    g.add_argument("--retries", type=int, default=5, help="retries of a request on outages/5xx (default 5)")
    g.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")


def _add_measuring(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("measuring")
    g.add_argument("--device", default=_env("LUT_DEVICE"),
                   help="device class of the target, e.g. xavier, orin, cpu-x86 (env LUT_DEVICE)")
    g.add_argument("--name", default=None,
                   help="this board's name as registered (env LUT_NAME, default: host name); "
                        "agent tokens are bound to it")
    g.add_argument("--backend", default=_env("LUT_BACKEND", "pytorch-cpu"),
                   help="pytorch-cpu, pytorch-cuda, tensorrt or onnxruntime (default pytorch-cpu)")
    g.add_argument("--precision", default=_env("LUT_PRECISION", "fp32"), help="fp32, fp16 or int8")
    g.add_argument("--threads", type=int, default=None, help="CPU threads (recorded in the target)")
    g.add_argument("--batch-size", type=int, default=1, help="batch size of the target (default 1)")
    g.add_argument("--target-setting", action="append", default=[], metavar="K=V",
                   help="an extra setting in the target id, e.g. power_mode=MAXN (repeatable)")
    g.add_argument("--cuda-graphs", dest="cuda_graphs", action="store_true", default=None,
                   help="GPU backends: time ops as CUDA graph replays (the default; LUT_CUDA_GRAPHS=0 turns it off)")
    g.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="GPU backends: time back-to-back launches instead (host enqueue rate included)")
    g.add_argument("--provider", default=None, help="onnxruntime: execution provider (cpu, cuda, tensorrt)")
    g.add_argument("--ci", type=float, default=0.01, help="target relative 95%% CI of the median (default 0.01)")
    g.add_argument("--max-time-per-op", type=float, default=2.0, help="time budget per op in seconds (default 2)")
    g.add_argument("--min-samples", type=int, default=10, help="samples taken even past the budget (default 10)")
    g.add_argument("--max-warmup", type=float, default=0.5, help="longest warm-up per op in seconds (default 0.5)")
    g.add_argument("--canary-every", type=int, default=20, help="re-time a canary op every N ops (default 20)")
    g.add_argument("--drift-tol", type=float, default=0.05, help="canary drift that triggers re-timing (0.05)")
    g.add_argument("--seed", type=int, default=0, help="seed of the shuffled op order")
    g.add_argument("--speed-ref", action="store_true",
                   help="CPU backends on shared machines: time a small reference conv between samples and divide "
                        "out the machine's slowdown (the target records speed=ref)")
    g.add_argument("--speed-sensitivity", type=float, default=0.5,
                   help="with --speed-ref: share of the reference's slowdown that ops feel (default 0.5)")
    g.add_argument("--root", default="/", help="filesystem root to probe (fixtures in tests)")


def _add_rounds(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rounds (each op timed in several shuffled passes over the batch)")
    g.add_argument("--rounds", type=int, default=None,
                   help="passes per op; its time budget is split between them (default: the backend's, 5 on "
                        "CPU backends whose machine's speed wanders, 1 on GPU backends; 1: one block per op)")
    g.add_argument("--estimator", choices=list(ESTIMATORS), default="fast-half",
                   help="how an op's rounds combine: the faster half (default), the fastest, or all")
    g.add_argument("--spread-tol", type=float, default=0.10,
                   help="an op whose kept rounds differ by more than this (relative) gets an extra round (0.10)")
    g.add_argument("--max-extra-rounds", type=int, default=2, help="extra rounds at most per op (default 2)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="profiler-agent",
        description="Times ops on this device for a LUT server. Without a command it runs the daemon "
        "(same as `profiler-agent run`).",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 token refused (401/403), 4 results left in the spool",
    )
    from profiler_agent.offline import agent_version

    p.add_argument("--version", action="version", version=f"profiler-agent {agent_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="daemon: claim jobs from the server, time them, post the results")
    _add_common(r)
    _add_server(r)
    _add_measuring(r)
    _add_rounds(r)
    g = r.add_argument_group("daemon")
    g.add_argument("--exit-when-idle", action="store_true", help="exit once the queue for the target is empty")
    g.add_argument("--claim", type=int, default=32,
                   help="jobs claimed at a time; their ops share the rounds (default 32)")
    g.add_argument("--lease", type=float, default=300.0, help="lease in seconds, renewed by heartbeats (300)")
    g.add_argument("--poll", type=float, default=5.0, help="first wait when the queue is empty (doubles to 60s)")
    g.add_argument("--term-grace", type=float, default=30.0,
                   help="on SIGTERM finish the current jobs if that takes less than this, else release them")
    g.add_argument("--spool", default=_env("LUT_SPOOL"), help="outbox directory (env LUT_SPOOL)")
    r.set_defaults(func=cmd_run)

    pr = sub.add_parser("profile", help="offline: time every unique op of a space into a JSONL run file")
    _add_common(pr)
    _add_measuring(pr)
    _add_rounds(pr)
    pr.add_argument("--space", required=True, help="a built-in space name or a YAML/JSON space file")
    pr.add_argument("--resolution", "-r", help="HxW, e.g. 256x512 (default: the space's own)")
    pr.add_argument("-o", "--output", required=True, help="the run file to write (JSONL)")
    pr.add_argument("--resume", action="store_true", help="continue an interrupted run file")
    pr.add_argument("--limit", type=int, default=None, help="time only the first N ops (smoke tests)")
    pr.add_argument("--json", action="store_true", help="print the summary as JSON")
    g = pr.add_argument_group("server (optional)")
    g.add_argument("--server", default=None,
                   help="skip the ops this LUT server already has for the target (re-timing them would only "
                        "move values a calibration rests on); the run file holds the rest, for `sync`")
    g.add_argument("--token", default=_env("LUT_TOKEN"), help="token for --server, if it requires one to read")
    g.add_argument("--remeasure", action="store_true", help="with --server: time the ops the server has too")
    pr.set_defaults(func=cmd_profile)

    sy = sub.add_parser("sync", help="upload a run file written by `profile` (safe to repeat)")
    _add_common(sy)
    _add_server(sy)
    sy.add_argument("run_file")
    sy.add_argument("--name", default=None, help="register/post as this device name instead of the file's")
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=cmd_sync)

    fl = sub.add_parser("flush", help="post what waits in the spool, then exit")
    _add_common(fl)
    _add_server(fl)
    fl.add_argument("--spool", default=_env("LUT_SPOOL"), help="outbox directory (env LUT_SPOOL)")
    fl.set_defaults(func=cmd_flush)

    pb = sub.add_parser("probe", help="print this device's fingerprint")
    _add_common(pb)
    pb.add_argument("--root", default="/", help="filesystem root to read (a fixture tree in tests)")
    pb.add_argument("--backend", default=None, help="include this backend's library versions")
    pb.add_argument("--json", action="store_true")
    pb.set_defaults(func=cmd_probe)

    va = sub.add_parser("validate", help="time whole networks end to end and compare with the LUT's sums")
    _add_common(va)
    _add_server(va)
    _add_measuring(va)
    va.add_argument("--space", required=True, help="a built-in space name")
    va.add_argument("--resolution", "-r", help="HxW, e.g. 256x512 (default: the space's own)")
    va.add_argument("--archs", default="published,random:20",
                    help="comma list: published, random:N, or architecture names (default published,random:20)")
    src = va.add_mutually_exclusive_group()
    src.add_argument("--lut", help="an exported LUT file (nas-lut/1 JSON) instead of --server")
    src.add_argument("--measure-lut", action="store_true",
                     help="time the architectures' ops here first (no server, no file)")
    va.add_argument("--target", help="with --lut: which target of the file (default: the backend's own)")
    va.add_argument("--rounds", type=int, default=5, help="timing rounds per network, shuffled (default 5)")
    va.add_argument("--max-time-per-net", type=float, default=0.5,
                    help="time budget per network per round in seconds (default 0.5)")
    va.add_argument("--estimator", choices=["fast-half", "min", "median"], default="fast-half",
                    help="how rounds combine: the mean of the faster half of the round medians (default; robust "
                         "to bursts of load), the fastest one, or their median")
    va.add_argument("--calibrate", action="store_true",
                    help="fit a calibration (identity, scale or affine, chosen by leave-one-out) on half the "
                         "random archs and score it on the rest")
    va.add_argument("--fit-share", type=float, default=0.5,
                    help="with --calibrate: share of the random archs the calibration is fitted on; the rest "
                         "score it (default 0.5; 1.0 fits on all, scored by leave-one-out only)")
    va.add_argument("--json", action="store_true", help="JSON lines: one object per architecture, then a summary")
    va.set_defaults(func=cmd_validate)

    bk = sub.add_parser("backends", help="which backends can run here, and why not")
    _add_common(bk)
    bk.add_argument("--json", action="store_true")
    bk.set_defaults(func=cmd_backends)
    return p


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    verbose = getattr(args, "verbose", 0)
    if verbose:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s profiler-agent %(levelname)s %(message)s", datefmt="%H:%M:%S",
        stream=sys.stderr, force=True,
    )
    if verbose < 2:  # httpx logs every request at INFO
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)


# -- shared building blocks -------------------------------------------------------------------


def _token(args: argparse.Namespace) -> Optional[str]:
    if getattr(args, "token_file", None):
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--token-file {args.token_file}: {e.strerror}") from None
    return args.token


def _api(args: argparse.Namespace) -> Any:
    from profiler_agent.api import LutApi

    if not args.server:
        raise UsageError("no server: pass --server URL or set LUT_SERVER")
    token = _token(args)
    if not token:
        raise UsageError("no token: pass --token T (or --token-file) or set LUT_TOKEN")
    return LutApi(args.server, token, timeout=args.timeout, retries=args.retries,
                  log=lambda msg: log.warning("%s", msg))


def _protocol(args: argparse.Namespace) -> Any:
    from profiler_agent.timing import TimingProtocol

    try:
        return TimingProtocol(
            ci=args.ci, max_time_s=args.max_time_per_op, min_samples=args.min_samples,
            max_warmup_s=max(args.max_warmup, 0.0), warmup_s=min(0.025, max(args.max_warmup, 0.0)),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def backend_options(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """The options this backend's constructor accepts; a given option it lacks is an error."""
    from profiler_agent.backends import backend_class

    try:
        params = inspect.signature(backend_class(name).__init__).parameters
    except ValueError as e:
        raise UsageError(str(e)) from None
    except ImportError:
        params = {}
    wanted: Dict[str, Any] = {"precision": args.precision}
    if args.threads is not None:
        wanted["threads"] = args.threads
    if args.cuda_graphs is not None:
        wanted["cuda_graphs"] = args.cuda_graphs
    elif _env("LUT_CUDA_GRAPHS") == "0":  # GPU backends use CUDA graphs by default; this turns them off
        wanted["cuda_graphs"] = False
    if args.provider:
        wanted["provider"] = args.provider
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    out: Dict[str, Any] = {}
    for k, v in wanted.items():
        if k in params or accepts_any:
            out[k] = v
        elif k != "precision":
            raise UsageError(f"backend {name} has no --{k.replace('_', '-')} option")
    if "root" in params and getattr(args, "root", "/") != "/":  # clocks and power mode from a fixture tree
        out["root"] = args.root
    return out


def _backend(args: argparse.Namespace) -> Any:
    from profiler_agent.backends import BackendUnavailable, get_backend

    try:
        backend = get_backend(args.backend, **backend_options(args.backend, args))
    except BackendUnavailable as e:
        raise UsageError(f"{e}; see `profiler-agent backends`") from None
    except (ValueError, TypeError) as e:
        raise UsageError(f"backend {args.backend}: {e}") from None
    if getattr(args, "speed_ref", False):
        if not 0 <= args.speed_sensitivity <= 2:
            backend.close()
            raise UsageError(f"--speed-sensitivity {args.speed_sensitivity} must be between 0 and 2")
        try:
            ref = backend.use_speed_reference(sensitivity=args.speed_sensitivity)
        except BackendUnavailable as e:
            backend.close()
            raise UsageError(f"--speed-ref: {e}") from None
        log.info("speed reference %s: %.3f ms per sample", ref.name, 1e3 * (ref.base_s or 0.0))
    return backend


def _target(backend: Any, args: argparse.Namespace, device_class: str) -> Any:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size} must be at least 1")
    extra: Dict[str, str] = {}
    for item in args.target_setting:
        k, eq, v = item.partition("=")
        if not eq or not k or not v:
            raise UsageError(f"--target-setting {item!r} must look like name=value")
        extra[k] = v
    try:
        target = backend.target(device_class, extra)
    except ValueError as e:
        raise UsageError(f"target {device_class!r} with settings {extra}: {e}") from None
    if args.batch_size != target.batch:
        target = type(target)(**dict(target.model_dump(), batch=args.batch_size))
    return target


def _probe(args: argparse.Namespace, backend_name: Optional[str]) -> Dict[str, Any]:
    """The full probe (identity and clocks); its warnings (unlocked clocks, heat) are logged."""
    from profiler_agent.probe import probe

    fp = probe(root=args.root, backend=backend_name)
    for w in fp.get("warnings", []):
        log.warning("probe: %s", w)
    return fp


def _session(backend: Any, args: argparse.Namespace, progress: Callable[[int, int, str], None]) -> Any:
    from profiler_agent.session import ProfileSession

    return ProfileSession(
        backend, _protocol(args), root=args.root, canary_every=args.canary_every,
        drift_tol=args.drift_tol, seed=args.seed, progress=progress, plan=_plan(args, backend),
    )


def _plan(args: argparse.Namespace, backend: Any) -> Any:
    """Op rounds for run/profile; validate times networks in rounds of its own (one pass per op there)."""
    from profiler_agent.rounds import RoundPlan

    if not hasattr(args, "spread_tol"):
        return None
    rounds = args.rounds if args.rounds is not None else getattr(backend, "default_rounds", 5)
    try:
        return RoundPlan(rounds=rounds, estimator=args.estimator, spread_tol=args.spread_tol,
                         max_extra=args.max_extra_rounds)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# -- commands ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from profiler_agent.daemon import Agent, AgentConfig, wire_fingerprint
    from profiler_agent.spool import Spool, default_spool_dir

    if not args.device:
        raise UsageError("no device class: pass --device (e.g. xavier, cpu-x86) or set LUT_DEVICE")
    if args.claim < 1 or args.lease <= 0:
        raise UsageError("--claim must be >= 1 and --lease > 0")
    api = _api(args)
    name = sanitize_name(args.name) if args.name else default_device_name()
    spool = Spool(args.spool or default_spool_dir(), log=lambda m: log.warning("%s", m))
    backend = _backend(args)
    try:
        target = _target(backend, args, args.device)
        fingerprint = wire_fingerprint(_probe(args, args.backend))
        agent_ref: List[Any] = []

        def progress(done: int, total: int, key: str) -> None:
            log.debug("timed %d/%d %s", done, total, key)
            if done < total:  # the claim's last op is done: finishing costs nothing more
                agent_ref[0].check_abort()

        cfg = AgentConfig(
            device_class=args.device, name=name, claim=args.claim, lease_s=args.lease,
            exit_when_idle=args.exit_when_idle, poll_s=args.poll, term_grace_s=args.term_grace,
        )
        agent = Agent(api, _session(backend, args, progress), target, fingerprint, spool, cfg)
        agent_ref.append(agent)
        previous = _install_stop_handlers(agent)
        try:
            code = agent.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if code != EXIT_OK and agent.message:
            print(f"profiler-agent: error: {agent.message}", file=sys.stderr)
        if not args.quiet:
            print(render(["agent run", ""], agent.summary_rows(), align="ll"), file=sys.stderr)
        return code
    finally:
        backend.close()
        api.close()


def _install_stop_handlers(agent: Any) -> Dict[int, Any]:
    """SIGTERM/SIGINT ask the agent to stop; a second signal makes it abort the current claim."""
    previous = {}

    def handler(signum: int, _frame: Any) -> None:
        agent.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (embedded use): the caller stops it
            previous[sig] = signal.signal(sig, handler)
    return previous


def cmd_profile(args: argparse.Namespace) -> int:
    from profiler_agent.daemon import new_run_id, wire_fingerprint
    from profiler_agent.offline import make_header, profile_ops
    from profiler_agent.progress import Progress

    device_class = args.device or guess_device_class(args.root, args.backend)
    space = _load_space(args.space, args.resolution)
    ops = space.unique_ops()
    if args.batch_size != 1:
        ops = {s.key: s for s in (spec.replace(batch=args.batch_size) for spec in ops.values())}
    if args.limit is not None:
        ops = dict(sorted(ops.items())[: max(0, args.limit)])
    backend = _backend(args)
    try:
        target = _target(backend, args, device_class)
        if args.server and not args.remeasure:
            ops = _drop_known(ops, target.id, args)
        full = _probe(args, args.backend)
        name = sanitize_name(args.name) if args.name else default_device_name()
        header = make_header(new_run_id(), target, name, wire_fingerprint(full), space.name,
                             space.resolution_str, len(ops), backend.versions())
        header["probe"] = {k: full.get(k) for k in ("probed_at", "clocks", "warnings")}
        log.info("profiling %d unique ops of %s at %s on %s", len(ops), space.name, space.resolution_str, target.id)
        bar = Progress(label=f"{space.name} {space.resolution_str}")
        t0 = time.monotonic()
        header, measured = profile_ops(
            lambda cb: _session(backend, args, cb), ops, args.output, header,
            resume=args.resume, seed=args.seed, progress=None if args.quiet else bar,
        )
        bar.close()
        wall = time.monotonic() - t0
    finally:
        backend.close()
    summary = profile_summary(header, measured, wall)
    if args.json:
        _print_json(summary)
    elif not args.quiet:
        print(_render_profile(summary, measured))
    return EXIT_OK


def _drop_known(ops: Dict[str, Any], target_id: str, args: argparse.Namespace) -> Dict[str, Any]:
    """The ops the server has no entry for (``profile --server``)."""
    from profiler_agent.api import ApiError, LutApi

    try:
        with LutApi(args.server, args.token, retries=2) as api:
            have = set(api.lookup(target_id, sorted(ops)).get("values", {}))
    except ApiError as e:
        raise UsageError(f"--server {args.server}: cannot look up the LUT: {e}") from None
    if have:
        log.warning("skipping %d of %d op(s) the server already has for %s (--remeasure times them anyway)",
                    len(have & set(ops)), len(ops), target_id)
    return {k: v for k, v in ops.items() if k not in have}


def _load_space(name: str, resolution: Optional[str]) -> Any:
    from lutcore.spaces import get_space

    if Path(name).suffix.lower() in (".yaml", ".yml", ".json") and Path(name).exists():
        from lutcore.spaces.definition import load_space_file

        defs = load_space_file(name)
        if len(defs) != 1:
            raise UsageError(f"{name} defines {len(defs)} spaces; pass a file with one, or a built-in name")
        return defs[0].at(resolution)
    return get_space(name, resolution)


def profile_summary(header: Dict[str, Any], measured: Sequence[Any], wall_s: float) -> Dict[str, Any]:
    """Figures of a finished offline run (also what ``--json`` prints)."""
    import statistics

    n_samples = [m.stats.n for m in measured]
    ci = [
        max(m.stats.median_ms - m.stats.ci_low_ms, m.stats.ci_high_ms - m.stats.median_ms) / m.stats.median_ms
        for m in measured
        if m.stats.ci_low_ms is not None and m.stats.ci_high_ms is not None
    ]
    return {
        "run_id": header["run_id"],
        "target": header.get("target_id"),
        "space": header.get("space"),
        "resolution": header.get("resolution"),
        "ops": len(measured),
        "wall_s": round(wall_s, 2),
        "sum_median_ms": round(sum(m.stats.median_ms for m in measured), 4),
        "median_samples": statistics.median(n_samples) if n_samples else 0,
        "median_ci_pct": round(100 * statistics.median(ci), 3) if ci else None,
        "outliers": sum(m.stats.outliers for m in measured),
    }


def _render_profile(summary: Dict[str, Any], measured: Sequence[Any]) -> str:
    rows = [(k.replace("_", " "), v) for k, v in summary.items()]
    text = render(["profile run", ""], rows, align="ll")
    slow = sorted(measured, key=lambda m: -m.stats.median_ms)[:8]
    if slow:
        table = [
            (m.op.key, m.stats.median_ms, m.stats.p10_ms, m.stats.p90_ms, m.stats.n, m.stats.outliers) for m in slow
        ]
        text += "\n\nslowest ops\n" + render(["op", "median ms", "p10", "p90", "n", "outliers"], table)
    return text


def cmd_sync(args: argparse.Namespace) -> int:
    from profiler_agent.offline import sync_run

    api = _api(args)
    try:
        res = sync_run(args.run_file, api, device_name=sanitize_name(args.name) if args.name else None,
                       log=lambda m: log.warning("%s", m))
    finally:
        api.close()
    if args.json:
        _print_json(res)
    else:
        print(
            f"synced {args.run_file} (run {res['run_id']}, {res['target']}): {res['items']} measurement(s), "
            f"{res['accepted']} new, {res['duplicates']} already on the server, {len(res['rejected'])} rejected"
        )
        for r in res["rejected"]:
            print(f"  rejected #{r.get('index')} {r.get('key')}: {r.get('reason')}")
    return EXIT_ERROR if res["rejected"] else EXIT_OK


def cmd_flush(args: argparse.Namespace) -> int:
    from profiler_agent.spool import Spool, default_spool_dir

    spool = Spool(args.spool or default_spool_dir(), log=lambda m: log.warning("%s", m))
    api = _api(args)
    try:
        res = spool.flush(api)
    finally:
        api.close()
    print(f"flushed {res.batches} batch(es): {res.accepted} accepted, {res.duplicates} duplicate(s), "
          f"{len(res.rejected)} rejected; {res.pending} batch(es) still pending in {spool.pending_dir}")
    if res.error:
        print(f"profiler-agent: server unreachable: {res.error}", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from profiler_agent.probe import fingerprint_digest, probe

    fp = probe(root=args.root, backend=args.backend)
    if args.json:
        _print_json(fp)
        return EXIT_OK
    print(f"fingerprint {fingerprint_digest(fp)}")
    for line in _flatten({k: v for k, v in fp.items() if k != "warnings"}):
        print(line)
    for w in fp.get("warnings", []):
        print(f"warning: {w}")
    return EXIT_OK


def _flatten(obj: Any, prefix: str = "") -> List[str]:
    if isinstance(obj, dict):
        out: List[str] = []
        for k in sorted(obj):
            out.extend(_flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        out = []
        for i, x in enumerate(obj):
            out.extend(_flatten(x, f"{prefix}[{i}]"))
        return out
    return [f"  {prefix}: {obj if not isinstance(obj, list) else ', '.join(map(str, obj))}"]


def cmd_backends(args: argparse.Namespace) -> int:
    from profiler_agent.backends import available_backends

    avail = available_backends()
    if args.json:
        _print_json({k: {"usable": v is None, "reason": v} for k, v in avail.items()})
    else:
        rows = [(k, "yes" if v is None else "no", v or "") for k, v in avail.items()]
        print(render(["backend", "usable", "why not"], rows, align="lll"))
    return EXIT_OK


# -- entry point ------------------------------------------------------------------------------


def _normalize_argv(argv: List[str]) -> List[str]:
    """No command (only options) means the daemon: ``profiler-agent --device x`` == ``... run --device x``."""
    if not argv:
        return ["--help"]
    if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    return ["run"] + argv


def cmd_validate(args: argparse.Namespace) -> int:
    import dataclasses

    from lutcore.calibration import Calibration
    from lutcore.spaces import parse_arch_list
    from profiler_agent.daemon import new_run_id
    from profiler_agent.progress import Progress
    from profiler_agent.validate import (
        LutValues,
        report,
        split_for_calibration,
        validate_interleaved,
        validation_body,
    )
    from profiler_agent.validate import validate as run_validation

    if args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    if not 0 < args.fit_share <= 1:
        raise UsageError(f"--fit-share {args.fit_share} must be in (0, 1]")
    device_class = args.device or guess_device_class(args.root, args.backend)
    space = _load_space(args.space, args.resolution)
    try:
        names = parse_arch_list(args.archs, space.name, args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    api = _api(args) if not (args.lut or args.measure_lut) else None
    backend = _backend(args)
    try:
        target = _target(backend, args, device_class)
        protocol = _protocol(args)
        bar = Progress(label="validate") if not args.quiet else None
        net_protocol = dataclasses.replace(protocol, max_time_s=args.max_time_per_net)
        if args.measure_lut:  # ops and networks in the same rounds, so drift hits both alike
            lut, results = validate_interleaved(
                space.name, space.resolution_str, names, backend, _session(backend, args, lambda *a: None),
                net_protocol, rounds=args.rounds, seed=args.seed, target=target.id, progress=bar,
                estimator=args.estimator)
        else:
            lut = LutValues.from_file(args.lut, args.target or target.id) if args.lut else \
                LutValues.from_server(api, target.id, space, names)
            results = run_validation(space.name, space.resolution_str, names, backend, net_protocol, lut,
                                     rounds=args.rounds, seed=args.seed, progress=bar, estimator=args.estimator)
        if bar:
            bar.close()
        calibration, held = None, None
        if args.calibrate:
            fit, held = split_for_calibration(results, fit_share=args.fit_share, seed=args.seed)
            try:
                calibration = Calibration.select([r.validation() for r in fit])
            except ValueError as e:
                log.warning("no calibration: %s", e)
        summary = report(results, calibration, held)
        summary.update(target=target.id, space=space.name, resolution=space.resolution_str,
                       lut_version=lut.lut_version)
        if api is not None:
            name = sanitize_name(args.name) if args.name else default_device_name()
            stored = api.request("POST", "/validations", json=validation_body(
                new_run_id(), target.id, name, space, lut.lut_version, results))
            summary["stored"] = stored
            if args.calibrate:
                summary["server_calibration"] = api.request("POST", "/calibrations/fit", json={
                    "target": target.id, "space": space.name, "resolution": space.resolution_str,
                    "seed": args.seed, "fit_share": args.fit_share})
        if args.json:
            for r in results:
                print(json.dumps(r.to_dict(), sort_keys=True))
            print(json.dumps(summary, sort_keys=True, default=str))
        else:
            rows = [[r.arch, r.kind, round(r.predicted_ms, 3), round(r.measured_ms, 3), f"{100 * r.error:+.1f}%"]
                    for r in results]
            print(render(["arch", "kind", "LUT sum ms", "measured ms", "error"], rows))
            _print_error_summary("raw", summary["raw"])
            if "calibrated" in summary:
                _print_error_summary(f"calibrated ({Calibration.from_dict(summary['calibration']).describe()})",
                                     summary["calibrated"])
                _print_error_summary("calibrated, held-out architectures", summary["calibrated_heldout"])
        return EXIT_OK
    finally:
        backend.close()
        if api is not None:
            api.close()


def _print_error_summary(label: str, s: Dict[str, Any]) -> None:
    if not s.get("n"):
        return
    print(f"{label}: median |error| {100 * s['median_abs_error']:.2f}%, max {100 * s['max_abs_error']:.2f}%, "
          f"within 5% {100 * s['within_5pct']:.0f}%, within 10% {100 * s['within_10pct']:.0f}% (n={s['n']})")


def main(argv: Optional[List[str]] = None) -> int:
    from profiler_agent.api import AuthError, RequestRejected, ServerUnavailable
    from profiler_agent.offline import RunFileError

    parser = build_parser()
    args = parser.parse_args(_normalize_argv(list(sys.argv[1:] if argv is None else argv)))
    _setup_logging(args)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"profiler-agent: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except AuthError as e:
        print(f"profiler-agent: error: {e}", file=sys.stderr)
        return EXIT_AUTH
    except ServerUnavailable as e:
        print(f"profiler-agent: error: server unreachable: {e}", file=sys.stderr)
        return EXIT_PENDING
    except (RequestRejected, RunFileError, LutError) as e:
        print(f"profiler-agent: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("profiler-agent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
