"""The instructor's gradebook as data, and its exports: ``gradebook.csv`` and the import files of
the two LMSs a course most often uses, chosen by name from :data:`GRADE_EXPORTS`.

Why here and not in the page: the gradebook page, ``gradebook.csv`` (also
``/api/v1/gradebook.csv``), the Canvas and the Moodle CSV all show the same scores per learner,
computed once in :func:`gradebook_lines` from ``views.gradebook`` (latest submission of each
assignment, late penalty, feedback release and the instructor's overrides applied there), with
the course total of ``totals`` (each assignment and the quiz, each scaled to its points).
Learner-controlled text (names, ids, emails, roster columns) is made spreadsheet-safe by
``grader.spreadsheet``: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is prefixed with ``'``. A new export is one entry of :data:`GRADE_EXPORTS` (the route,
its link and its file name read it).

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
from grader.server.assignments import stored_names
from grader.server.db import Database
from grader.server.models import Learner, QuizAttempt
from grader.server.settings import Settings
from grader.spreadsheet import csv_text


@dataclass(frozen=True)
class QuizScore:
    score: float
    max_score: float


def quiz_score(
    db: Database, learner_id: str, names: tuple[str, ...] | None = None
) -> QuizScore | None:
    """The learner's graded score of the quiz whose attempts carry ``names``
    (``assignments.stored_names``; None: any quiz's): their best submitted attempt (the quiz's
    pass rule reads the best one too), None before their first submitted attempt. The one
    place the gradebook reads the signed-in quiz (``quiz_attempts``)."""
    with db.read() as session:
        query = select(QuizAttempt).where(
            QuizAttempt.learner_id == learner_id,
            QuizAttempt.score.is_not(None),
            QuizAttempt.practice.is_(False),  # practice attempts are never graded
        )
        if names is not None:
            query = query.where(QuizAttempt.assignment.in_(names))
        best = session.scalars(
            query.order_by(QuizAttempt.score.desc(), QuizAttempt.number).limit(1)
        ).first()
        if best is None or best.max_score is None:
            return None
        return QuizScore(float(best.score), float(best.max_score))


@dataclass(frozen=True)
class GradebookLine:
    learner: Learner
    assignments: dict[str, views.AssignmentRow]  # by name, in the course's order
    quizzes: dict[str, QuizScore | None]  # each quiz's by its assignment's name
    course_total: totals.Total

    @property
    def quiz(self) -> QuizScore | None:
        """The first quiz's score (the default assignment's)."""
        return next(iter(self.quizzes.values()), None)

    @property
    def submissions(self) -> int:
        return sum(row.submissions for row in self.assignments.values())

    @property
    def latest(self) -> views.SubmissionView | None:
        """The default (first) assignment's latest submission."""
        return next(iter(self.assignments.values())).latest

    @property
    def latests(self) -> list[views.SubmissionView]:
        """The latest submission of each assignment that has one."""
        return [row.latest for row in self.assignments.values() if row.latest is not None]

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
    latests: dict[str, views.SubmissionView | None],
    quizzes: dict[str, QuizScore | None],
    scales: tuple[totals.Scale, ...],
) -> totals.Total:
    """The course total of a learner's latest submission of each assignment (by name, as the
    viewer may see it) and their score of each assignment's quiz."""
    scores: dict[str, tuple[float | None, float | None]] = {}
    for scale in scales:
        if scale.kind == totals.ASSIGNMENT and latests.get(scale.name) is not None:
            latest = latests[scale.name]
            assert latest is not None
            scores[scale.key] = (latest.score, latest.max_score)
        elif scale.kind == totals.QUIZ and quizzes.get(scale.name) is not None:
            quiz = quizzes[scale.name]
            assert quiz is not None
            scores[scale.key] = (quiz.score, quiz.max_score)
    return totals.course_total(scores, scales)


def _quizzes(
    db: Database, settings: Settings, learner_id: str, scales: tuple[totals.Scale, ...]
) -> dict[str, QuizScore | None]:
    """The learner's score of each quiz of ``scales``, by its assignment's name."""
    return {
        scale.name: quiz_score(db, learner_id, stored_names(settings, scale.name))
        for scale in scales
        if scale.kind == totals.QUIZ
    }


def gradebook_lines(
    db: Database, data_dir: Path, settings: Settings, quiz_max: totals.QuizMaxima
) -> list[GradebookLine]:
    """One line per roster learner, ordered by id. ``quiz_max``: the points of each
    assignment's quiz (``totals.quiz_maximum``), empty or None when the course has none."""
    scales = totals.scales_of(db, settings, quiz_max)
    lines = []
    for row in views.gradebook(db, data_dir, settings):
        quizzes = _quizzes(db, settings, row.learner.id, scales)
        latests = {name: each.latest for name, each in row.assignments.items()}
        total = line_total(latests, quizzes, scales)
        lines.append(GradebookLine(row.learner, row.assignments, quizzes, total))
    return lines


def learner_total(
    db: Database,
    data_dir: Path,
    settings: Settings,
    learner_id: str,
    quiz_max: totals.QuizMaxima,
) -> totals.Total:
    """A learner's course total as they may see it (feedback not released counts 0): their
    home page and the scores posted to an LMS."""
    rows = views.submissions_of(db, data_dir, settings, learner_id)  # newest first
    latests: dict[str, views.SubmissionView | None] = {}
    for row in rows:
        latests.setdefault(row.assignment, row)
    scales = totals.scales_of(db, settings, quiz_max)
    return line_total(latests, _quizzes(db, settings, learner_id, scales), scales)


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


def _assignment_cells(row: views.AssignmentRow) -> list[object]:
    latest = row.latest
    return [
        row.submissions,
        latest.id if latest else "",
        latest.created_at.isoformat() if latest else "",
        latest.status if latest else "not submitted",
        _blank(latest.score if latest else None),
        _blank(latest.max_score if latest else None),
        "yes" if latest and latest.late else "",
        _blank(latest.raw_score if latest else None),
    ]


#: The columns of each assignment after the first, named ``<assignment>_<column>``.
ASSIGNMENT_COLUMNS = GRADEBOOK_COLUMNS[3:11]


def _item_name(part: totals.Part, first_quiz: str) -> str:
    """An item's name in the column headers: the assignment's; ``quiz`` for the first quiz,
    ``<assignment>_quiz`` for another's."""
    if part.scale.kind == totals.ASSIGNMENT:
        return part.scale.name
    return "quiz" if part.scale.name == first_quiz else f"{part.scale.name}_quiz"


def _first_quiz(line: GradebookLine) -> str:
    return next(iter(line.quizzes), "")


def gradebook_header(lines: list[GradebookLine]) -> list[str]:
    """``GRADEBOOK_COLUMNS`` (the first assignment's columns unprefixed, as in a one-assignment
    course), then each further assignment's columns prefixed with its name (its quiz's score
    columns, when it has one, ``<assignment>_quiz_score`` and ``_quiz_max_score``), then one
    ``<item>_counted`` column per item (``quiz_counted`` for the first quiz): its score as it
    counts in the total, scaled to its points (what an LMS receives for that item)."""
    if not lines:
        return list(GRADEBOOK_COLUMNS)
    further = list(lines[0].assignments)[1:]
    first_quiz = _first_quiz(lines[0])
    header = list(GRADEBOOK_COLUMNS[:11])
    header += [f"{name}_{column}" for name in further for column in ASSIGNMENT_COLUMNS]
    header += list(GRADEBOOK_COLUMNS[11:13])
    for name in list(lines[0].quizzes)[1:]:
        header += [f"{name}_quiz_score", f"{name}_quiz_max_score"]
    header += list(GRADEBOOK_COLUMNS[13:])
    header += [f"{_item_name(part, first_quiz)}_counted" for part in lines[0].course_total.parts]
    return header


def gradebook_csv(lines: list[GradebookLine], column: str = "") -> str:
    """``gradebook.csv``: one row per roster learner: their latest submission's state and score
    of each assignment, their quiz score, each item's counted points and the course total
    (``totals``; the LMS files carry the same total)."""
    rows = []
    for line in lines:
        each = list(line.assignments.values())
        row: list[object] = [line.learner.id, line.learner.name, line.learner.email]
        row += _assignment_cells(each[0])
        for further in each[1:]:
            row += _assignment_cells(further)
        quizzes = line.course_total.quizzes
        if not quizzes:
            row += ["", ""]
        for part in quizzes:
            row += [_blank(part.score), _blank(part.maximum)]
        row += [_blank(line.total), line.total_max]
        row += [_blank(None if p.score is None else p.counted) for p in line.course_total.parts]
        rows.append(row)
    return csv_text(gradebook_header(lines), rows)


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
