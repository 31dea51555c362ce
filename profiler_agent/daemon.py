"""The agent's daemon mode: register, claim, time, spool, post, heartbeat, repeat.

One process is one run (one ``run_id``): every measurement it makes is spooled to disk
before it is posted, so a server outage or a crash never loses or duplicates a result.
Stopping (SIGTERM, Ctrl-C) finishes the claim being timed if that takes less than
``term_grace_s``, otherwise releases its jobs to the queue; either way the spool is flushed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from lutcore.errors import LutError
from lutcore.ops import OpSpec, spec_from_dict
from lutcore.records import Job, Measurement, Target
from profiler_agent.api import ApiError, AuthError, LutApi, RequestRejected, ServerUnavailable
from profiler_agent.exit_codes import EXIT_AUTH, EXIT_ERROR, EXIT_OK, EXIT_PENDING
from profiler_agent.leases import LeaseKeeper
from profiler_agent.queue_view import queue_counts
from profiler_agent.spool import FlushResult, Spool

log = logging.getLogger("profiler_agent")


class _Abort(BaseException):
    """Raised from the progress callback to stop timing between two ops.

    A BaseException, like KeyboardInterrupt, so per-op error handling inside a session
    (``except Exception``) cannot swallow it.
    """


def wire_fingerprint(fp: Dict[str, Any]) -> Dict[str, Any]:
    """What the server stores as the device fingerprint: identity only.

    The server flags a device whose fingerprint changed between registrations, so volatile
    parts (clocks, temperatures, probe time, warnings) stay out of it; they travel in each
    measurement's ``env`` instead. The backend is left out too: it is part of the target, and
    two agents on one board with different backends must not flag each other as changes.
    """
    from profiler_agent.probe import identity

    return {k: v for k, v in identity(fp).items() if k != "backend"}


def new_run_id() -> str:
    return uuid.uuid4().hex


def make_batch(
    run_id: str, target: Target, device_name: str, fingerprint: Dict[str, Any], items: List[Measurement]
) -> Dict[str, Any]:
    """A MeasurementBatch as a JSON-ready dict (what the spool stores and the server takes)."""
    return {
        "run_id": run_id,
        "target": target.model_dump(mode="json"),
        "device_name": device_name,
        "fingerprint": fingerprint,
        "items": [m.model_dump(mode="json", exclude_none=True) for m in items],
    }


@dataclasses.dataclass
class AgentConfig:
    device_class: str
    name: str
    claim: int = 8
    lease_s: float = 300.0
    exit_when_idle: bool = False
    poll_s: float = 5.0
    max_poll_s: float = 60.0
    term_grace_s: float = 30.0
    heartbeat_s: Optional[float] = None


@dataclasses.dataclass
class AgentStats:
    claimed: int = 0
    measured: int = 0
    validated: int = 0  # networks timed for validate jobs
    failed: int = 0
    released: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)

    def add_flush(self, res: FlushResult) -> None:
        self.accepted += res.accepted
        self.duplicates += res.duplicates
        self.rejected += len(res.rejected)


class Agent:
    """Runs jobs from one LUT server for one target until idle (``exit_when_idle``) or stopped.

    ``session`` is a ProfileSession already bound to the backend and protocol; ``fingerprint``
    is the device probe sent at registration and with every batch. ``stop`` is the event that
    stops it; give the API client ``sleep=stop.wait`` so that retry waits end on a stop request.
    ``progress`` gets the target's job counts by state after each claim.
    """

    def __init__(
        self,
        api: LutApi,
        session: Any,
        target: Target,
        fingerprint: Dict[str, Any],
        spool: Spool,
        config: AgentConfig,
        run_id: Optional[str] = None,
        stop: Optional[threading.Event] = None,
        progress: Optional[Callable[[Dict[str, int]], Any]] = None,
    ) -> None:
        self.api = api
        self.session = session
        self.target = target
        self.fingerprint = fingerprint
        self.spool = spool
        self.cfg = config
        self.run_id = run_id or new_run_id()
        self.stats = AgentStats()
        self.leases = LeaseKeeper(api, config.lease_s, config.heartbeat_s)
        self._stop = stop if stop is not None else threading.Event()
        self._abort_at: Optional[float] = None
        self._progress = progress
        self._held_by_others = 0  # jobs of the target other agents held at the last empty claim
        self.pending = 0
        self.message = ""
        self._handled: Set[int] = set()

    # -- stopping ------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """First call: finish the current claim within ``term_grace_s``; a second: abort at the next op."""
        now = time.monotonic()
        if self._stop.is_set():
            log.warning("%s again: releasing the current jobs after the op being timed", reason)
            self._abort_at = now
        else:
            log.warning("%s: finishing the current jobs (up to %.0fs), then flushing", reason, self.cfg.term_grace_s)
            self._abort_at = now + self.cfg.term_grace_s
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def check_abort(self, *_: Any) -> None:
        """Progress hook between ops: raises once the grace period after a stop request is over."""
        if self._abort_at is not None and time.monotonic() >= self._abort_at:
            raise _Abort()

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        """Main loop; returns an exit code (0 ok, 3 auth, 4 results left in the spool)."""
        try:
            if not self._register():  # unreachable: an error, unless we were asked to stop meanwhile
                return self._finish(EXIT_OK if self.stopping else EXIT_ERROR)
            self.leases.start()
            self._report_progress()  # where the target stands before this agent adds to it
            idle_wait = outage_wait = self.cfg.poll_s
            while not self.stopping:
                self._flush()
                try:
                    jobs = self.api.claim(self.target.id, self.cfg.claim, self.cfg.lease_s)
                except ServerUnavailable as e:
                    log.warning("cannot claim jobs: %s", e)
                    if self.cfg.exit_when_idle:
                        self.message = f"server unreachable: {e}"
                        break
                    self._stop.wait(outage_wait)
                    outage_wait = min(self.cfg.max_poll_s, outage_wait * 2)
                    continue
                outage_wait = self.cfg.poll_s
                if not jobs:
                    if self.cfg.exit_when_idle and not self._others_hold_jobs():
                        log.info("queue for %s is empty and no agent holds a job of it; exiting (--exit-when-idle)",
                                 self.target.id)
                        break
                    self._stop.wait(idle_wait)
                    idle_wait = min(self.cfg.max_poll_s, idle_wait * 2)
                    continue
                idle_wait = self.cfg.poll_s
                self.stats.claimed += len(jobs)
                log.info("claimed %d job(s) for %s", len(jobs), self.target.id)
                self._process(jobs)
                self._report_progress()
            return self._finish(EXIT_OK)
        except AuthError as e:
            log.error("%s", e)
            self.message = str(e)
            self._finish(EXIT_AUTH)
            return EXIT_AUTH
        finally:
            self.leases.stop()

    def _others_hold_jobs(self) -> bool:
        """After an empty claim: do other agents still hold live leases on this target's jobs?

        If they do, ``--exit-when-idle`` waits: they finish, or their leases end and the next
        claim takes their jobs. Exiting then would leave the LUT short with nothing said. While our
        own results wait in the spool the leased jobs are (also) ours and the server is failing us:
        no waiting then, the exit code says results are pending.
        """
        if self.spool.pending():
            return False
        try:
            counts = queue_counts(self.api, self.target.id)
        except AuthError:
            raise
        except ApiError as e:
            log.warning("queue for %s is empty; cannot tell whether other agents still hold jobs of it (%s)",
                        self.target.id, e)
            return False
        held = (counts or {}).get("claimed", 0)
        if held and held != self._held_by_others:  # said once per change, not at every poll
            log.info("queue for %s is empty but %d job(s) are leased to other agents; waiting until they are "
                     "done or their leases end (--exit-when-idle)", self.target.id, held)
        self._held_by_others = held
        return held > 0

    def _report_progress(self) -> None:
        if self._progress is None:
            return
        try:
            counts = queue_counts(self.api, self.target.id)
        except AuthError:
            raise
        except ApiError as e:
            log.debug("no progress: %s", e)
            return
        if counts:
            self._progress(counts)

    def _register(self) -> bool:
        wait = self.cfg.poll_s
        while True:
            try:
                out = self.api.register_device(self.cfg.name, self.cfg.device_class, self.fingerprint)
            except ServerUnavailable as e:
                log.warning("cannot register %s: %s", self.cfg.name, e)
                if self.cfg.exit_when_idle or self._stop.wait(wait):
                    self.message = f"server unreachable: {e}"
                    return False
                wait = min(self.cfg.max_poll_s, wait * 2)
                continue
            if out and out.get("changed"):
                log.warning(
                    "device %s: fingerprint changed since its last run (%s -> %s); numbers may shift",
                    self.cfg.name,
                    out.get("previous_digest"),
                    out.get("fingerprint_digest"),
                )
            log.info("registered %s (%s) for target %s, run %s", self.cfg.name, self.cfg.device_class,
                     self.target.id, self.run_id)
            return True

    def _flush(self) -> FlushResult:
        res = self.spool.flush(self.api)
        self.stats.add_flush(res)
        if res.error:
            log.warning("%d batch(es) kept in %s: %s", res.pending, self.spool.pending_dir, res.error)
        elif res.batches:
            dropped = f", {res.jobs_dropped} job id(s) dropped (leases lost to other boards)" if res.jobs_dropped \
                else ""
            log.info("posted %d batch(es): %d accepted, %d duplicate(s), %d rejected%s",
                     res.batches, res.accepted, res.duplicates, len(res.rejected), dropped)
        return res

    def _finish(self, code: int) -> int:
        try:
            res = self._flush()
        except AuthError as e:
            log.error("%s", e)
            res = FlushResult(pending=len(self.spool.pending()), error=str(e))
        self.pending = res.pending
        if res.pending:
            log.warning(
                "%d batch(es) (%d result(s)) wait in %s; they are sent on the next run or by `profiler-agent flush`",
                res.pending, self.spool.pending_items(), self.spool.pending_dir,
            )
            if code in (EXIT_OK, EXIT_ERROR):
                code = EXIT_PENDING
        return code

    # -- one claim -----------------------------------------------------------------------
    def _process(self, jobs: List[Job]) -> None:
        self._handled = set()  # jobs of this claim already failed or released
        runnable: List[Tuple[Job, OpSpec]] = []
        validations: List[Job] = []
        for job in jobs:
            if job.kind == "validate":
                validations.append(job)
                continue
            if job.kind != "op" or job.op is None:
                self._fail(job.id, f"this agent runs 'op' and 'validate' jobs, not {job.kind!r}")
                continue
            try:
                spec = spec_from_dict(job.op.spec)
            except LutError as e:
                self._fail(job.id, f"invalid op spec: {e}")
                continue
            runnable.append((job, spec))
        if runnable:
            self._process_ops(runnable)
        for i, job in enumerate(validations):
            if self._abort_at is not None and time.monotonic() >= self._abort_at:
                self._release([j.id for j in validations[i:]])
                break
            self._validate(job)

    def _process_ops(self, runnable: List[Tuple[Job, OpSpec]]) -> None:
        ids = [j.id for j, _ in runnable]
        self.leases.track(ids)
        try:
            t0 = time.monotonic()
            done = self._measure(runnable)
            self._fail_unanswered(runnable, done)
            log.info("timed %d of %d op(s) in %.1fs (%d measured in this run)", len(done), len(runnable),
                     time.monotonic() - t0, self.stats.measured + len(done))
            if done:
                self.spool.add(make_batch(self.run_id, self.target, self.cfg.name, self.fingerprint, done))
                self.stats.measured += len(done)
            # posting the results completes these jobs: a heartbeat racing the post would call them lost
            self.leases.untrack(ids)
            self._flush()
        finally:
            self.leases.untrack(ids)

    def _validate(self, job: Job) -> None:
        """Time the job's networks against the server's LUT; post them naming the job, then refit.

        Nothing is spooled: if the post fails the lease runs out and the job is timed again.
        """
        from lutcore.spaces import get_space
        from profiler_agent.workflows.validation import (
            ValidationPlan,
            describe_server_calibration,
            publish,
            refit_server_calibration,
            time_against_server,
        )

        p = job.payload
        self.leases.track([job.id])
        try:
            try:
                space = get_space(p["space"], p["resolution"])
                plan = ValidationPlan.make(space, str(p["archs"]), seed=int(p.get("seed", 0)),
                                           rounds=int(p.get("rounds", 5)),
                                           max_time_per_net=float(p.get("max_time_per_net", 0.5)))
                t0 = time.monotonic()
                lut, results = time_against_server(self.api, self.target.id, plan, self.session.backend,
                                                   self.session.protocol, progress=self.check_abort)
            except _Abort:
                self._release([job.id])
                return
            except AuthError:
                raise
            except ServerUnavailable as e:
                log.warning("validate job %d: server unreachable (%s); giving it back", job.id, e)
                self._release([job.id])
                return
            except (LutError, KeyError, TypeError, ValueError, ApiError) as e:
                self._fail(job.id, f"validation of {p.get('space')}@{p.get('resolution')}: {_describe(e)}")
                return
            log.info("validated %d network(s) of %s@%s in %.1fs", len(results), space.name,
                     space.resolution_str, time.monotonic() - t0)
            try:
                publish(self.api, self.run_id, self.target.id, self.cfg.name, plan, lut, results, job.id)
                self.stats.validated += len(results)
                if p.get("calibrate"):
                    out = refit_server_calibration(self.api, self.target.id, space, plan.seed,
                                                   float(p.get("fit_share", 0.5)))
                    log.info("calibration of %s@%s refitted: %s", space.name, space.resolution_str,
                             describe_server_calibration(out))
            except RequestRejected as e:
                log.warning("validate job %d: %s", job.id, e)
            except ServerUnavailable as e:
                log.warning("could not post validate job %d (%s); its lease will expire and it runs again", job.id, e)
        finally:
            self.leases.untrack([job.id])

    def _measure(self, runnable: List[Tuple[Job, OpSpec]]) -> List[Measurement]:
        """Time the claim as one session run; if it fails, time op by op and fail only the culprits."""
        by_key = {spec.key: job.id for job, spec in runnable}
        try:
            return self._tag(self.session.run([s for _, s in runnable], job_ids=by_key), by_key)
        except _Abort:
            self._release([j.id for j, _ in runnable])
            return []
        except Exception as e:  # noqa: BLE001 - one bad op must not sink the claim
            if len(runnable) == 1:
                self._fail(runnable[0][0].id, _describe(e))
                return []
            log.warning("timing %d ops together failed (%s); timing them one by one", len(runnable), _describe(e))
        out: List[Measurement] = []
        for i, (job, spec) in enumerate(runnable):
            try:
                out.extend(self._tag(self.session.run([spec], job_ids={spec.key: job.id}), by_key))
            except _Abort:
                self._release([j.id for j, _ in runnable[i:]])
                break
            except Exception as e:  # noqa: BLE001
                self._fail(job.id, _describe(e))
        return out

    def _fail_unanswered(self, runnable: List[Tuple[Job, OpSpec]], done: List[Measurement]) -> None:
        """A job the session produced nothing for (an identity op, say) would otherwise bounce forever."""
        answered = {m.op.key for m in done}
        for job, spec in runnable:
            if spec.key not in answered and job.id not in self._handled:
                self._fail(job.id, f"the session produced no measurement for {spec.key} (identity ops are not timed)")

    @staticmethod
    def _tag(ms: List[Measurement], by_key: Dict[str, int]) -> List[Measurement]:
        out = []
        for m in ms:
            if m.job_id is None and m.op.key in by_key:
                m = m.model_copy(update={"job_id": by_key[m.op.key]})
            out.append(m)
        return out

    def _fail(self, job_id: int, error: str) -> None:
        log.warning("job %d failed: %s", job_id, error)
        self.stats.failed += 1
        self._handled.add(job_id)
        try:
            self.api.fail_job(job_id, error)
        except AuthError:
            raise
        except ApiError as e:
            log.warning("could not report job %d as failed (%s); its lease will expire", job_id, e)

    def _release(self, job_ids: List[int]) -> None:
        self._handled.update(job_ids)
        for jid in job_ids:
            try:
                self.api.release_job(jid)
                self.stats.released += 1
            except AuthError:
                raise
            except ApiError as e:
                log.warning("could not release job %d (%s); its lease will expire", jid, e)
        if job_ids:
            log.warning("released %d job(s) back to the queue", len(job_ids))

    # -- reporting -----------------------------------------------------------------------
    def summary_rows(self) -> List[Tuple[str, Any]]:
        s = self.stats
        return [
            ("target", self.target.id),
            ("device", f"{self.cfg.name} ({self.cfg.device_class})"),
            ("run id", self.run_id),
            ("jobs claimed", s.claimed),
            ("ops measured", s.measured),
            ("networks validated", s.validated),
            ("jobs failed", s.failed),
            ("jobs released", s.released),
            ("accepted by server", s.accepted),
            ("duplicates", s.duplicates),
            ("rejected", s.rejected),
            ("batches left in spool", self.pending),
            ("wall time (s)", round(time.monotonic() - s.started, 1)),
        ]


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
