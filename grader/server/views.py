"""What the pages and the API show, read from the database: a submission's state, a learner's
list, the gradebook. Every query that returns a learner's rows takes the viewer and filters on
it here, once, so that no route can forget the ownership check.

Why a module apart from the routes: the web pages, the JSON API and the instructor's exports
(``exports``) show the same facts; computing them in one place keeps the late penalty, the feedback
release rule and ownership identical everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from grader.results.record import REPORT_FILE
from grader.server import overrides
from grader.server.assignments import name_of, of_assignment
from grader.server.db import Database
from grader.server.models import AuditEvent, Job, JobStatus, Learner, Submission, utcnow
from grader.server.roster import Identity
from grader.server.settings import Settings

PENDING = (JobStatus.QUEUED, JobStatus.GRADING)
#: Load a submission with its gradings and overrides (what a view of it shows), in one query each.
WITH_GRADINGS = (selectinload(Submission.jobs), selectinload(Submission.overrides))
#: The same for every submission of a learner.
LEARNER_WITH_GRADINGS = (
    selectinload(Learner.submissions).selectinload(Submission.jobs),
    selectinload(Learner.submissions).selectinload(Submission.overrides),
)


@dataclass(frozen=True)
class SubmissionView:
    id: int
    learner_id: str
    number: int
    created_at: dt.datetime
    late: bool
    status: str
    score: float | None  # after the late penalty; None while hidden or not graded
    raw_score: float | None
    max_score: float | None
    message: str
    report: Path | None  # report.html when the viewer may read it
    released: bool
    overrides: tuple[overrides.Applied, ...] = ()  # in force, shown when released
    assignment: str = ""  # the assignment's name

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    def api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "number": self.number,
            "status": self.status,
            "score": self.score,
            "max_score": self.max_score if self.released else None,
            "late": self.late,
            "submitted_at": self.created_at.isoformat(),
            "report": self.report is not None,
            "assignment": self.assignment,
        }


def _view(
    submission: Submission, data_dir: Path, settings: Settings, *, instructor: bool
) -> SubmissionView:
    job: Job | None = submission.jobs[-1] if submission.jobs else None
    status = job.status if job else JobStatus.QUEUED
    released = (
        instructor or settings.feedback_release == "immediate" or bool(submission.released_at)
    )
    adjusted = overrides.adjust(submission, job, data_dir)  # the instructor's overrides
    raw = adjusted.raw
    score = raw
    assignment = name_of(settings, submission.assignment)
    policy = settings.policy_of(assignment)
    penalty = policy.late_penalty if policy is not None else 0.0
    if raw is not None and submission.late and penalty:
        score = round(raw * (1 - penalty), 4)
    if adjusted.total is not None:  # a total override is final: no late penalty on top
        raw = score = adjusted.total
    report = None
    if job and job.result_dir and released:
        candidate = data_dir / job.result_dir / REPORT_FILE
        report = candidate if candidate.is_file() else None
    return SubmissionView(
        id=submission.id,
        learner_id=submission.learner_id,
        number=submission.number,
        created_at=submission.created_at,
        late=submission.late,
        status=str(status),
        score=score if released else None,
        raw_score=raw if released else None,
        max_score=job.max_score if job else None,
        message=(job.message if job else "") if released else "",
        report=report,
        released=released,
        overrides=adjusted.applied if released else (),
        assignment=assignment,
    )


def submission_for(
    db: Database, data_dir: Path, settings: Settings, viewer: Identity, submission_id: int
) -> SubmissionView | None:
    """One submission, or None when it does not exist or the viewer is another learner (the
    caller answers 404 either way: no way to tell someone else's ids from missing ones)."""
    with db.read() as session:
        query = (
            select(Submission)
            .options(selectinload(Submission.jobs))
            .where(Submission.id == submission_id)
        )
        if not viewer.is_instructor:
            query = query.where(Submission.learner_id == viewer.learner_id)
        submission = session.scalar(query)
        if submission is None:
            return None
        return _view(submission, data_dir, settings, instructor=viewer.is_instructor)


def submissions_of(
    db: Database, data_dir: Path, settings: Settings, learner_id: str, assignment: str = ""
) -> list[SubmissionView]:
    """A learner's own submissions (of ``assignment`` only, when named), newest first."""
    with db.read() as session:
        query = (
            select(Submission)
            .options(selectinload(Submission.jobs))
            .where(Submission.learner_id == learner_id)
            .order_by(Submission.id.desc())
        )
        if assignment:
            query = query.where(of_assignment(Submission.assignment, settings, assignment))
        rows = session.scalars(query).all()
        return [_view(s, data_dir, settings, instructor=False) for s in rows]


def learner_name(db: Database, learner_id: str) -> str:
    with db.read() as session:
        learner = session.get(Learner, learner_id)
        return learner.name or learner.id if learner else learner_id


@dataclass(frozen=True)
class AssignmentRow:
    """A learner's submissions of one assignment: how many, and the latest (the one graded)."""

    submissions: int
    latest: SubmissionView | None


@dataclass(frozen=True)
class GradebookRow:
    learner: Learner
    assignments: dict[str, AssignmentRow]  # by name, in the course's order

    @property
    def submissions(self) -> int:
        return sum(row.submissions for row in self.assignments.values())

    @property
    def latest(self) -> SubmissionView | None:
        """The latest submission of the default (first) assignment."""
        return next(iter(self.assignments.values())).latest


def gradebook(db: Database, data_dir: Path, settings: Settings) -> list[GradebookRow]:
    """One row per learner on the roster, with their latest submission of each of the course's
    assignments (instructor only)."""
    names = [policy.name for policy in settings.course_assignments()]
    with db.read() as session:
        learners = session.scalars(
            select(Learner).options(*LEARNER_WITH_GRADINGS).order_by(Learner.id)
        ).all()
        rows = []
        for learner in learners:
            ordered = sorted(learner.submissions, key=lambda s: s.id)
            per: dict[str, AssignmentRow] = {}
            for name in names:
                mine = [s for s in ordered if name_of(settings, s.assignment) == name]
                latest = _view(mine[-1], data_dir, settings, instructor=True) if mine else None
                per[name] = AssignmentRow(len(mine), latest)
            rows.append(GradebookRow(learner, per))
        return rows


def release_feedback(db: Database, actor: str = "instructor") -> int:
    """Release the report of every submission whose grading ended (``feedback_release: manual``); how many."""
    now = utcnow()
    with db.write() as session:
        unreleased = session.scalars(
            select(Submission)
            .options(selectinload(Submission.jobs))
            .where(Submission.released_at.is_(None))
        ).all()
        pending = [s for s in unreleased if s.jobs and s.jobs[-1].status not in PENDING]
        for submission in pending:
            submission.released_at = now
        session.add(
            AuditEvent(actor=actor, action="feedback_released", detail={"count": len(pending)})
        )
        return len(pending)
