"""The command line: commands, their options and help (``profiler-agent COMMAND --help``)."""

from __future__ import annotations

import argparse
from typing import List, Union

from profiler_agent.cli.backend_flags import add_backend_flags
from profiler_agent.cli.machine import env
from profiler_agent.exit_codes import EPILOG
from profiler_agent.rounds import ESTIMATORS, NETWORK_MAX_EXTRA, NETWORK_SPREAD_TOL
from profiler_agent.timing.sensitivity import AUTO_SENSITIVITY, DEFAULT_SENSITIVITY

COMMANDS = ("run", "profile", "sync", "flush", "probe", "backends", "validate")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _sensitivity(text: str) -> Union[float, str]:
    """``--speed-sensitivity``: a share (range-checked with the backend) or ``auto``."""
    if text == AUTO_SENSITIVITY:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor {AUTO_SENSITIVITY!r}") from None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for HTTP)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                   help="log this level and above (overrides -v and -q; default info)")


def _add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON instead of a table")


def _add_server(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--server", default=env("LUT_SERVER"), help="LUT server URL (env LUT_SERVER)")
    g.add_argument("--token", default=env("LUT_TOKEN"), help="agent token (env LUT_TOKEN)")
    g.add_argument("--token-file", help="read the token from this file instead")
    g.add_argument("--retries", type=int, default=5, help="retries of a request on outages/5xx (default 5)")
    g.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")


def _add_measuring(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("measuring")
    g.add_argument("--device", default=env("LUT_DEVICE"),
                   help="device class of the target, e.g. xavier, orin, cpu-x86 (env LUT_DEVICE)")
    g.add_argument("--name", default=None,
                   help="this board's name as registered (env LUT_NAME, default: host name); "
                        "agent tokens are bound to it")
    g.add_argument("--backend", default=env("LUT_BACKEND", "pytorch-cpu"),
                   help="pytorch-cpu, pytorch-cuda, tensorrt or onnxruntime (default pytorch-cpu)")
    g.add_argument("--precision", default=env("LUT_PRECISION", "fp32"), help="fp32, fp16 or int8")
    g.add_argument("--batch-size", type=int, default=1, help="batch size of the target (default 1)")
    g.add_argument("--target-setting", action="append", default=[], metavar="K=V",
                   help="an extra setting in the target id, e.g. power_mode=MAXN (repeatable)")
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
    g.add_argument("--speed-sensitivity", type=_sensitivity, default=DEFAULT_SENSITIVITY,
                   help=f"with --speed-ref: share of the reference's slowdown that ops feel (default "
                        f"{DEFAULT_SENSITIVITY}; keep one share for every process of a target), or "
                        f"'{AUTO_SENSITIVITY}': the share each batch's rounds agree best under, which steadies a "
                        "batch's rounds but moves its level against other batches'")
    g.add_argument("--speed-ref-fresh", action="store_true",
                   help="with --speed-ref: use this process's own reference base, not the one this machine "
                        "kept for the backend ($LUT_SPEED_BASE, else ~/.cache/profiler-agent/speed-base.json)")
    g.add_argument("--root", default="/", help="filesystem root to probe (fixtures in tests)")
    add_backend_flags(p)


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


def _add_run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="daemon: claim jobs from the server, time them, post the results")
    _add_common(r)
    _add_server(r)
    _add_measuring(r)
    _add_rounds(r)
    g = r.add_argument_group("daemon")
    g.add_argument("--exit-when-idle", action="store_true",
                   help="exit once the target's queue is empty and no other agent holds a job of it (jobs other "
                        "agents hold are waited for, until they are done or their leases end)")
    g.add_argument("--claim", type=int, default=32,
                   help="jobs claimed at a time; their ops share the rounds (default 32)")
    g.add_argument("--lease", type=float, default=300.0, help="lease in seconds, renewed by heartbeats (300)")
    g.add_argument("--poll", type=float, default=5.0, help="first wait when the queue is empty (doubles to 60s)")
    g.add_argument("--term-grace", type=float, default=30.0,
                   help="on SIGTERM finish the current jobs if that takes less than this, else release them")
    g.add_argument("--spool", default=env("LUT_SPOOL"), help="outbox directory (env LUT_SPOOL)")


def _add_profile(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("profile", help="offline: time every unique op of a space into a JSONL run file")
    _add_common(pr)
    _add_measuring(pr)
    _add_rounds(pr)
    pr.add_argument("--space", required=True, help="a built-in space name or a YAML/JSON space file")
    pr.add_argument("--resolution", "-r", help="HxW, e.g. 256x512 (default: the space's own)")
    pr.add_argument("-o", "--output", required=True, help="the run file to write (JSONL)")
    pr.add_argument("--resume", action="store_true",
                    help="continue an interrupted run file (of the same target, space and resolution)")
    pr.add_argument("--limit", type=int, default=None, help="time only the first N ops (smoke tests)")
    _add_json(pr, "the run's summary")
    g = pr.add_argument_group("server (optional)")
    g.add_argument("--server", default=None,
                   help="skip the ops this LUT server already has for the target (re-timing them would only "
                        "move values a calibration rests on); the run file holds the rest, for `sync`")
    g.add_argument("--token", default=env("LUT_TOKEN"), help="token for --server, if it requires one to read")
    g.add_argument("--remeasure", action="store_true", help="with --server: time the ops the server has too")


def _add_validate(sub: argparse._SubParsersAction) -> None:
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
    va.add_argument("--spread-tol", dest="net_spread_tol", type=float, default=NETWORK_SPREAD_TOL,
                    help="a network whose kept rounds differ by more than this (relative) gets an extra round "
                         f"({NETWORK_SPREAD_TOL}; tighter than an op's: nothing averages a network's noise)")
    va.add_argument("--max-extra-rounds", dest="net_max_extra", type=int, default=NETWORK_MAX_EXTRA,
                    help=f"extra rounds at most per network (default {NETWORK_MAX_EXTRA})")
    va.add_argument("--calibrate", action="store_true",
                    help="fit a calibration (identity, scale or affine, chosen by leave-one-out) on half the "
                         "random archs and score it on the rest")
    va.add_argument("--fit-share", type=float, default=0.5,
                    help="with --calibrate: share of the random archs the calibration is fitted on; the rest "
                         "score it (default 0.5; 1.0 fits on all, scored by leave-one-out only)")
    va.add_argument("--json", action="store_true",
                    help="print JSON lines instead of a table: one object per architecture, then a summary")


def build_parser() -> argparse.ArgumentParser:
    from profiler_agent.offline import agent_version

    p = argparse.ArgumentParser(
        prog="profiler-agent",
        description="Times ops on this device for a LUT server. Without a command it runs the daemon "
        "(same as `profiler-agent run`).",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"profiler-agent {agent_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_profile(sub)

    sy = sub.add_parser("sync", help="upload a run file written by `profile` (safe to repeat)")
    _add_common(sy)
    _add_server(sy)
    sy.add_argument("run_file", help="the JSONL file `profile -o` wrote")
    sy.add_argument("--name", default=None, help="register/post as this device name instead of the file's")
    _add_json(sy, "what the server accepted and rejected")

    fl = sub.add_parser("flush", help="post what waits in the spool, then exit")
    _add_common(fl)
    _add_server(fl)
    fl.add_argument("--spool", default=env("LUT_SPOOL"), help="outbox directory (env LUT_SPOOL)")

    pb = sub.add_parser("probe", help="print this device's fingerprint")
    _add_common(pb)
    pb.add_argument("--root", default="/", help="filesystem root to read (a fixture tree in tests)")
    pb.add_argument("--backend", default=None, help="include this backend's library versions")
    _add_json(pb, "the fingerprint")

    _add_validate(sub)

    bk = sub.add_parser("backends", help="which backends can run here, why not, and the options each takes")
    _add_common(bk)
    _add_json(bk, "each backend's usability and options")
    return p


def normalize_argv(argv: List[str]) -> List[str]:
    """No command (only options) means the daemon: ``profiler-agent --device x`` == ``... run --device x``."""
    if not argv:
        return ["--help"]
    if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    return ["run"] + argv
