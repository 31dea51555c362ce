"""`lut predictor eval`: fit on a seeded share of a LUT file's entries, score the rest (entry point lut.commands)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from lut_server.predictor.errors import PredictorError
from lut_server.predictor.lutfile import read_doc, target_entries
from lut_server.predictor.names import CHOICES, LEARNERS
from lutcore.cli.table import render

MAX_ARCHS = 1000
OP_FIGURES = ("n_train", "n_test", "median_abs_error", "within_5pct", "within_10pct", "interval_coverage",
              "interval_median_width")
NETWORK_FIGURES = ("networks", "network_median_abs_error", "network_max_abs_error", "network_within_10pct",
                   "network_interval_coverage_linear", "network_interval_coverage_rss")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictor", help="latency predictions for LUT entries nobody measured")
    psub = p.add_subparsers(dest="predictor_cmd", metavar="ACTION")
    psub.required = True
    e = psub.add_parser("eval", help="fit on a seeded share of a LUT file's entries and score the rest",
                        description="Fit the predictor on a random share of one target's measured entries "
                                    "and score it on the others: single-op errors, interval coverage, and "
                                    "with --space/--archs the sums of whole networks.")
    e.add_argument("--lut", required=True, help="an exported LUT (nas-lut/1 JSON, from `lut export`)")
    e.add_argument("--target", help="target id (default: the file's only target)")
    e.add_argument("--train-share", type=_share, default=0.25, help="share of the entries to fit on (default 0.25)")
    e.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    e.add_argument("--space", help="with --archs: the space whose networks to sum")
    e.add_argument("--resolution", "-r", help="with --space: HxW of the LUT (default: the space's own)")
    e.add_argument("--archs", help="published, random:N and/or architecture names, comma-separated")
    e.add_argument("--choose", default="random", choices=CHOICES,
                   help="how the training share is chosen: random (default), random+fixed (the space's fixed ops "
                        "first), random+family (one op of each family first) or planner (by weighted uncertainty, "
                        "lut_server.predictor.planner); random+fixed and planner need --space")
    e.add_argument("--learner", default=LEARNERS[0], choices=LEARNERS, help=f"residual model (default {LEARNERS[0]})")
    e.add_argument("--coverage", type=_share, default=0.9, help="intended coverage of the intervals (default 0.9)")
    e.add_argument("--json", action="store_true", help="print one JSON object (with per-network rows)")
    e.set_defaults(func=cmd_eval)


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie strictly between 0 and 1")
    return v


def _archs(args: argparse.Namespace) -> Optional[List[Any]]:
    if not args.archs:
        if args.space and args.choose == "random":
            raise PredictorError("--space without --archs: name the networks to sum, e.g. --archs published,random:50")
        return None
    if not args.space:
        raise PredictorError("--archs needs --space")
    from lutcore.spaces import get_arch, parse_arch_list

    try:
        names = parse_arch_list(args.archs, args.space, args.seed, limit=MAX_ARCHS)
    except ValueError as e:
        raise PredictorError(str(e)) from None
    if not names:
        raise PredictorError(f"--archs {args.archs!r} names no architecture of {args.space}")
    return [get_arch(n, args.resolution) for n in names]


def cmd_eval(args: argparse.Namespace) -> int:
    from lut_server.predictor.evaluation import evaluate
    from lut_server.predictor.model import Predictor
    from lut_server.predictor.selection import choose

    tid, entries = target_entries(read_doc(args.lut), args.target, args.lut)
    archs = _archs(args)
    space = None
    if args.space:
        from lutcore.spaces import get_space

        space = get_space(args.space, args.resolution)
    train = choose(entries, args.choose, args.train_share, args.seed, space, args.learner)
    result: Dict[str, Any] = {"target": tid, "train_share": args.train_share, "seed": args.seed,
                              "choose": args.choose, "learner": args.learner, "coverage_goal": args.coverage}
    result.update(evaluate(entries, train, Predictor(args.learner, args.coverage, seed=args.seed), archs))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    rows = [(k, result[k]) for k in OP_FIGURES + NETWORK_FIGURES if k in result]
    print(f"{tid}: trained on {result['n_train']} of {result['n_train'] + result['n_test']} entries "
          f"(share {args.train_share}, {args.choose}, seed {args.seed}, {args.learner})")
    print(render(["figure", "value"], rows))
    sys.stdout.flush()
    return 0
