"""LUTClient: the cost matrix and latency predictions from a LUT server or an exported LUT file."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from lutcore.spaces.cells import CellArch, CellSpace
from search_client.cache import ResponseCache
from search_client.cells import (
    CELL_MISSING_MODES,
    CellCosts,
    cell_costs_from_response,
    cell_costs_from_values,
    predict_cell_latency,
)
from search_client.errors import ClientError, MeasurementFailed, TransportError, WaitTimeout
from search_client.filelut import TargetTable, load_export, parse_export
from search_client.matrix import (
    MISSING_MODES,
    CostMatrix,
    check_keys,
    mac_matrix,
    matrix_from_response,
    param_matrix,
    response_from_values,
)
from search_client.predict import Choices, LatencyPrediction, predict_from_matrix
from search_client.progress import ProgressFn, make_progress
from search_client.spaces import SpaceLike, SpaceResolver
from search_client.transport import Transport

TargetLike = Any  # a target id string or a lutcore.records.Target


@dataclasses.dataclass(frozen=True)
class Predicted:
    """A value the server predicted for an unmeasured key, and its 90% interval (ms)."""

    value: float
    lo: float
    hi: float


@dataclasses.dataclass(frozen=True)
class Lookup:
    """``POST /lookup`` answer: the metric's value per measured key, full stats, and what is missing.

    ``values`` holds measured keys only; with ``missing="predict"``, ``predicted`` holds the missing
    keys the server could predict (known ops), each with its interval; ``missing`` still lists them."""

    target: str
    lut_version: Optional[int]
    values: Dict[str, float]
    stats: Dict[str, Dict[str, Any]]
    missing: List[str]
    predicted: Dict[str, Predicted] = dataclasses.field(default_factory=dict)


def target_id(target: TargetLike) -> str:
    return target.id if hasattr(target, "id") else str(target)


class LUTClient:
    """Reads a LUT server (``LUTClient(url, token)``) or an exported LUT file (``LUTClient.from_file``).

    Lookups go out in batches of ``batch_size`` keys; each request has a ``timeout`` (seconds) and is
    retried ``retries`` times with exponential backoff on connect errors, timeouts and 502/503/504.
    Complete cost matrices are cached in memory (and under ``cache_dir`` by target and LUT version,
    used when the server is unreachable), so asking again costs no round trip.
    """

    def __init__(
        self,
        url: Optional[str],
        token: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 3,
        cache_dir: Union[str, Path, None] = None,
        *,
        backoff: float = 0.25,
        batch_size: int = 1000,
        poll_interval: float = 2.0,
        http_transport: Any = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.status_every = 5  # polls between checks for parked (given-up) jobs while waiting
        self._http = (
            Transport(url, token, timeout, retries, backoff, transport=http_transport) if url is not None else None
        )
        self._tables: Optional[Dict[str, TargetTable]] = None
        self._cache = ResponseCache(cache_dir)
        self._matrices: Dict[Tuple[Any, ...], CostMatrix] = {}
        self._cells: Dict[Tuple[Any, ...], CellCosts] = {}
        self._spaces = SpaceResolver()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Union[str, Path]) -> LUTClient:
        """Fully offline, from a ``GET /export`` document (schema ``nas-lut/1``)."""
        c = cls(None)
        c._tables = load_export(path)
        return c

    @classmethod
    def from_export(cls, doc: Dict[str, Any]) -> LUTClient:
        """Offline, from an export document already in memory."""
        c = cls(None)
        c._tables = parse_export(doc)
        return c

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> LUTClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def offline(self) -> bool:
        return self._http is None

    @property
    def round_trips(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self._http.round_trips if self._http is not None else 0

    def clear_cache(self) -> None:
        """Forget every cached matrix in memory (the disk cache stays)."""
        self._cache.clear()
        self._matrices.clear()
        self._cells.clear()

    # -- plain reads -------------------------------------------------------------------
    def targets(self) -> List[Dict[str, Any]]:
        """``[{id, lut_version, ops_measured, ...}]`` for every target the LUT holds."""
        if self._http is None:
            assert self._tables is not None
            tables = self._tables.values()
            return [{"id": t.id, "lut_version": t.lut_version, "ops_measured": len(t.entries)} for t in tables]
        return list(self._http.request("GET", "/targets"))

    def export(self, target: Optional[TargetLike] = None) -> Dict[str, Any]:
        """The export document (``GET /export``); save it as JSON for ``LUTClient.from_file``."""
        http = self._need_server("export")
        return dict(http.request("GET", "/export", params={"target": target_id(target)} if target else None))

    def lookup(self, keys: List[str], target: TargetLike, metric: str = "median_ms", missing: str = "report") -> Lookup:
        """Values of ``keys`` on ``target``, sent ``batch_size`` keys per request. ``missing="predict"``
        also asks the server to predict the unmeasured ones (``Lookup.predicted``; a server only)."""
        tid = self._target(target)
        if missing not in ("report", "predict"):
            raise ValueError(f"missing={missing!r} must be 'report' or 'predict'")
        if missing == "predict":
            self._need_server('predict unmeasured entries (missing="predict")')
        if self._http is None:
            table = self._table(tid)
            vals = table.values(list(keys), metric)
            return Lookup(
                tid,
                table.lut_version,
                {k: v for k, v in vals.items() if v is not None},
                {k: table.entries[k].figures(metric) for k, v in vals.items() if v is not None},
                [k for k, v in vals.items() if v is None],
            )
        values: Dict[str, float] = {}
        stats: Dict[str, Dict[str, Any]] = {}
        unmeasured: List[str] = []
        predicted: Dict[str, Predicted] = {}
        version: Optional[int] = None
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), self.batch_size):
            body = {"target": tid, "keys": uniq[i : i + self.batch_size], "metric": metric}
            if missing == "predict":
                body["missing"] = missing
            r = self._http.request("POST", "/lookup", json=body)
            version = r.get("lut_version", version) if version is None else max(version, r.get("lut_version") or 0)
            for k, s in (r.get("values") or {}).items():
                stats[k] = s
                v = s.get("value_ms", s.get(metric))
                if v is not None:
                    values[k] = float(v)
            unmeasured += list(r.get("missing") or [])
            predicted.update({k: Predicted(float(p["value_ms"]), float(p["lo_ms"]), float(p["hi_ms"]))
                              for k, p in (r.get("predicted") or {}).items()})
        return Lookup(tid, version, values, stats, unmeasured, predicted)

    def register_space(
        self, space: SpaceLike, target: TargetLike, resolution: Optional[str] = None, priority: int = 0
    ) -> Dict[str, Any]:
        """``POST /spaces``: enqueue every op of the space the LUT lacks for the target (idempotent)."""
        http = self._need_server("register a space")
        r = self._spaces(space, resolution)
        body = {"space": r.wire, "resolution": r.resolution, "target": self._target(target), "priority": priority}
        return dict(http.request("POST", "/spaces", json=body))

    # -- the cost matrix ---------------------------------------------------------------
    def cost_matrix(
        self,
        space: SpaceLike,
        target: Optional[TargetLike] = None,
        metric: str = "median_ms",
        resolution: Optional[str] = None,
        device: Union[str, torch.device, None] = None,
        dtype: torch.dtype = torch.float32,
        missing: str = "error",
        timeout: float = 3600.0,
        *,
        progress: Union[bool, ProgressFn, None] = True,
        refresh: bool = False,
        priority: int = 0,
    ) -> CostMatrix:
        """C [layers x candidates] of ``space`` on ``target``, with mask, fixed cost and coverage.

        ``missing``: ``"error"`` raises MissingEntriesError (listing the ops and how to measure them);
        ``"wait"`` registers the space for the target and polls, showing progress, until agents have
        measured every op (WaitTimeout after ``timeout`` seconds); ``"nan"`` puts NaN in their cells;
        ``"predict"`` (a server only) fills them with the server's predictions, flagged in
        ``CostMatrix.predicted`` with their intervals in ``lo``/``hi`` (never cached: the server answers
        from its own cache, and the next measurement replaces a prediction).
        ``space``: a registered name, a lutcore Space/SpaceDef or a definition mapping.
        ``refresh=True`` skips the memory cache.
        """
        if missing not in MISSING_MODES:
            raise ValueError(f"missing={missing!r} must be one of {', '.join(MISSING_MODES)}")
        tid = self._target(target)
        if missing == "predict":
            self._need_server('predict unmeasured cells (missing="predict")')
            refresh = True
        mkey = (tid, SpaceResolver.key(space, resolution), metric, str(device), dtype)
        if not refresh:
            hit = self._matrices.get(mkey)
            if hit is not None:
                return hit
        r = self._spaces(space, resolution)
        local, wire, name, res = r.local, r.wire, r.name, r.resolution
        if getattr(local, "is_cell_space", False):
            raise ClientError(f"{name} is a cell space: it has no [layers x candidates] matrix; "
                              "use client.cell_costs(...) (search_client.cells)")
        if local is None and self._http is None:
            raise ClientError(f"unknown space {space!r}; a LUT file needs a space lutcore knows or a definition")
        ckey = (tid, r.space_id, res, metric)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        resp = None if refresh else self._cache.get(ckey)
        fresh = resp is None
        if resp is None:
            resp = self._fetch(wire, local, res, tid, metric, ckey, missing == "predict")
        if resp.get("missing") and missing == "wait":
            resp = self._wait(wire, local, name, res, tid, metric, timeout, progress, priority)
        cm = matrix_from_response(resp, metric=metric, device=dev, dtype=dtype, missing=missing, server=self.url)
        if not resp.get("missing") and missing != "predict":
            if fresh:
                self._cache.put(ckey, resp)
            self._matrices[mkey] = cm
        return cm

    def _fetch(
        self, wire: Any, local: Any, res: Optional[str], tid: str, metric: str, ckey: Tuple[Any, ...],
        predict: bool = False,
    ) -> Dict[str, Any]:
        if self._http is None:
            table = self._table(tid)
            values = table.values(list(local.unique_ops()), metric)
            return response_from_values(
                local, values, target=tid, lut_version=table.lut_version, calibration=table.calibration
            )
        body = {"space": wire, "resolution": res, "target": tid, "metric": metric}
        if predict:
            body["missing"] = "predict"
        try:
            resp = dict(self._http.request("POST", "/cost-matrix", json=body))
        except TransportError:
            disk = None if predict else self._cache.newest_on_disk(ckey)
            if disk is None:
                raise
            warnings.warn(
                f"LUT server {self.url} unreachable; using the cached LUT version {disk.get('lut_version')} "
                f"for {tid} from disk",
                stacklevel=3,
            )
            return disk
        if local is not None:
            check_keys(local, resp.get("keys", []), f"the server at {self.url}")
        return resp

    def _wait(
        self,
        wire: Any,
        local: Any,
        name: str,
        res: Optional[str],
        tid: str,
        metric: str,
        timeout: float,
        progress: Union[bool, ProgressFn, None],
        priority: int,
    ) -> Dict[str, Any]:
        http = self._need_server('wait for measurements (missing="wait")')
        http.request("POST", "/spaces", json={"space": wire, "resolution": res, "target": tid, "priority": priority})
        show = make_progress(progress, f"{name}@{res or 'default'} on {tid}")
        deadline = time.monotonic() + timeout
        body = {"space": wire, "resolution": res, "target": tid, "metric": metric}
        polls = 0
        try:
            while True:
                polls += 1
                resp = dict(http.request("POST", "/cost-matrix", json=body))
                cov = resp.get("coverage") or {}
                if show is not None:
                    show(int(cov.get("measured", 0)), int(cov.get("total", 0)))
                if not resp.get("missing"):
                    if local is not None:
                        check_keys(local, resp.get("keys", []), f"the server at {self.url}")
                    return resp
                if polls % self.status_every == 1:
                    self._raise_if_parked(http, set(resp["missing"]), name, res, tid)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(resp["missing"], name, res, tid, self.url, cov.get("total"))
                time.sleep(min(self.poll_interval, left))
        finally:
            if show is not None and hasattr(show, "close"):
                show.close()

    def _raise_if_parked(self, http: Transport, missing: set, name: str, res: Optional[str], tid: str) -> None:
        """Jobs the agents gave up on never complete: say so instead of waiting for the timeout."""
        try:
            parked = http.request("GET", "/status").get("parked") or []
        except ClientError:
            return  # status is a courtesy here; the cost matrix polls go on
        ours = [p for p in parked if p.get("target") == tid and p.get("key") in missing]
        if ours:
            raise MeasurementFailed(ours, name, res, tid, self.url)

    # -- cell spaces -------------------------------------------------------------------
    def cell_costs(
        self,
        space: SpaceLike,
        target: Optional[TargetLike] = None,
        metric: str = "median_ms",
        resolution: Optional[str] = None,
        device: Union[str, torch.device, None] = None,
        dtype: torch.dtype = torch.float32,
        missing: str = "error",
        *,
        refresh: bool = False,
    ) -> CellCosts:
        """Cost tensors of a cell space (darts-*, autortnet) on ``target``: per cell [edges x ops], the
        preprocessing, the depth options of each hyper-cell and the fixed cost (search_client.cells).

        From a server, ``POST /cell-costs`` (its layout must equal lutcore's here, else ClientError: version
        skew); offline, lutcore's key layout filled from the LUT file. ``missing``: ``"error"`` raises
        MissingEntriesError, ``"nan"`` puts NaN in the unmeasured entries, ``"predict"`` (a server only)
        fills them with the server's predictions, flagged in ``CellCosts.predicted``/``predictions`` with
        their intervals in ``lo``/``hi`` (never cached here, as for ``cost_matrix``).
        """
        if missing not in CELL_MISSING_MODES:
            raise ValueError(f"missing={missing!r} must be one of {', '.join(CELL_MISSING_MODES)}")
        if missing == "predict":
            self._need_server('predict unmeasured cells (missing="predict")')
            refresh = True
        tid = self._target(target)
        r = self._spaces(space, resolution)
        local = r.local
        if not isinstance(local, CellSpace):
            raise ClientError(f"{r.name} is not a cell space lutcore knows; use cost_matrix for chain spaces")
        mkey = (tid, r.space_id, r.resolution, metric, str(device), dtype)
        hit = None if refresh else self._cells.get(mkey)
        if hit is not None:
            return hit
        layout = local.layout()
        if self._http is not None:
            body = {"space": r.wire, "resolution": r.resolution, "target": tid, "metric": metric}
            if missing == "predict":
                body["missing"] = missing
            resp = self._http.request("POST", "/cell-costs", json=body)
            costs = cell_costs_from_response(resp, layout, metric=metric, missing=missing, device=device,
                                             dtype=dtype, server=self.url)
        else:
            table = self._table(tid)
            costs = cell_costs_from_values(
                layout, table.values(layout.all_keys(), metric), target=tid, metric=metric,
                lut_version=table.lut_version, calibration=table.calibration, missing=missing, device=device,
                dtype=dtype, server=self.url,
            )
        if not costs.missing and missing != "predict":
            self._cells[mkey] = costs
        return costs

    # -- predictions -------------------------------------------------------------------
    def predict_latency(
        self,
        space: SpaceLike,
        choices: Choices,
        target: Optional[TargetLike] = None,
        resolution: Optional[str] = None,
        metric: str = "median_ms",
        calibration: Any = "auto",
        missing: str = "error",
    ) -> LatencyPrediction:
        """The LUT's latency for one architecture: the chosen ops plus the fixed cost.

        ``choices``: candidate names or indices per layer, a lutcore Arch, or [layers, candidates] weights
        (argmax); for a cell space, a lutcore CellArch or an architecture name (``darts-v2-cifar10``).
        ``calibration``: ``"auto"`` applies the LUT's own ``calibration`` (a, b) when it has one;
        a Calibration or ``{"a":, "b":}`` applies that; None gives the raw LUT sum.
        ``missing``: ``"error"`` raises MissingEntriesError for an unmeasured op; ``"predict"`` takes the
        server's predictions for them and says so: ``predicted_share``/``predicted_ops`` and the interval
        ``lo_ms``..``hi_ms`` (the ops' bounds added: lutcore.netsum's ``linear`` rule).
        """
        if missing not in ("error", "predict"):
            raise ValueError(f"missing={missing!r} must be 'error' or 'predict'")
        local = self._spaces(space, resolution).local
        if isinstance(local, CellSpace):
            from lutcore.spaces import get_arch

            arch = get_arch(choices, local.resolution) if isinstance(choices, str) else choices
            if not isinstance(arch, CellArch):
                raise ClientError(f"{local.name} is a cell space: choices must be a lutcore CellArch or the name "
                                  f"of one, not {type(arch).__name__}")
            costs = self.cell_costs(space, target, metric, resolution, dtype=torch.float64,
                                    missing="predict" if missing == "predict" else "nan")
            return predict_cell_latency(costs, arch, calibration, self.url)
        cm = self.cost_matrix(space, target, metric, resolution, dtype=torch.float64,
                              missing="predict" if missing == "predict" else "nan")
        return predict_from_matrix(cm, choices, calibration, self.url)

    mac_matrix = staticmethod(mac_matrix)
    param_matrix = staticmethod(param_matrix)

    # -- helpers -----------------------------------------------------------------------
    def _need_server(self, what: str) -> Transport:
        if self._http is None:
            raise ClientError(f"cannot {what} with a LUT file; connect to a server with LUTClient(url, token)")
        return self._http

    def _target(self, target: Optional[TargetLike]) -> str:
        if target is not None:
            return target_id(target)
        if self._tables is not None and len(self._tables) == 1:
            return next(iter(self._tables))
        known = ", ".join(self._tables) if self._tables is not None else "see client.targets()"
        raise ClientError(f"which target? pass target=..., one of: {known}")

    def _table(self, tid: str) -> TargetTable:
        assert self._tables is not None
        if tid not in self._tables:
            raise ClientError(f"target {tid!r} is not in the LUT file; it holds: {', '.join(self._tables) or 'none'}")
        return self._tables[tid]
