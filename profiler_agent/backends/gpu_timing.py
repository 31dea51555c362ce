"""The GPU timing protocol shared by pytorch-cuda and tensorrt.

Why each step:

- **CUDA graphs, K executions per graph.** A 5-20 us op enqueued from Python one call at a
  time is timed at the host's enqueue rate, not the GPU's; a LUT sum of such numbers overshoots
  by n_ops x the enqueue cost. One graph launch replays K executions back to back on the device,
  so the events around it measure device time; the launch cost is spread over K.
- **Host enqueue time beside GPU time.** The per-call host cost of an un-graphed enqueue is
  measured too; an op whose enqueue takes at least ``enqueue_bound_ratio`` of its GPU time is
  flagged ``enqueue_bound`` (deployed without graphs it would run at the host's pace).
- **Warm-up of at least 200 ms until clocks stop ramping** (trtexec warms up 200 ms), once per
  backend instance and again after the GPU sat idle long enough for its clocks to drop.
- **Clocks right after each op's samples**, in process (NVML or devfreq), with throttle reasons.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from profiler_agent.backends.gpu_runtime import GpuRuntime, GraphsUnavailable
from profiler_agent.timing import IntervalTimer, TimingProtocol, TimingResult, measure


@dataclasses.dataclass
class GpuTimingOptions:
    graphs: bool = True
    graph_k: int = 16  # executions captured per graph
    warmup_s: float = 0.2  # at least this much GPU work before the first op of a warm state
    max_warmup_s: float = 3.0  # give up waiting for the clocks after this long (flagged)
    ramp_tol: float = 0.01  # clocks "stopped ramping": two readings within 1%
    chunk_s: float = 0.02  # warm-up work between clock readings
    idle_rewarm_s: float = 2.0  # idle longer than this and the clocks may have dropped: warm up again
    enqueue_calls: int = 50  # un-graphed enqueues timed on the host
    enqueue_bound_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.graph_k < 1:
            raise ValueError(f"graph_k={self.graph_k} must be at least 1")
        if self.warmup_s < 0 or self.max_warmup_s < self.warmup_s:
            raise ValueError("need 0 <= warmup_s <= max_warmup_s")


class BoundedCache:
    """Least recently used, at most ``size`` entries: built engines and graphs per op key."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.items: collections.OrderedDict = collections.OrderedDict()

    def get(self, key: str) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key: str, value: Any) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()


class EventTimer(IntervalTimer):
    """CUDA events around a block on ``stream``; elapsed divided by ``per_call`` executions per call."""

    def __init__(self, runtime: GpuRuntime, stream: Any, per_call: int = 1) -> None:
        super().__init__()
        self.stream = stream
        self.per_call = per_call
        self._start = runtime.new_event()
        self._end = runtime.new_event()

    def start(self) -> None:
        self._start.record(self.stream)

    def stop(self) -> float:
        self._end.record(self.stream)
        self._end.synchronize()
        return self._end.ms_since(self._start) / 1e3 / self.per_call


class GpuTimer:
    """One per backend instance: keeps the warm state and times enqueue functions on one stream."""

    def __init__(
        self,
        runtime: GpuRuntime,
        clocks: Any = None,
        options: Optional[GpuTimingOptions] = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.runtime = runtime
        self.clocks = clocks  # a probe.gpu_clocks reader (read() -> {"sm_mhz": ...}) or None
        self.options = options or GpuTimingOptions()
        self.clock = clock
        self._last_busy: Optional[float] = None
        self.warmups: List[Dict[str, Any]] = []

    # -- warm-up ---------------------------------------------------------------------------
    def _read(self) -> Dict[str, Any]:
        if self.clocks is None:
            return {}
        try:
            return dict(self.clocks.read())
        except Exception as e:  # noqa: BLE001 - a failed clock read must not lose the measurement
            return {"error": f"{type(e).__name__}: {e}"}

    def needs_warmup(self) -> bool:
        return self._last_busy is None or self.clock() - self._last_busy > self.options.idle_rewarm_s

    def warm(self, run: Callable[[], None], stream: Any) -> Dict[str, Any]:
        """Run ``run`` for >= warmup_s and until the SM clock stops moving (or max_warmup_s)."""
        o = self.options
        if not self.needs_warmup():
            return {"warmup": "kept"}
        t0 = self.clock()
        n, prev, readings = 1, None, []
        stable = False
        while True:
            c0 = self.clock()
            for _ in range(n):
                run()
            self.runtime.synchronize(stream)
            if self.clock() - c0 < o.chunk_s:
                n *= 2
            mhz = self._read().get("sm_mhz")
            if mhz is not None:
                readings.append(mhz)
                stable = prev is not None and abs(mhz - prev) <= o.ramp_tol * max(prev, 1)
                prev = mhz
            elapsed = self.clock() - t0
            done = elapsed >= o.warmup_s and (stable or not readings)  # no clock to watch: time alone
            if done or elapsed >= o.max_warmup_s:
                break
        info: Dict[str, Any] = {"warmup": "full", "warmup_gpu_s": round(self.clock() - t0, 4)}
        if not readings:
            info["ramp_check"] = "no clock reader" if self.clocks is None else "no SM clock readings"
        else:
            info["sm_mhz_ramp"] = readings[-8:]
            info["clocks_settled"] = stable
        self._last_busy = self.clock()
        self.warmups.append(info)
        return info

    # -- timing ----------------------------------------------------------------------------
    def enqueue_ms(self, enqueue: Callable[[], None], stream: Any) -> float:
        """Host time per un-graphed enqueue call (the GPU drained before and after)."""
        self.runtime.synchronize(stream)
        t0 = self.clock()
        for _ in range(self.options.enqueue_calls):
            enqueue()
        host = (self.clock() - t0) / self.options.enqueue_calls
        self.runtime.synchronize(stream)
        return host * 1e3

    def prepare_graph(
        self, enqueue: Callable[[], None], stream: Any
    ) -> Tuple[Optional[Callable[[], None]], Optional[str]]:
        """(launcher of a graph of ``graph_k`` executions, None) or (None, why not).

        Call after one un-captured execution (lazy allocations happen outside the capture, as
        trtexec does); the backend keeps the result per op so its rounds reuse the graph.
        """
        if not self.options.graphs:
            return None, "off"
        k = self.options.graph_k

        def work() -> None:
            for _ in range(k):
                enqueue()

        try:
            launch = self.runtime.capture(stream, work)
        except GraphsUnavailable as e:
            return None, str(e)
        launch()  # the first launch uploads the graph; keep it out of the samples
        self.runtime.synchronize(stream)
        return launch, None

    def time(
        self,
        enqueue: Callable[[], None],
        stream: Any,
        protocol: TimingProtocol,
        graph: Optional[Callable[[], None]] = None,
        graph_note: Optional[str] = None,
    ) -> TimingResult:
        """Time one execution of ``enqueue`` (which enqueues it on ``stream``); ms per execution.

        With ``graph`` (from :meth:`prepare_graph`) the samples are graph launches divided by
        ``graph_k``; without, back-to-back enqueues (flagged when that is the host's pace).
        """
        o = self.options
        env: Dict[str, Any] = dict(self.warm(graph or enqueue, stream))
        host_ms = self.enqueue_ms(enqueue, stream)
        per_call = o.graph_k if graph is not None else 1
        res = measure(graph or enqueue, protocol, timer=EventTimer(self.runtime, stream, per_call))
        clocks = self._read()  # right after this op's samples, before anything else runs
        self._last_busy = self.clock()
        gpu_ms = res.stats.median_ms
        env.update(
            graphs=graph is not None,
            graph_k=per_call if graph is not None else None,
            enqueue_ms=round(host_ms, 6),
            gpu_ms=round(gpu_ms, 6),
            enqueue_bound=host_ms >= o.enqueue_bound_ratio * gpu_ms,
            runtime=self.runtime.name,
        )
        if graph is None and graph_note and graph_note != "off":
            env["graphs_unavailable"] = graph_note
        if clocks:
            env["clocks"] = clocks
        res.env.update(env)
        return res
