"""``profiler-agent validate``: whole networks against the LUT's sums (the steps live in ``workflows.validation``)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

from lutcore.calibration import Calibration
from lutcore.cli.table import render
from profiler_agent.cli import components
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.machine import device_name, guess_device_class
from profiler_agent.cli.output import error_summary_line
from profiler_agent.exit_codes import EXIT_OK

log = logging.getLogger("profiler_agent")


def cmd_validate(args: argparse.Namespace) -> int:
    from profiler_agent.daemon import new_run_id
    from profiler_agent.progress import Progress
    from profiler_agent.validate import LutValues, report
    from profiler_agent.workflows import validation as wf

    if not 0 < args.fit_share <= 1:
        raise UsageError(f"--fit-share {args.fit_share} must be in (0, 1]")
    device_class = args.device or guess_device_class(args.root, args.backend)
    space = components.load_space(args.space, args.resolution)
    try:
        plan = wf.ValidationPlan.make(space, args.archs, seed=args.seed, rounds=args.rounds,
                                      max_time_per_net=args.max_time_per_net, estimator=args.estimator,
                                      spread_tol=args.net_spread_tol, max_extra=args.net_max_extra)
    except ValueError as e:
        raise UsageError(str(e)) from None
    api = components.api_client(args) if not (args.lut or args.measure_lut) else None
    backend = components.backend(args)
    try:
        target = components.target(backend, args, device_class)
        protocol = components.protocol(args)
        bar = Progress(label="validate") if not args.quiet else None
        if args.measure_lut:
            session = components.session(backend, args, lambda *a: None)
            lut, results = wf.time_with_measured_lut(plan, backend, session, protocol, target.id, bar)
        elif api is not None:
            lut, results = wf.time_against_server(api, target.id, plan, backend, protocol, bar)
        else:
            lut = LutValues.from_file(args.lut, args.target or target.id)
            results = wf.time_against(plan, backend, protocol, lut, bar)
        if bar:
            bar.close()
        calibration: Optional[Calibration] = None
        held = None
        if args.calibrate:
            calibration, held, why_not = wf.fit_calibration(results, args.fit_share, args.seed)
            if calibration is None:
                log.warning("no calibration: %s", why_not)
        summary = report(results, calibration, held)
        summary.update(target=target.id, space=space.name, resolution=space.resolution_str,
                       lut_version=lut.lut_version)
        if api is not None:
            summary.update(wf.publish(api, new_run_id(), target.id, device_name(args.name), plan, lut, results,
                                      calibrate=args.calibrate, fit_share=args.fit_share))
        if args.json:
            for r in results:
                print(json.dumps(r.to_dict(), sort_keys=True))
            print(json.dumps(summary, sort_keys=True, default=str))
        else:
            for line in text_report(results, summary):
                print(line)
        return EXIT_OK
    finally:
        backend.close()
        if api is not None:
            api.close()


def _spread(r: Any) -> str:
    """The kept rounds' spread, and the extra rounds it cost (``+N``)."""
    if r.spread is None:
        return "-"
    return f"{100 * r.spread:.1f}%" + (f" (+{r.extra_rounds})" if r.extra_rounds else "")


def text_report(results: List[Any], summary: Dict[str, Any]) -> List[str]:
    """The table of architectures, then one line per error summary and calibration."""
    from profiler_agent.workflows.validation import describe_server_calibration

    rows = [[r.arch, r.kind, round(r.predicted_ms, 3), round(r.measured_ms, 3), f"{100 * r.error:+.1f}%",
             _spread(r)] for r in results]
    lines = [render(["arch", "kind", "LUT sum ms", "measured ms", "error", "round spread"], rows)]
    parts: List[Tuple[str, Optional[Dict[str, Any]]]] = [("raw", summary["raw"])]
    if "calibrated" in summary:
        described = Calibration.from_dict(summary["calibration"]).describe()
        parts += [(f"calibrated ({described})", summary["calibrated"]),
                  ("calibrated, held-out architectures", summary.get("calibrated_heldout"))]
    lines += [error_summary_line(label, s) for label, s in parts if s and s.get("n")]
    if "server_calibration" in summary:
        lines.append(f"server calibration: {describe_server_calibration(summary['server_calibration'])}")
    return lines
