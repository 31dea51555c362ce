"""``profiler-agent sync`` and ``flush``: results kept on disk go to the server."""

from __future__ import annotations

import argparse
import logging
import sys

from profiler_agent.cli import components
from profiler_agent.cli.machine import sanitize_name
from profiler_agent.cli.output import print_json
from profiler_agent.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_PENDING

log = logging.getLogger("profiler_agent")


def cmd_sync(args: argparse.Namespace) -> int:
    from profiler_agent.offline import sync_run

    api = components.api_client(args)
    try:
        res = sync_run(args.run_file, api, device_name=sanitize_name(args.name) if args.name else None,
                       log=lambda m: log.warning("%s", m))
    finally:
        api.close()
    if args.json:
        print_json(res)
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
    api = components.api_client(args)
    try:
        res = spool.flush(api)
    finally:
        api.close()
    dropped = f", {res.jobs_dropped} job id(s) dropped (leases lost to other boards)" if res.jobs_dropped else ""
    print(f"flushed {res.batches} batch(es): {res.accepted} accepted, {res.duplicates} duplicate(s), "
          f"{len(res.rejected)} rejected{dropped}; {res.pending} batch(es) still pending in {spool.pending_dir}")
    if res.dead:
        print(f"profiler-agent: the server refused {res.dead} batch(es) as a whole; kept in {spool.dead_dir} "
              "with the reason beside each (.error.txt)", file=sys.stderr)
    if res.error:
        print(f"profiler-agent: server unreachable: {res.error}", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_ERROR if res.dead else EXIT_OK
