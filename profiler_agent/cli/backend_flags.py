"""Backend options on the command line: one flag per option the backends declare (``backends.registry``)."""

from __future__ import annotations

import argparse
from typing import Any, Dict

from profiler_agent.backends.registry import BackendOption, all_options
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.machine import env


def _owners(name: str) -> str:
    from profiler_agent.backends.registry import REGISTRY

    return ", ".join(e.name for e in REGISTRY.values() if e.option(name) is not None)


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """A group of every declared option; each defaults to None (not given: the backend's own default)."""
    g = p.add_argument_group("backend options (each applies to the backends named in its help)")
    for opt in all_options().values():
        where = f" [{_owners(opt.name)}]"
        if opt.type is bool:
            g.add_argument(opt.option, dest=opt.name, action="store_true", default=None, help=opt.help + where)
            g.add_argument("--no-" + opt.option[2:], dest=opt.name, action="store_false",
                           help=f"the opposite of {opt.option}")
        else:
            g.add_argument(opt.option, dest=opt.name, type=opt.type, default=None, choices=opt.choices,
                           metavar=_metavar(opt), help=opt.help + where)


def _metavar(opt: BackendOption) -> str:
    if opt.choices is not None:
        return "{" + ",".join(str(c) for c in opt.choices) + "}"
    if opt.type is int:
        return "N"
    if opt.type is float:
        return "X"
    return "DIR" if opt.name.endswith("_dir") else "VALUE"


def backend_options(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """The keywords for backend ``name`` from the flags given; a flag it does not declare is an error."""
    from profiler_agent.backends import backend_entry

    try:
        entry = backend_entry(name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    out: Dict[str, Any] = {"precision": args.precision}
    given = {k: getattr(args, k, None) for k in all_options()}
    if given.get("cuda_graphs") is None and env("LUT_CUDA_GRAPHS") == "0":  # GPU backends default to graphs
        given["cuda_graphs"] = False if entry.option("cuda_graphs") else None
    for k, v in given.items():
        if v is None:
            continue
        opt = entry.option(k)
        if opt is None:
            flag = all_options()[k].option
            raise UsageError(f"backend {name} has no {flag} option (it is for {_owners(k)})")
        out[k] = v
    if entry.reads_root and getattr(args, "root", "/") != "/":  # clocks and power mode from a fixture tree
        out["root"] = args.root
    return out
