"""Predicted cells for entries nobody measured, served only when asked (``missing: "predict"``, issue 20).

Never silent: a predicted value is always flagged (``predicted``) and carries its interval (``lo``/
``hi``: the predictor's conformal 90% interval; a measured cell's interval is its value). The
default mode, ``report``, leaves missing cells missing exactly as before.

One predictor per (target, lut_version, metric), fitted on that target's measured entries the first
time a request needs it and kept until the LUT moves (every change of an entry bumps the version), so
it is fitted once per LUT change, by one request while the others with the same key wait for it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from sqlalchemy import Connection

from lut_server.predictor import PredictorError
from lut_server.predictor.errors import MIN_TRAIN
from lut_server.predictor.primitives import predictable
from lut_server.store import entries
from lut_server.store.registry import op_specs, target_row
from lut_server.util import BadInput
from lutcore.errors import LutError
from lutcore.ops import OpSpec, spec_from_dict
from lutcore.spaces import Space
from lutcore.spaces.cells import CellLayout
from lutcore.spaces.cells.space import CellSpace

if TYPE_CHECKING:  # the model (numpy, LightGBM) is imported by the first request that predicts
    from lut_server.predictor import Predictor

MODES = ("report", "predict")
MAX_FIT_ENTRIES = 3000  # bounds one fit (eleven LightGBM fits of this many rows: seconds, not minutes)
MAX_PREDICT_KEYS = 20_000  # a /lookup with missing="predict" names at most this many keys
RULE = "linear"  # how search_client adds predicted intervals into a network's (lutcore.netsum)

FitKey = Tuple[str, int, str]


class PredictorCache:
    """Fitted predictors by (target, lut_version, metric); the least recently used go first."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._d: OrderedDict[FitKey, Predictor] = OrderedDict()
        self._gates: Dict[FitKey, threading.Lock] = {}
        self._lock = threading.Lock()
        self.fits = 0  # how many fits this worker ran (tests check "once per LUT change")

    def for_target(self, conn: Connection, tid: str, metric: str) -> Predictor:
        """The target's predictor for its current LUT version, fitted now if no request fitted it yet."""
        got = target_row(conn, tid)
        if got is None:
            raise _too_few(tid, 0)
        target_id, version = got
        key = (tid, version, metric)
        with self._lock:
            hit = self._d.get(key)
            if hit is not None:
                self._d.move_to_end(key)
                return hit
            gate = self._gates.setdefault(key, threading.Lock())
        try:
            with gate:
                with self._lock:
                    hit = self._d.get(key)
                if hit is not None:
                    return hit
                p = fit_target(conn, tid, target_id, metric)
                with self._lock:
                    self.fits += 1
                    self._d[key] = p
                    while len(self._d) > self.size:
                        self._d.popitem(last=False)
                return p
        finally:
            with self._lock:
                self._gates.pop(key, None)


def _too_few(tid: str, n: int) -> PredictorError:
    return PredictorError(f"target {tid} has {n} measured entr{'y' if n == 1 else 'ies'} the predictor can use; "
                          f"it needs at least {MIN_TRAIN} to predict missing cells (measure more ops first, "
                          "e.g. POST /spaces to enqueue a space's ops)")


def fit_target(conn: Connection, tid: str, target_id: int, metric: str) -> Predictor:
    """A predictor fitted on the target's measured entries (at most MAX_FIT_ENTRIES), or PredictorError."""
    pairs: List[Tuple[OpSpec, float]] = []
    for text, v in entries.measured_specs(conn, target_id, metric, MAX_FIT_ENTRIES):
        spec = _spec(text)
        if spec is not None and not spec.is_identity and predictable(spec) and v > 0:
            pairs.append((spec, v))
    if len(pairs) < MIN_TRAIN:
        raise _too_few(tid, len(pairs))
    from lut_server.predictor import Predictor

    return Predictor().fit(pairs)


def _spec(text: str) -> Optional[OpSpec]:
    try:
        return spec_from_dict(json.loads(text))
    except (LutError, ValueError, TypeError, KeyError):
        return None  # an op this lutcore cannot rebuild is not predicted, and not fitted on


def _info(p: Optional[Predictor], n: int) -> Dict[str, Any]:
    return {"predicted": n, "n_train": p.n_train if p else 0, "coverage": p.coverage if p else None,
            "learner": p.learner if p else None, "network_rule": RULE}


def _predict(p: Predictor, specs: List[OpSpec]) -> Dict[str, Tuple[float, float, float]]:
    ok = [s for s in specs if predictable(s)]
    value, lo, hi = p.predict_arrays(ok)
    return {s.key: (float(v), float(a), float(b)) for s, v, a, b in zip(ok, value, lo, hi)}


def fill_matrix(conn: Connection, cache: PredictorCache, cm: Dict[str, Any], sp: Space,
                metric: str) -> Dict[str, Any]:
    """The cost matrix ``cm`` (``spaces.cost_matrix``) with its missing cells predicted and flagged:
    ``predicted`` (mask), ``lo``/``hi`` (matrices), per fixed op ``predicted``/``lo_ms``/``hi_ms``,
    ``fixed_lo_ms``/``fixed_hi_ms`` and ``prediction`` (how many, from how many measured entries).
    ``missing`` still lists every unmeasured key; ``coverage`` still counts measured ones only."""
    specs = {**sp.unique_ops(), **{f.spec.key: f.spec for f in sp.fixed}}
    p = cache.for_target(conn, cm["target"], metric) if cm["missing"] else None
    pred = _predict(p, [specs[k] for k in cm["missing"] if k in specs]) if p is not None else {}
    flags: List[List[bool]] = []
    lo: List[List[Optional[float]]] = []
    hi: List[List[Optional[float]]] = []
    for vrow, krow in zip(cm["matrix"], cm["keys"]):
        frow: List[bool] = []
        lrow: List[Optional[float]] = []
        hrow: List[Optional[float]] = []
        for j, (v, k) in enumerate(zip(vrow, krow)):
            if v is None and k in pred:
                vrow[j], a, b = pred[k]
                frow.append(True)
            else:
                a = b = v
                frow.append(False)
            lrow.append(a)
            hrow.append(b)
        flags.append(frow)
        lo.append(lrow)
        hi.append(hrow)
    for f in cm["fixed"]:
        v, k = f["value_ms"], f["key"]
        f["predicted"] = v is None and k in pred
        f["value_ms"], f["lo_ms"], f["hi_ms"] = pred[k] if f["predicted"] else (v, v, v)
    parts = [(f["value_ms"], f["lo_ms"], f["hi_ms"]) for f in cm["fixed"]]
    known = all(v is not None for v, _, _ in parts)
    cm.update({
        "predicted": flags, "lo": lo, "hi": hi,
        "fixed_ms": float(sum(v for v, _, _ in parts)) if known else None,
        "fixed_lo_ms": float(sum(a for _, a, _ in parts)) if known else None,
        "fixed_hi_ms": float(sum(b for _, _, b in parts)) if known else None,
        "prediction": _info(p, len(pred)),
    })
    return cm


def fill_cells(conn: Connection, cache: PredictorCache, sp: CellSpace, tid: str, metric: str, layout: CellLayout,
               values: Dict[str, float]) -> Dict[str, Any]:
    """A cell space's /cell-costs fields with its unmeasured keys predicted (``spaces.cell_costs``' ``fill``):
    C, ``pre``, ``depth`` and ``fixed`` hold the predictions; ``predicted`` {key: value_ms, lo_ms, hi_ms}
    flags every predicted key, ``predicted_cells`` [cells][edges][ops] flags C's cells, ``lo``/``hi`` are
    the same costs at the intervals' ends (measured keys: their value). ``missing`` and ``coverage``
    stay as measured, as for the cost matrix."""
    idents = set(layout.identities)
    missing = [k for k in layout.all_keys() if k not in idents and values.get(k) is None]
    specs = {**sp.unique_ops(), **{f.spec.key: f.spec for f in sp.fixed}}
    p = cache.for_target(conn, tid, metric) if missing else None
    pred = _predict(p, [specs[k] for k in missing if k in specs]) if p is not None else {}
    mid, lo, hi = (layout.fill({**values, **{k: t[end] for k, t in pred.items()}}) for end in range(3))
    # ``pre`` subtracts one add per node (the layout's glue): its low end takes the adds' high ends
    adds = {c.add for c in layout.cells}
    lo_pre, hi_pre = (layout.fill({**values, **{k: t[b if k in adds else a] for k, t in pred.items()}}).pre
                      for a, b in ((1, 2), (2, 1)))
    return {
        "C": mid.C, "pre": mid.pre, "depth": mid.depth, "fixed_ms": mid.fixed_ms, "add": mid.add,
        "fixed": [{"name": n, "key": k, "value_ms": v, "predicted": k in pred, "lo_ms": a, "hi_ms": b}
                  for (n, k), v, a, b in zip(layout.fixed, mid.fixed, lo.fixed, hi.fixed)],
        "fixed_lo_ms": lo.fixed_ms, "fixed_hi_ms": hi.fixed_ms,
        "lo": {"C": lo.C, "pre": lo_pre, "depth": lo.depth, "add": lo.add},
        "hi": {"C": hi.C, "pre": hi_pre, "depth": hi.depth, "add": hi.add},
        "predicted": {k: {"value_ms": v, "lo_ms": a, "hi_ms": b} for k, (v, a, b) in pred.items()},
        "predicted_cells": [[[k is not None and (k in pred or c.add in pred) for k in row] for row in c.keys]
                            for c in layout.cells],
        "prediction": _info(p, len(pred)),
    }


def check_lookup(keys: List[str]) -> None:
    """Bound a predicting lookup before any database work or lock."""
    if len(keys) > MAX_PREDICT_KEYS:
        raise BadInput(f"missing='predict' takes at most {MAX_PREDICT_KEYS} keys per request, got {len(keys)}; "
                       "split the lookup")


def fill_lookup(conn: Connection, cache: PredictorCache, out: Dict[str, Any], metric: str) -> Dict[str, Any]:
    """A lookup answer (``store.entries.lookup``) with ``predicted`` {key: {value_ms, lo_ms, hi_ms}} for
    its missing keys the predictor can read (known ops of a family it models); ``missing`` unchanged."""
    p = cache.for_target(conn, out["target"], metric) if out["missing"] else None
    pred: Dict[str, Tuple[float, float, float]] = {}
    if p is not None:
        specs = [s for s in (_spec(t) for t in op_specs(conn, out["missing"]).values()) if s is not None]
        pred = _predict(p, specs)
    out["predicted"] = {k: {"value_ms": v, "lo_ms": a, "hi_ms": b} for k, (v, a, b) in pred.items()}
    out["prediction"] = _info(p, len(pred))
    return out


def fill_export(conn: Connection, cache: PredictorCache, doc: Dict[str, Any], sp: Union[Space, CellSpace],
                metric: str = "median_ms") -> Dict[str, Any]:
    """A one-target export (``exchange.export_doc``) with the space's unmeasured ops added as predicted
    entries, each marked (``predicted: true``, ``lo_ms``/``hi_ms``) and without measurements, and
    ``prediction`` on the target saying for which space, how many, and from how many measured ones."""
    t = doc["targets"][0]
    have = {e["key"] for e in t["entries"]}
    todo = [s for k, s in sp.unique_ops().items() if k not in have and not s.is_identity]
    p = cache.for_target(conn, t["id"], metric) if todo else None
    pred = _predict(p, todo) if p is not None else {}
    t["entries"] += [{"key": s.key, "spec": s.to_dict(), "macs": s.macs(), "params": s.params(),
                      "value_ms": pred[s.key][0], "lo_ms": pred[s.key][1], "hi_ms": pred[s.key][2],
                      "predicted": True, "measurements": []} for s in todo if s.key in pred]
    t["prediction"] = {"space": sp.name, "resolution": sp.resolution_str, "metric": metric,
                       "unpredicted": len(todo) - len(pred), **_info(p, len(pred))}
    return doc
