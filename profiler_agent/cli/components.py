"""The parts a command is made of, built from its options: API client, backend, target, session."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from profiler_agent.cli.backend_flags import backend_options
from profiler_agent.cli.errors import UsageError
from profiler_agent.timing.sensitivity import AUTO_SENSITIVITY

log = logging.getLogger("profiler_agent")


def token(args: argparse.Namespace) -> Optional[str]:
    if getattr(args, "token_file", None):
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--token-file {args.token_file}: {e.strerror}") from None
    tok: Optional[str] = args.token
    return tok


def api_client(args: argparse.Namespace, sleep: Optional[Callable[[float], None]] = None) -> Any:
    """A LutApi for ``--server``; ``sleep`` waits between retries (the daemon's ends early on SIGTERM)."""
    import time

    from profiler_agent.api import LutApi

    if not args.server:
        raise UsageError("no server: pass --server URL or set LUT_SERVER")
    tok = token(args)
    if not tok:
        raise UsageError("no token: pass --token T (or --token-file) or set LUT_TOKEN")
    return LutApi(args.server, tok, timeout=args.timeout, retries=args.retries, sleep=sleep or time.sleep,
                  log=lambda msg: log.warning("%s", msg))


def protocol(args: argparse.Namespace) -> Any:
    from profiler_agent.timing import TimingProtocol

    try:
        return TimingProtocol(
            ci=args.ci, max_time_s=args.max_time_per_op, min_samples=args.min_samples,
            max_warmup_s=max(args.max_warmup, 0.0), warmup_s=min(0.025, max(args.max_warmup, 0.0)),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def backend(args: argparse.Namespace) -> Any:
    from profiler_agent.backends import BackendUnavailable, get_backend

    try:
        b = get_backend(args.backend, **backend_options(args.backend, args))
    except BackendUnavailable as e:
        raise UsageError(f"{e}; see `profiler-agent backends`") from None
    except (ValueError, TypeError) as e:
        raise UsageError(f"backend {args.backend}: {e}") from None
    if getattr(args, "speed_ref", False):
        if args.speed_sensitivity != AUTO_SENSITIVITY and not 0 <= args.speed_sensitivity <= 2:
            b.close()
            raise UsageError(f"--speed-sensitivity {args.speed_sensitivity} must be between 0 and 2")
        from profiler_agent.speed_base import SpeedBases

        bases = None if args.speed_ref_fresh else SpeedBases()
        try:
            ref = b.use_speed_reference(sensitivity=args.speed_sensitivity, bases=bases)
        except BackendUnavailable as e:
            b.close()
            raise UsageError(f"--speed-ref: {e}") from None
        kept = f" (the base kept in {bases.path})" if bases is not None else " (this process's own base)"
        log.info("speed reference %s: %.4f ms per call%s", ref.name, 1e3 * (ref.base_per_call_s or 0.0), kept)
    return b


def target(b: Any, args: argparse.Namespace, device_class: str) -> Any:
    """The backend's target for ``device_class``, with ``--target-setting``s and ``--batch-size``."""
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size} must be at least 1")
    extra: Dict[str, str] = {}
    for item in args.target_setting:
        k, eq, v = item.partition("=")
        if not eq or not k or not v:
            raise UsageError(f"--target-setting {item!r} must look like name=value")
        extra[k] = v
    try:
        t = b.target(device_class, extra)
    except ValueError as e:
        raise UsageError(f"target {device_class!r} with settings {extra}: {e}") from None
    if args.batch_size != t.batch:
        t = type(t)(**dict(t.model_dump(), batch=args.batch_size))
    return t


def probe(args: argparse.Namespace, backend_name: Optional[str]) -> Dict[str, Any]:
    """The full probe (identity and clocks); its warnings (unlocked clocks, heat) are logged."""
    from profiler_agent.probe import probe as run_probe

    fp: Dict[str, Any] = run_probe(root=args.root, backend=backend_name)
    for w in fp.get("warnings", []):
        log.warning("probe: %s", w)
    return fp


def session(b: Any, args: argparse.Namespace, progress: Callable[[int, int, str], None]) -> Any:
    from profiler_agent.session import ProfileSession

    return ProfileSession(
        b, protocol(args), root=args.root, canary_every=args.canary_every,
        drift_tol=args.drift_tol, seed=args.seed, progress=progress, plan=round_plan(args, b),
    )


def round_plan(args: argparse.Namespace, b: Any) -> Any:
    """Op rounds for run/profile; validate times networks in rounds of its own (one pass per op there)."""
    from profiler_agent.rounds import RoundPlan

    if not hasattr(args, "spread_tol"):
        return None
    rounds = args.rounds if args.rounds is not None else getattr(b, "default_rounds", 5)
    try:
        return RoundPlan(rounds=rounds, estimator=args.estimator, spread_tol=args.spread_tol,
                         max_extra=args.max_extra_rounds)
    except ValueError as e:
        raise UsageError(str(e)) from None


def load_space(name: str, resolution: Optional[str]) -> Any:
    """A built-in space, or the one space a YAML/JSON file defines, at ``resolution``."""
    from lutcore.spaces import get_space

    if Path(name).suffix.lower() in (".yaml", ".yml", ".json") and Path(name).exists():
        from lutcore.spaces.definition import load_space_file

        defs = load_space_file(name)
        if len(defs) != 1:
            raise UsageError(f"{name} defines {len(defs)} spaces; pass a file with one, or a built-in name")
        return defs[0].at(resolution)
    return get_space(name, resolution)
