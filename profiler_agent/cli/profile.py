"""``profiler-agent profile``: time a space's ops offline into a run file."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Dict

from profiler_agent.cli import components
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.machine import device_name, guess_device_class
from profiler_agent.cli.output import print_json, render_profile
from profiler_agent.exit_codes import EXIT_OK

log = logging.getLogger("profiler_agent")


def cmd_profile(args: argparse.Namespace) -> int:
    from profiler_agent.daemon import new_run_id, wire_fingerprint
    from profiler_agent.progress import Progress
    from profiler_agent.workflows.profiling import profile_space, profile_summary, select_ops

    device_class = args.device or guess_device_class(args.root, args.backend)
    space = components.load_space(args.space, args.resolution)
    ops = select_ops(space, args.batch_size, args.limit)
    backend = components.backend(args)
    try:
        target = components.target(backend, args, device_class)
        if args.server and not args.remeasure:
            ops = _drop_known(ops, target.id, args)
        full = components.probe(args, args.backend)
        log.info("profiling %d unique ops of %s at %s on %s", len(ops), space.name, space.resolution_str, target.id)
        bar = Progress(label=f"{space.name} {space.resolution_str}")
        t0 = time.monotonic()
        header, measured = profile_space(
            lambda cb: components.session(backend, args, cb), space, ops, target, device_name(args.name),
            new_run_id(), wire_fingerprint(full), full, backend.versions(), args.output,
            resume=args.resume, seed=args.seed, progress=None if args.quiet else bar,
        )
        bar.close()
        wall = time.monotonic() - t0
    finally:
        backend.close()
    summary = profile_summary(header, measured, wall)
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(render_profile(summary, measured))
    return EXIT_OK


def _drop_known(ops: Dict[str, Any], target_id: str, args: argparse.Namespace) -> Dict[str, Any]:
    """The ops the server has no entry for (``profile --server``)."""
    from profiler_agent.api import ApiError, LutApi
    from profiler_agent.workflows.profiling import known_keys

    try:
        with LutApi(args.server, args.token, retries=2) as api:
            have = known_keys(api, target_id, list(ops))
    except ApiError as e:
        raise UsageError(f"--server {args.server}: cannot look up the LUT: {e}") from None
    if have:
        log.warning("skipping %d of %d op(s) the server already has for %s (--remeasure times them anyway)",
                    len(have & set(ops)), len(ops), target_id)
    return {k: v for k, v in ops.items() if k not in have}
