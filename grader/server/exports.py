"""The instructor's gradebook as data, and its exports: ``gradebook.csv`` and the import files of
the two LMSs a course most often uses, chosen by name from :data:`GRADE_EXPORTS`.

Why here and not in the page: the gradebook page, ``gradebook.csv`` (also
``/api/v1/gradebook.csv``), the Canvas and the Moodle CSV all show the same scores per learner,
computed once in :func:`gradebook_lines` from ``views.gradebook`` (latest submission, late
penalty, feedback release and the instructor's overrides applied there), with the course total
of ``totals`` (notebook and quiz, each scaled to its points). Learner-controlled text (names,
ids, emails, roster columns) is made spreadsheet-safe by ``grader.spreadsheet``: a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``. A new
export is one entry of :data:`GRADE_EXPORTS` (the route, its link and its file name read it).

Roster columns used by the exports (``grader roster add`` keeps extra columns):
``canvas_id`` (Canvas's numeric user ID), ``sis_user_id`` (default: the roster id),
``sis_login_id``, ``section``, ``sortable_name`` ("Last, First"), ``first_name``, ``last_name``,
``idnumber`` (Moodle's ID number; default: the roster id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from grader.server import totals, views
from grader.server.db import Database
from grader.server.models import Learner, QuizAttempt
from grader.server.settings import Settings
from grader.spreadsheet import csv_text


@dataclass(frozen=True)
class QuizScore:
    score: float
    max_score: float


def quiz_score(db: Database, learner_id: str) -> QuizScore | None:
    """The learner's graded quiz score: their best submitted attempt (the quiz's pass rule reads
    the best one too), None before their first submitted attempt. The one place the gradebook
    reads the signed-in quiz (``quiz_attempts``)."""
    with db.read() as session:
        best = session.scalars(
            select(QuizAttempt)
            .where(
                QuizAttempt.learner_id == learner_id,
                QuizAttempt.score.is_not(None),
                QuizAttempt.practice.is_(False),  # practice attempts are never graded
            )
            .order_by(QuizAttempt.score.desc(), QuizAttempt.number)
            .limit(1)
        ).first()
        if best is None or best.max_score is None:
            return None
        return QuizScore(float(best.score), float(best.max_score))


@dataclass(frozen=True)
class GradebookLine:
    learner: Learner
    submissions: int
    latest: views.SubmissionView | None
    quiz: QuizScore | None
    course_total: totals.Total

    @property
    def notebook(self) -> float | None:
        return self.latest.score if self.latest else None

    @property
    def total(self) -> float | None:
        """The course total (``totals``); None while the learner has no score at all."""
        return self.course_total.score

    @property
    def total_max(self) -> float:
        return self.course_total.maximum

    @property
    def status(self) -> str:
        return self.latest.status if self.latest else "not submitted"

    @property
    def overridden(self) -> bool:
        return bool(self.latest and self.latest.overrides)


def line_total(
    latest: views.SubmissionView | None, quiz: QuizScore | None, scale: totals.Scale
) -> totals.Total:
    """The course total of a learner's latest submission (as the viewer may see it) and quiz."""
    return totals.course_total(
        latest.score if latest else None,
        latest.max_score if latest else None,
        (quiz.score, quiz.max_score) if quiz else None,
        scale,
    )


def gradebook_lines(
    db: Database, data_dir: Path, settings: Settings, quiz_max: float | None
) -> list[GradebookLine]:
    """One line per roster learner, ordered by id. ``quiz_max``: the course quiz's points
    (``totals.quiz_maximum``), None when it has no quiz."""
    scale = totals.scale_of(db, settings, quiz_max)
    lines = []
    for row in views.gradebook(db, data_dir, settings):
        quiz = quiz_score(db, row.learner.id)
        lines.append(
            GradebookLine(
                row.learner, row.submissions, row.latest, quiz, line_total(row.latest, quiz, scale)
            )
        )
    return lines


def learner_total(
    db: Database, data_dir: Path, settings: Settings, learner_id: str, quiz_max: float | None
) -> totals.Total:
    """A learner's course total as they may see it (feedback not released counts 0): their
    home page and the scores posted to an LMS."""
    rows = views.submissions_of(db, data_dir, settings, learner_id)
    scale = totals.scale_of(db, settings, quiz_max)
    return line_total(rows[0] if rows else None, quiz_score(db, learner_id), scale)


def _number(value: float | None) -> object:
    return "" if value is None else f"{value:g}"


def _extra(learner: Learner, key: str, default: str = "") -> str:
    value = (learner.extra or {}).get(key)
    return str(value) if value not in (None, "") else default


def _name_parts(learner: Learner) -> tuple[str, str]:
    """(first, last): the roster's first_name/last_name, else the name split at its last space."""
    first, last = _extra(learner, "first_name"), _extra(learner, "last_name")
    if first or last:
        return first, last
    words = (learner.name or "").split()
    if len(words) < 2:
        return learner.name or "", ""
    return " ".join(words[:-1]), words[-1]


def _write(header: list[str], rows: list[list[object]]) -> str:
    return csv_text(header, rows, lineterminator="\r\n")


GRADEBOOK_COLUMNS = (
    "id",
    "name",
    "email",
    "submissions",
    "submission_id",
    "submitted_at",
    "status",
    "score",
    "max_score",
    "late",
    "raw_score",
    "quiz_score",
    "quiz_max_score",
    "total",
    "total_max_score",
)


def _blank(value: object) -> object:
    return "" if value is None else value


def gradebook_csv(lines: list[GradebookLine], column: str = "") -> str:
    """``gradebook.csv``: one row per roster learner: their latest submission's state and score,
    their quiz score and the course total (``totals``; the LMS files carry the same total)."""
    rows = []
    for line in lines:
        latest = line.latest
        rows.append(
            [
                line.learner.id,
                line.learner.name,
                line.learner.email,
                line.submissions,
                latest.id if latest else "",
                latest.created_at.isoformat() if latest else "",
                latest.status if latest else "not submitted",
                _blank(latest.score if latest else None),
                _blank(latest.max_score if latest else None),
                "yes" if latest and latest.late else "",
                _blank(latest.raw_score if latest else None),
                _blank(line.quiz.score if line.quiz else None),
                _blank(line.course_total.quiz.maximum if line.course_total.quiz else None),
                _blank(line.total),
                line.total_max,
            ]
        )
    return csv_text(GRADEBOOK_COLUMNS, rows)


def canvas_csv(lines: list[GradebookLine], column: str) -> str:
    """A Canvas Gradebook import file: ``Student, ID, SIS User ID, SIS Login ID, Section`` then
    one assignment column holding each learner's total (empty when there is none: Canvas leaves
    that grade alone).

    Format, as Canvas documents it (Gradebook > Import; the file an export gives): the first five
    columns identify the student (the name as "Last, First", or Canvas's user ID, or the SIS user
    ID; Canvas matches on them), then one column per assignment; a header matching no assignment
    creates a new one, and to update an existing one use its header as Canvas exports it,
    "Name (assignment id)" (the ``column`` argument).
    Sources: https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
    and https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/gradebook-action-menu-faculty/
    """
    rows = []
    for line in lines:
        learner = line.learner
        first, last = _name_parts(learner)
        sortable = _extra(learner, "sortable_name") or (f"{last}, {first}" if last else first)
        rows.append(
            [
                sortable,
                _extra(learner, "canvas_id"),
                _extra(learner, "sis_user_id", learner.id),
                _extra(learner, "sis_login_id"),
                _extra(learner, "section"),
                _number(line.total),
            ]
        )
    return _write(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column], rows)


def moodle_csv(lines: list[GradebookLine], column: str) -> str:
    """A Moodle grade import file (Grades > Import > CSV file): ``First name, Last name,
    ID number, Email address`` then one grade column holding each learner's total.

    Format, as Moodle documents it: the import reads the columns of a grade export; on the
    mapping page choose "Map from: Email address" to "Map to: useremail" (or "ID number" to
    "useridnumber") and map the grade column to the grade item. Email addresses are matched
    case-sensitively, so they are written as the roster holds them. An empty cell imports no
    grade. Source: https://docs.moodle.org/311/en/Grade_import (and /27/en/Grade_import)
    """
    rows = []
    for line in lines:
        learner = line.learner
        first, last = _name_parts(learner)
        rows.append(
            [
                first,
                last,
                _extra(learner, "idnumber", learner.id),
                learner.email,
                _number(line.total),
            ]
        )
    return _write(["First name", "Last name", "ID number", "Email address", column], rows)


@dataclass(frozen=True)
class GradeExport:
    """One export of the gradebook: its file name, its link's text and how it is written from
    the gradebook lines and the LMS grade column's name."""

    name: str
    filename: str
    label: str
    render: Callable[[list[GradebookLine], str], str]


GRADE_EXPORTS: dict[str, GradeExport] = {
    export.name: export
    for export in (
        GradeExport("gradebook", "gradebook.csv", "gradebook.csv", gradebook_csv),
        GradeExport("canvas", "canvas-import.csv", "Canvas import CSV", canvas_csv),
        GradeExport("moodle", "moodle-import.csv", "Moodle import CSV", moodle_csv),
    )
}
