"""``profiler-agent probe`` and ``backends``: what this machine is and what can time ops on it."""

from __future__ import annotations

import argparse

from lutcore.cli.table import render
from profiler_agent.cli.output import flatten, print_json
from profiler_agent.exit_codes import EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from profiler_agent.probe import fingerprint_digest, probe

    fp = probe(root=args.root, backend=args.backend)
    if args.json:
        print_json(fp)
        return EXIT_OK
    print(f"fingerprint {fingerprint_digest(fp)}")
    for line in flatten({k: v for k, v in fp.items() if k != "warnings"}):
        print(line)
    for w in fp.get("warnings", []):
        print(f"warning: {w}")
    return EXIT_OK


def cmd_backends(args: argparse.Namespace) -> int:
    from profiler_agent.backends import REGISTRY, available_backends

    avail = available_backends()
    if args.json:
        print_json({k: {"usable": v is None, "reason": v,
                        "options": {o.name: {"flag": o.option, "type": o.type.__name__, "default": o.default,
                                             "help": o.help} for o in REGISTRY[k].options}}
                    for k, v in avail.items()})
    else:
        rows = [(k, "yes" if v is None else "no", v or "") for k, v in avail.items()]
        print(render(["backend", "usable", "why not"], rows, align="lll"))
        print("\noptions (`profiler-agent run --help` says what each does):")
        for k in avail:
            print(f"  {k}: {', '.join(o.option for o in REGISTRY[k].options)}")
    return EXIT_OK
