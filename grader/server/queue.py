"""The grading queue: jobs in the database, claimed under a lease, graded on Dask.

Why this shape. The queue is the ``jobs`` table, so an acknowledged upload is never only in
memory. A dispatcher thread claims a queued job with ``UPDATE jobs SET status='grading',
lease_owner=…, lease_expires=… WHERE id=… AND status='queued'`` inside :meth:`Database.write`
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``), so two dispatchers (two
server processes on one PostgreSQL database) never take the same job. The work runs on Dask
distributed, an existing engine: a ``LocalCluster`` of ``-j`` single-threaded worker processes, or
an existing scheduler (``--scheduler``). Each task grades in a child process of the Dask worker
under the wall-clock limit (as ``grader.batch.jobs.grade_job_bounded`` does), gets the notebook by
value and hands back the result files by value, so remote workers need no shared disk.

Exactly once: the dispatcher renews its leases while grading; a server killed with ``kill -9``
stops renewing, and at the next start (or in another server once the lease expires) the job is
requeued. A result is recorded in one transaction guarded by the lease (owner and attempt), so a
stale worker's late result is dropped, and each attempt writes into a folder of its own, so it
cannot overwrite the recorded one. Statuses that are not verdicts (``timeout``, ``error``,
``killed``: ``grader.batch.common.RETRY_STATUSES``) are graded again up to ``max_attempts``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import pickle
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update

from grader.batch.common import RETRY_STATUSES
from grader.files import write_atomically
from grader.server.db import Database
from grader.server.models import AuditEvent, Job, JobStatus, Submission, utcnow
from grader.server.settings import Settings

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
POLL_SECONDS = 1.0  # how often the dispatcher looks for jobs queued by another server process

#: grade(path, out_dir, *, sandbox_mode, hidden_seed) -> (status, score, max_score); writes
#: results.json and report.html into out_dir. Module-level, so that it is sent by reference.
GradeFn = Callable[..., tuple[str, float, float]]


def grade_one(
    path: Path, out_dir: Path, *, sandbox_mode: str, hidden_seed: int | None
) -> tuple[str, float, float]:
    """Grade one notebook with the engine of ``grader grade``; results.json and report.html go
    into ``out_dir``. The only place the server calls the grading engine (its layout may move)."""
    from grader.grade import grade_notebook, write_outputs

    result = grade_notebook(Path(path), sandbox_mode=sandbox_mode, hidden_seed=hidden_seed)
    result.submission_id = Path(out_dir).name  # write_outputs writes into out_dir.parent/<id>
    write_outputs(result, Path(out_dir).parent)
    return str(result.status), float(result.score), float(result.max_score)


# --------------------------------------------------------------------------------------------
# What a Dask worker runs


@dataclass(frozen=True)
class Task:
    """One grading, by value: the notebook's bytes and how to grade it."""

    job_id: int
    name: str
    data: bytes
    sandbox_mode: str
    hidden_seed: int | None
    timeout: float


def _task_main(task_file: str, outcome_file: str) -> None:  # pragma: no cover - a child process
    """Run by :func:`run_task` in a process of its own."""
    task, grade = pickle.loads(Path(task_file).read_bytes())  # written by our own parent
    write_atomically(Path(outcome_file), pickle.dumps(_grade_here(task, grade)))


def _grade_here(task: Task, grade: GradeFn) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="objloc-serve-") as tmp:
        path = Path(tmp) / "in" / task.name
        path.parent.mkdir()
        path.write_bytes(task.data)
        out = Path(tmp) / "out" / "result"
        out.mkdir(parents=True)
        try:
            status, score, max_score = grade(
                path, out, sandbox_mode=task.sandbox_mode, hidden_seed=task.hidden_seed
            )
        except Exception as error:  # a grader bug: this job says so, the queue goes on
            return {"status": "error", "message": f"grader error: {type(error).__name__}: {error}"}
        files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        return {"status": str(status), "score": score, "max_score": max_score, "files": files}


def run_task(task: Task, grade: GradeFn) -> dict[str, Any]:
    """Grade ``task`` in a child process stopped after ``task.timeout`` s (status ``timeout``).

    A child process, as in ``grader.batch.jobs.grade_job_bounded``: a grading that hangs or eats
    memory ends with its process group, the Dask worker lives on, and TensorFlow's memory is given
    back after each grading. Never raises for a failed grading: its outcome says what happened.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="objloc-task-") as tmp:
        task_file, outcome_file = Path(tmp) / "task.pickle", Path(tmp) / "outcome.pickle"
        task_file.write_bytes(pickle.dumps((task, grade)))
        code = "import sys; from grader.server.queue import _task_main; _task_main(*sys.argv[1:])"
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(task_file), str(outcome_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the sandboxes it started go with it
        )
        try:
            returncode = process.wait(task.timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:  # also when the task is cancelled: nothing of the grading outlives it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if returncode is None:
            return {
                "status": "timeout",
                "message": f"grading took longer than {task.timeout:g} s and was stopped "
                "(not a verdict: it is graded again)",
            }
        if returncode == 0 and outcome_file.is_file():
            return pickle.loads(outcome_file.read_bytes())
        elapsed = time.monotonic() - started
        return {
            "status": "killed",
            "message": f"the grading process died (exit code {returncode}) after {elapsed:.0f} s: "
            "out of memory?",
        }


# --------------------------------------------------------------------------------------------
# Executors: Dask (the server's), or any concurrent.futures-like one (tests)


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class DaskExecutor:
    """A Dask client as an executor: a local cluster of ``jobs`` single-threaded worker processes,
    or an existing scheduler. ``pure=False``: two gradings of the same bytes are two tasks."""

    def __init__(self, scheduler: str | None = None, jobs: int = 1) -> None:
        from distributed import Client, LocalCluster

        for name in list(logging.root.manager.loggerDict):  # Dask logs every connection at INFO
            if name.startswith("distributed"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=15)
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                # no dashboard; its HTTP server still binds, so on a free loopback port rather
                # than 8787, which a second server or another Dask on the machine would hold
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)

    @property
    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, retries=0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


# --------------------------------------------------------------------------------------------
# The jobs table: claim, renew, record, requeue


@dataclass(frozen=True)
class Claimed:
    job_id: int
    attempt: int
    submission_id: int
    path: str


def new_owner() -> str:
    """A lease owner: this host and process (so a restart can tell its dead predecessor)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim(db: Database, owner: str, lease_seconds: float) -> Claimed | None:
    """Take the oldest queued job under a lease, or None when there is none."""
    now = utcnow()
    with db.write() as session:
        query = select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.id).limit(1)
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        job_id = session.scalar(query)
        if job_id is None:
            return None
        taken = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.GRADING,
                lease_owner=owner,
                lease_expires=now + dt.timedelta(seconds=lease_seconds),
                attempts=Job.attempts + 1,
            )
        )
        if taken.rowcount != 1:
            return None
        job = session.get(Job, job_id)
        assert job is not None
        session.refresh(job)
        session.add(
            AuditEvent(
                actor="server",
                action="grading_started",
                subject=str(job.submission_id),
                detail={"job": job.id, "attempt": job.attempts, "owner": owner},
            )
        )
        return Claimed(job.id, job.attempts, job.submission_id, job.submission.path)


def renew(db: Database, owner: str, job_ids: list[int], lease_seconds: float) -> None:
    if not job_ids:
        return
    with db.read() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.status == JobStatus.GRADING)
            .values(lease_expires=utcnow() + dt.timedelta(seconds=lease_seconds))
        )


def record(
    db: Database,
    claimed: Claimed,
    owner: str,
    outcome: dict[str, Any],
    result_dir: str | None,
    max_attempts: int,
) -> bool:
    """Record a grading's outcome if this owner still holds the job's lease for this attempt;
    False (nothing written) for a stale worker's result."""
    status = str(outcome.get("status", "error"))
    with db.write() as session:
        job = session.scalar(
            select(Job)
            .where(
                Job.id == claimed.job_id,
                Job.status == JobStatus.GRADING,
                Job.lease_owner == owner,
                Job.attempts == claimed.attempt,
            )
            .with_for_update()
        )
        if job is None:
            return False
        job.lease_owner = None
        job.lease_expires = None
        job.message = str(outcome.get("message", ""))[:2000]
        detail = {"job": job.id, "attempt": job.attempts, "status": status}
        if status in RETRY_STATUSES and job.attempts < max_attempts:
            job.status = JobStatus.QUEUED
            action = "grading_retried"
        else:
            job.status = status
            job.score = outcome.get("score")
            job.max_score = outcome.get("max_score")
            job.result_dir = result_dir
            job.finished_at = utcnow()
            action = "graded"
            detail |= {"score": job.score, "max_score": job.max_score}
        session.add(
            AuditEvent(actor="server", action=action, subject=str(job.submission_id), detail=detail)
        )
        return True


def _owner_is_dead(owner: str | None, me: str) -> bool:
    """Whether a lease owner is a process of this host that no longer runs (or this process's
    predecessor with the same pid, e.g. restarted in a container)."""
    if not owner or owner == me:
        return False
    try:
        host, pid_text, _ = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def requeue_lost(db: Database, me: str, max_attempts: int, *, at_start: bool = False) -> int:
    """Requeue jobs whose lease expired (their server died or hung); at start also those held by a
    dead process of this host. A job interrupted ``max_attempts`` times ends as ``killed``."""
    now = utcnow()
    count = 0
    with db.write() as session:
        held = session.scalars(select(Job).where(Job.status == JobStatus.GRADING)).all()
        for job in held:
            expired = job.lease_expires is not None and job.lease_expires < now
            if not expired and not (at_start and _owner_is_dead(job.lease_owner, me)):
                continue
            previous = job.lease_owner
            job.lease_owner = None
            job.lease_expires = None
            if job.attempts >= max_attempts:
                job.status = "killed"
                job.finished_at = now
                job.message = f"the grading was interrupted {job.attempts} times (server died?)"
                action = "graded"
            else:
                job.status = JobStatus.QUEUED
                action = "grading_requeued"
            session.add(
                AuditEvent(
                    actor="server",
                    action=action,
                    subject=str(job.submission_id),
                    detail={"job": job.id, "attempt": job.attempts, "lost_owner": previous},
                )
            )
            count += 1
    return count


def regrade_all(db: Database, actor: str = "cli") -> int:
    """Queue a new grading of every learner's latest submission (after a check changed); one
    already queued or grading is left alone. The number queued."""
    with db.write() as session:
        latest = select(func.max(Submission.id)).group_by(Submission.learner_id).scalar_subquery()
        ids = session.scalars(select(Submission.id).where(Submission.id.in_(latest))).all()
        busy = set(
            session.scalars(
                select(Job.submission_id).where(
                    Job.status.in_([JobStatus.QUEUED, JobStatus.GRADING])
                )
            ).all()
        )
        queued = [i for i in ids if i not in busy]
        for submission_id in queued:
            session.add(Job(submission_id=submission_id, status=JobStatus.QUEUED))
        session.add(AuditEvent(actor=actor, action="regrade_all", detail={"queued": len(queued)}))
    return len(queued)


# --------------------------------------------------------------------------------------------
# The dispatcher thread


@dataclass
class _InFlight:
    claimed: Claimed
    future: Any
    started: float = field(default_factory=time.monotonic)


class Dispatcher:
    """Claims queued jobs and runs them on an executor (Dask by default), records the results.

    ``grade`` is the grading function (:func:`grade_one`; tests pass a fake), ``executor`` any
    object with ``submit(fn, *args) -> future`` (default: :class:`DaskExecutor` over
    ``scheduler`` or a local cluster of ``settings.jobs`` workers).
    """

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        settings: Settings,
        *,
        grade: GradeFn = grade_one,
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
        """Requeue what a dead predecessor held, read the course secret, start the executor."""
        if self._prepared:
            return self
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
            outcome = {"status": "error", "message": f"the stored upload is missing: {error}"}
            record(self.db, claimed, self.owner, outcome, None, max_attempts=1)
            return
        task = Task(
            job_id=claimed.job_id,
            name=path.name,
            data=data,
            sandbox_mode=self.settings.sandbox,
            hidden_seed=self.hidden_seed,
            timeout=self.settings.grading_timeout,
        )
        assert self.executor is not None
        future = self.executor.submit(run_task, task, self.grade)
        self.in_flight[claimed.job_id] = _InFlight(claimed, future)

    def _finish(self, flight: _InFlight) -> None:
        claimed = flight.claimed
        try:
            outcome = flight.future.result()
        except Exception as error:  # the Dask worker died (KilledWorker), or was cancelled
            killed = type(error).__name__ == "KilledWorker"
            outcome = {
                "status": "killed" if killed else "error",
                "message": f"grader error: {type(error).__name__}: {error}"[:500],
            }
        relative = None
        folder = None
        files: dict[str, bytes] = outcome.pop("files", None) or {}
        if files:
            relative = (
                f"{RESULTS_DIR}/{claimed.submission_id}/job{claimed.job_id}-a{claimed.attempt}"
            )
            folder = self.data_dir / relative
            folder.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                if "/" not in name and name not in ("", ".", ".."):
                    write_atomically(folder / name, content)
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
