"""``profiler-agent run``: the daemon."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from typing import Any, Dict, List

from lutcore.cli.table import render
from profiler_agent.cli import components
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.machine import device_name
from profiler_agent.exit_codes import EXIT_OK

log = logging.getLogger("profiler_agent")


def cmd_run(args: argparse.Namespace) -> int:
    from profiler_agent.daemon import Agent, AgentConfig, wire_fingerprint
    from profiler_agent.progress import QueueProgress
    from profiler_agent.spool import Spool, default_spool_dir

    if not args.device:
        raise UsageError("no device class: pass --device (e.g. xavier, cpu-x86) or set LUT_DEVICE")
    if args.claim < 1 or args.lease <= 0:
        raise UsageError("--claim must be >= 1 and --lease > 0")
    stop = threading.Event()

    def retry_wait(seconds: float) -> None:  # a stop request ends the wait between HTTP retries
        stop.wait(seconds)

    api = components.api_client(args, sleep=retry_wait)
    name = device_name(args.name)
    spool = Spool(args.spool or default_spool_dir(), log=lambda m: log.warning("%s", m))
    backend = components.backend(args)
    try:
        target = components.target(backend, args, args.device)
        fingerprint = wire_fingerprint(components.probe(args, args.backend))
        agent_ref: List[Any] = []

        def progress(done: int, total: int, key: str) -> None:
            log.debug("timed %d/%d %s", done, total, key)
            if done < total:  # the claim's last op is done: finishing costs nothing more
                agent_ref[0].check_abort()

        cfg = AgentConfig(
            device_class=args.device, name=name, claim=args.claim, lease_s=args.lease,
            exit_when_idle=args.exit_when_idle, poll_s=args.poll, term_grace_s=args.term_grace,
        )
        agent = Agent(api, components.session(backend, args, progress), target, fingerprint, spool, cfg,
                      stop=stop, progress=QueueProgress(target.id).report)
        agent_ref.append(agent)
        previous = install_stop_handlers(agent)
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


def install_stop_handlers(agent: Any) -> Dict[signal.Signals, Any]:
    """SIGTERM/SIGINT ask the agent to stop; a second signal makes it abort the current claim."""
    previous: Dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        agent.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (embedded use): the caller stops it
            previous[sig] = signal.signal(sig, handler)
    return previous
