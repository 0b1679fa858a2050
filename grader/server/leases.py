"""The jobs table as a queue: claim a job under a lease, renew it, record a result guarded by
it, requeue what a dead server held, queue a regrade of everyone.

Why leases: a job claimed by a server that then dies (``kill -9``) must be graded again, once. The
claim is ``UPDATE jobs SET status='grading', lease_owner=…, lease_expires=… WHERE id=… AND
status='queued'`` inside :meth:`Database.write` (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``FOR
UPDATE SKIP LOCKED``), so two dispatchers never take one job. A result is recorded only while its
owner still holds the lease for that attempt, in the transaction that logs the ``graded`` event, so
a stale worker's late result is dropped and a submission is graded once. The owner names its host
and process, so a restarted server takes over at once what its dead predecessor held instead of
waiting for the lease to run out.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from grader.batch.common import RETRY_STATUSES
from grader.server.db import Database
from grader.server.models import AuditEvent, Job, JobStatus, Submission, utcnow

if TYPE_CHECKING:
    from grader.job import GradingOutcome


@dataclass(frozen=True)
class Claimed:
    """A job taken under a lease, with what its grading needs of its submission."""

    job_id: int
    attempt: int
    submission_id: int
    path: str  # the stored upload, relative to DIR
    sha256: str  # of the stored upload, taken when it was stored
    file_name: str  # as the learner named it ("" when unknown: stored before names were kept)
    learner: str  # as the report names them: "Name (id)", or the id


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
        submission = job.submission
        session.add(
            AuditEvent(
                actor="server",
                action="grading_started",
                subject=str(job.submission_id),
                detail={"job": job.id, "attempt": job.attempts, "owner": owner},
            )
        )
        learner = submission.learner
        shown = (
            f"{learner.name} ({learner.id})" if learner.name not in ("", learner.id) else learner.id
        )
        return Claimed(
            job.id,
            job.attempts,
            job.submission_id,
            submission.path,
            submission.sha256,
            submission.filename or "",
            shown,
        )


def renew(db: Database, owner: str, job_ids: list[int], lease_seconds: float) -> None:
    if not job_ids:
        return
    with db.write() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.status == JobStatus.GRADING)
            .values(lease_expires=utcnow() + dt.timedelta(seconds=lease_seconds))
        )


def release(db: Database, owner: str) -> int:
    """Put back in the queue the jobs this owner holds (a server stopping cleanly); the attempt
    it used is given back, since the grading was not the job's fault. How many."""
    with db.write() as session:
        held = session.scalars(
            select(Job).where(Job.lease_owner == owner, Job.status == JobStatus.GRADING)
        ).all()
        for job in held:
            job.status = JobStatus.QUEUED
            job.lease_owner = None
            job.lease_expires = None
            job.attempts = max(0, job.attempts - 1)
            session.add(
                AuditEvent(
                    actor="server",
                    action="grading_requeued",
                    subject=str(job.submission_id),
                    detail={"job": job.id, "reason": "server stopped"},
                )
            )
        return len(held)


def record(
    db: Database,
    claimed: Claimed,
    owner: str,
    outcome: GradingOutcome,
    result_dir: str | None,
    max_attempts: int,
) -> bool:
    """Record a grading's outcome if this owner still holds the job's lease for this attempt;
    False (nothing written) for a stale worker's result."""
    status = str(outcome.status)
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
        job.message = outcome.message[:2000]
        detail = {"job": job.id, "attempt": job.attempts, "status": status}
        if status in RETRY_STATUSES and job.attempts < max_attempts:
            job.status = JobStatus.QUEUED
            action = "grading_retried"
        else:
            job.status = status
            job.score = outcome.score
            job.max_score = outcome.max_score
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
    """Queue a new grading of every learner's latest submission of each assignment (after a
    check changed); one already queued or grading is left alone. The number queued."""
    with db.write() as session:
        latest = (
            select(func.max(Submission.id))
            .group_by(Submission.learner_id, Submission.assignment)
            .scalar_subquery()
        )
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
