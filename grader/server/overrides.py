"""Manual overrides: the instructor's word on one check's score or on a submission's total.

Why a module of its own, apart from the pages: the learner's pages, the JSON API, the gradebook
and the exports must all show the same overridden score, so :func:`adjust` is the one place that
computes it (``views._view`` calls it), and :func:`record` the one place that stores one (with its
audit event, in the same transaction).

The rules, so that a score never changes without a trace:

- An override is kept per submission, not per grading: a regrade (a new job) keeps it. A check
  override replaces that check's graded score in the total (``total + new - graded``); when a
  regrade no longer has the check, the override is shown as not applying and changes nothing.
- A total override replaces the total outright. It is final: the late penalty, which applies to
  the graded total (check overrides included), does not apply on top of it.
- Scores stay within ``0..max_score`` of the check or of the submission.
- The report on disk is never rewritten; the server shows the overrides above it
  (``reports.report_response``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.results.record import RESULTS_FILE, ScoredCheck, load_results
from grader.server.db import Database
from grader.server.models import AuditEvent, Job, JobStatus, Override, Submission, utcnow

TOTAL = ""  # the check name that means "the submission's total"
PENDING = (JobStatus.QUEUED, JobStatus.GRADING)


class OverrideError(ValueError):
    """An override that cannot be stored; the message says why (shown as a 400)."""


@dataclass(frozen=True)
class Applied:
    """One override in force, as the pages show it."""

    check: str  # TOTAL for the total
    score: float
    original: float | None  # the graded value it replaces
    max_score: float | None
    comment: str
    at: dt.datetime
    applies: bool  # False: the check is not in the latest grading

    @property
    def label(self) -> str:
        return "Total" if self.check == TOTAL else self.check


@dataclass(frozen=True)
class Adjusted:
    raw: float | None  # the graded total with check overrides (before any late penalty)
    total: float | None  # a total override, final
    applied: tuple[Applied, ...]


def checks_of(data_dir: Path, job: Job | None) -> dict[str, ScoredCheck]:
    """The checks of a grading, by name, from its results record (empty when there is none)."""
    if job is None or not job.result_dir:
        return {}
    result = load_results(Path(data_dir) / job.result_dir / RESULTS_FILE)
    return {check.name: check for check in result.checks} if result is not None else {}


def in_force(rows: list[Override]) -> dict[str, Override]:
    """The latest override per check, without the cleared ones."""
    latest: dict[str, Override] = {}
    for row in sorted(rows, key=lambda r: r.id):
        latest[row.check_name] = row
    return {name: row for name, row in latest.items() if row.score is not None}


def adjust(submission: Submission, job: Job | None, data_dir: Path) -> Adjusted:
    """The graded score of ``job`` with the submission's overrides applied."""
    if job is None or job.status in PENDING:
        return Adjusted(None, None, ())
    raw = job.score
    rows = in_force(list(getattr(submission, "overrides", None) or []))
    if not rows:
        return Adjusted(raw, None, ())
    checks = checks_of(data_dir, job) if set(rows) - {TOTAL} else {}
    applied: list[Applied] = []
    for name, row in sorted(rows.items(), key=lambda item: (item[0] == TOTAL, item[0])):
        assert row.score is not None
        if name == TOTAL:
            applied.append(
                Applied(name, row.score, raw, job.max_score, row.comment, row.created_at, True)
            )
            continue
        check = checks.get(name)
        if check is not None and raw is not None:
            raw += row.score - check.score
        applied.append(
            Applied(
                name,
                row.score,
                check.score if check else None,
                check.max_score if check else None,
                row.comment,
                row.created_at,
                check is not None and job.score is not None,
            )
        )
    if raw is not None:
        raw = round(min(max(raw, 0.0), job.max_score or raw), 4)
    total = rows[TOTAL].score if TOTAL in rows else None
    return Adjusted(raw, total, tuple(applied))


def parse_score(text: str) -> float | None:
    """A score typed in the form: a plain decimal number, or empty (clears the override)."""
    text = (text or "").strip()
    if not text:
        return None
    if not all(c in "0123456789.+-eE" for c in text) or not text.isascii():
        raise OverrideError(f"the score {text[:40]!r} is not a number (use digits and a dot)")
    try:
        value = float(text)
    except ValueError:
        raise OverrideError(f"the score {text[:40]!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise OverrideError("the score must be a finite number")
    return value


def record(
    db: Database,
    data_dir: Path,
    submission_id: int,
    check: str,
    score: float | None,
    comment: str,
    actor: str = "instructor",
) -> Override:
    """Store an override (``score`` None clears it) and its audit event in one transaction, after
    checking that the check exists in the latest grading and the score is within its range."""
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise OverrideError("the comment is longer than 2000 characters")
    if score is not None and not comment:
        raise OverrideError("say why in the comment: the learner reads it beside the score")
    with db.write() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise OverrideError("there is no such submission")
        job = submission.jobs[-1] if submission.jobs else None
        if job is None or job.status in PENDING:
            raise OverrideError("this submission is still being graded: override it afterwards")
        if check == TOTAL:
            limit = job.max_score
            if limit is None:
                raise OverrideError("this grading has no maximum score: regrade it first")
            original: float | None = job.score
        else:
            found = checks_of(data_dir, job).get(check)
            if found is None:
                raise OverrideError(f"the latest grading has no check named {check[:80]!r}")
            limit, original = found.max_score, found.score
        if score is not None and not 0 <= score <= limit:
            raise OverrideError(f"the score must be between 0 and {limit:g}")
        row = Override(
            submission_id=submission_id,
            check_name=check,
            score=score,
            comment=comment,
            actor=actor,
            created_at=utcnow(),
        )
        session.add(row)
        detail: dict[str, Any] = {
            "check": check or "total",
            "score": score,
            "original": original,
            "comment": comment,
            "learner": submission.learner_id,
        }
        session.add(
            AuditEvent(
                actor=actor,
                action="override_cleared" if score is None else "score_overridden",
                subject=str(submission_id),
                detail=detail,
            )
        )
        session.flush()
        return row
