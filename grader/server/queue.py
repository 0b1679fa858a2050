"""The grading queue: jobs in the database, claimed under a lease, graded on Dask.

Why this shape. The queue is the ``jobs`` table, so an acknowledged upload is never only in
memory. A dispatcher thread claims a queued job with ``UPDATE jobs SET status='grading',
lease_owner=…, lease_expires=… WHERE id=… AND status='queued'`` inside :meth:`Database.write`
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``), so two dispatchers (two
server processes on one PostgreSQL database) never take the same job. The work runs on Dask
distributed, an existing engine: a ``LocalCluster`` of ``-j`` single-threaded worker processes, or
an existing scheduler (``--scheduler``). Each grading is a ``grader.job.GradingJob``, the job
``grader grade`` submits, run by ``grader.bounded.grade_bounded`` in a child process of the Dask
worker under the wall-clock limit; it gets the notebook by value and hands back the outcome (the
results record, results.json and report.html) by value, so remote workers need no shared disk.

Exactly once: the dispatcher renews its leases while grading; a server killed with ``kill -9``
stops renewing, and at the next start (or in another server once the lease expires) the job is
requeued. A result is recorded in one transaction guarded by the lease (owner and attempt), so a
stale worker's late result is dropped, and each attempt writes into a folder of its own, so it
cannot overwrite the recorded one. Statuses that are not verdicts (``timeout``, ``error``,
``killed``: ``grader.batch.common.RETRY_STATUSES``) are graded again up to ``max_attempts``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from grader.assignment import Assignment, AssignmentError
from grader.batch.common import DEFAULT_MEMORY_MB
from grader.bounded import grade_bounded
from grader.job import GradeFn, GradingJob, GradingOutcome, grader_failed, grading_limits
from grader.server.assignments import name_of
from grader.server.db import Database
from grader.server.executors import DaskExecutor, Executor
from grader.server.leases import (
    Claimed,
    claim,
    new_owner,
    record,
    regrade_all,
    release,
    renew,
    requeue_lost,
)
from grader.server.models import Job, JobStatus, Submission
from grader.server.settings import Settings
from grader.status import Status

__all__ = ["Dispatcher", "regrade_all"]

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
POLL_SECONDS = 1.0  # how often the dispatcher looks for jobs queued by another server process


def assignment_of(db: Database, settings: Settings, submission_id: int) -> str:
    """The name of the assignment a submission is for (its job is graded as that one)."""
    with db.read() as session:
        stored = session.scalar(select(Submission.assignment).where(Submission.id == submission_id))
    return name_of(settings, stored or "")


@dataclass
class _InFlight:
    claimed: Claimed
    future: Any
    started: float = field(default_factory=time.monotonic)


class Dispatcher:
    """Claims queued jobs and runs them on an executor (Dask by default), records the results.

    ``grade`` is the grading function (None: the engine, ``grader.grade.grade``; tests pass a
    stand-in), ``executor`` any object with ``submit(fn, *args) -> future`` (default:
    :class:`DaskExecutor` over ``scheduler`` or a local cluster of ``settings.jobs`` workers).
    """

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        settings: Settings,
        *,
        grade: GradeFn | None = None,
        executor: Executor | None = None,
        capacity: int | None = None,
        scheduler: str | None = None,
        hidden_seed: int | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.db = db
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.grade = grade
        self.executor = executor
        self._own_executor = executor is None
        self.capacity = capacity
        self.scheduler = scheduler
        self.hidden_seed = hidden_seed
        # the course's assignments by name, resolved once, at prepare(): each job is graded
        # with the one its submission is for
        self.assignments: dict[str, Assignment] = {}
        self.limits: Any = None  # the sandbox's limits: `grader grade`'s, at its default memory
        self.poll_seconds = poll_seconds
        self.owner = new_owner()
        self.in_flight: dict[int, _InFlight] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_renew = 0.0
        self._prepared = False

    # life cycle -------------------------------------------------------------------------

    def prepare(self) -> Dispatcher:
        """Requeue what a dead predecessor held, resolve the assignments and read the course
        secret (once: every job carries them), start the executor."""
        if self._prepared:
            return self
        for policy in self.settings.course_assignments():  # AssignmentError: none such
            if policy.name in self.assignments:
                raise AssignmentError(f"settings: assignments names {policy.name} twice")
            self.assignments[policy.name] = policy.chosen()
        self.limits = grading_limits(DEFAULT_MEMORY_MB)  # as `grader grade` grades
        self._prepared = True
        requeued = requeue_lost(self.db, self.owner, self.settings.max_attempts, at_start=True)
        if requeued:
            log.warning("requeued %d grading(s) interrupted by a server that died", requeued)
        if self.hidden_seed is None:
            from grader.secret import hidden_seed

            self.hidden_seed = hidden_seed()  # by value: Dask workers have no course secret
        if self.executor is None:
            dask = DaskExecutor(self.scheduler, self.settings.jobs)
            self.executor = dask
            if self.capacity is None:  # keep every worker thread busy, one spare each
                self.capacity = dask.capacity if not self.scheduler else 2 * dask.capacity
        self.capacity = self.capacity or self.settings.jobs
        return self

    def start(self) -> Dispatcher:
        """Prepare, then run the dispatcher thread."""
        self.prepare()
        self._thread = threading.Thread(target=self._loop, name="grading-dispatcher", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for queued jobs now (called after an upload)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for flight in self.in_flight.values():
            with contextlib.suppress(Exception):
                flight.future.cancel()
        self.in_flight.clear()
        with contextlib.suppress(Exception):  # else the next start requeues them anyway
            release(self.db, self.owner)
        if self._own_executor and isinstance(self.executor, DaskExecutor):
            self.executor.close()

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the database was briefly unreachable, ...: try again
                log.exception("grading dispatcher step failed")
            self._wake.wait(self.poll_seconds if not self.in_flight else 0.2)
            self._wake.clear()

    def step(self) -> None:
        """One round: collect finished gradings, renew leases, requeue lost jobs, claim more."""
        for job_id, flight in list(self.in_flight.items()):
            if flight.future.done():
                del self.in_flight[job_id]
                self._finish(flight)
        now = time.monotonic()
        if now - self._last_renew > self.settings.lease_seconds / 3:
            renew(self.db, self.owner, list(self.in_flight), self.settings.lease_seconds)
            requeue_lost(self.db, self.owner, self.settings.max_attempts)
            self._last_renew = now
        while len(self.in_flight) < (self.capacity or 1) and not self._stop.is_set():
            claimed = claim(self.db, self.owner, self.settings.lease_seconds)
            if claimed is None:
                break
            self._submit(claimed)

    def _submit(self, claimed: Claimed) -> None:
        path = self.data_dir / claimed.path
        try:
            data = path.read_bytes()
        except OSError as error:
            outcome = GradingOutcome(Status.ERROR, f"the stored upload is missing: {error}")
            record(self.db, claimed, self.owner, outcome, None, max_attempts=1)
            return
        name = assignment_of(self.db, self.settings, claimed.submission_id)
        assignment = self.assignments.get(name)
        if assignment is None:
            message = f"the course has no assignment {name!r} any more (settings.yaml)"
            outcome = GradingOutcome(Status.ERROR, message)
            record(self.db, claimed, self.owner, outcome, None, max_attempts=1)
            return
        assert self.hidden_seed is not None
        job = GradingJob(
            assignment=assignment,
            notebook=data,
            seed=self.hidden_seed,
            file_name=claimed.file_name or path.name,
            learner=claimed.learner,
            submission_id=str(claimed.submission_id),
            limits=self.limits,
            sandbox_mode=self.settings.sandbox,
            sha256=claimed.sha256,  # taken when the upload was stored
        )
        assert self.executor is not None
        timeout = self.settings.grading_timeout
        future = self.executor.submit(grade_bounded, job, timeout, self.grade)
        self.in_flight[claimed.job_id] = _InFlight(claimed, future)

    def _finish(self, flight: _InFlight) -> None:
        claimed = flight.claimed
        try:
            outcome = flight.future.result()
        except Exception as error:  # the Dask worker died (KilledWorker), or was cancelled
            outcome = grader_failed(error)
        relative = None
        folder = None
        if outcome.result is not None:
            relative = (
                f"{RESULTS_DIR}/{claimed.submission_id}/job{claimed.job_id}-a{claimed.attempt}"
            )
            folder = self.data_dir / relative
            outcome.write(folder)
        if not record(self.db, claimed, self.owner, outcome, relative, self.settings.max_attempts):
            log.warning("dropped a stale result of job %d (lease lost)", claimed.job_id)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def drain(self, timeout: float = 60.0) -> bool:
        """Step in this thread until nothing is queued or grading (tests, benchmarks); the
        dispatcher thread must not be running."""
        self.prepare()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            with self.db.read() as session:
                busy = session.scalar(
                    select(func.count(Job.id)).where(
                        Job.status.in_([JobStatus.QUEUED, JobStatus.GRADING])
                    )
                )
            if not busy and not self.in_flight:
                return True
            time.sleep(0.05)
        return False
