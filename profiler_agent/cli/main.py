"""The entry point: parse, set up logging, run the command, map errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Dict, List, Optional

from lutcore.errors import LutError
from profiler_agent.cli.device_info import cmd_backends, cmd_probe
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.parser import build_parser, normalize_argv
from profiler_agent.cli.profile import cmd_profile
from profiler_agent.cli.run import cmd_run
from profiler_agent.cli.upload import cmd_flush, cmd_sync
from profiler_agent.cli.validate import cmd_validate
from profiler_agent.exit_codes import EXIT_AUTH, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PENDING, EXIT_USAGE

COMMAND_FUNCS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "profile": cmd_profile, "sync": cmd_sync, "flush": cmd_flush, "probe": cmd_probe,
    "backends": cmd_backends, "validate": cmd_validate,
}


def log_level(args: argparse.Namespace) -> int:
    """``--log-level`` if given, else -v (debug) / -q (warning) / info."""
    if getattr(args, "log_level", None):
        level: int = getattr(logging, args.log_level.upper())
        return level
    if getattr(args, "verbose", 0):
        return logging.DEBUG
    return logging.WARNING if getattr(args, "quiet", False) else logging.INFO


def setup_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=log_level(args), format="%(asctime)s profiler-agent %(levelname)s %(message)s", datefmt="%H:%M:%S",
        stream=sys.stderr, force=True,
    )
    if getattr(args, "verbose", 0) < 2:  # httpx logs every request at INFO
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Optional[List[str]] = None) -> int:
    from profiler_agent.api import AuthError, RequestRejected, ServerUnavailable
    from profiler_agent.offline import RunFileError

    parser = build_parser()
    args = parser.parse_args(normalize_argv(list(sys.argv[1:] if argv is None else argv)))
    setup_logging(args)
    try:
        return int(COMMAND_FUNCS[args.command](args) or 0)
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
        return EXIT_INTERRUPTED
