"""A learner's course total: the one computation behind every number that adds the course's
items, each assignment's notebook and each assignment's quiz (the gradebook page,
``gradebook.csv``, the Canvas and Moodle files, the learner's home page, the scores posted to an
LMS).

Why one function: views that each add the parts their own way disagree (a quiz counted only
when attempted makes one learner's total out of 110 and another's out of 100). The rules, once:

- An assignment's part is the learner's latest submission of it as ``views`` shows it (late
  penalty and the instructor's overrides applied); a quiz's part is the best submitted
  attempt at that assignment's quiz (``exports.quiz_score``).
- Each item counts for its points in the total (``points`` of each of ``assignments``, or
  ``notebook_points`` of a one-assignment course; each quiz's ``quiz_points``, an assignment's
  own or the top-level one; default: the item's own maximum), its score scaled to them: the
  weights of the total are settings.
- A part without a score yet (no submission, no attempt, a grading in progress, feedback not
  released) counts 0 of its points, so every learner's total has the same maximum.
- A learner with no score in any part has no total (None): nothing to import, nothing to post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from grader.server.assignments import of_assignment
from grader.server.db import Database
from grader.server.models import Job, Submission
from grader.server.settings import Settings
from grader.server.state import QUIZZES_EXTENSION

DEFAULT_NOTEBOOK_MAXIMUM = 100.0  # a notebook's maximum before any grading says what it is
ASSIGNMENT = "assignment"  # the kinds of items
QUIZ = "quiz"


@dataclass(frozen=True)
class Scale:
    """One item of the course total: what it is out of and what it counts for."""

    kind: str  # ASSIGNMENT or QUIZ
    name: str  # the assignment's name (the quiz: the assignment it belongs to)
    title: str
    maximum: float  # the item's own maximum
    points: float | None = None  # what it counts for in the total; None: its own maximum

    @property
    def key(self) -> str:
        """``assignment:NAME`` or ``quiz:NAME``: the item's key everywhere (LTI line items too)."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Part:
    scale: Scale
    score: float | None  # the part's own score; None: none yet (counts 0)
    maximum: float  # the part's own maximum
    points: float  # what the part counts for in the total

    @property
    def key(self) -> str:
        return self.scale.key

    @property
    def counted(self) -> float:
        """The part's score scaled to its points (0 while it has none)."""
        if self.score is None or not self.maximum:
            return 0.0
        return round(self.score / self.maximum * self.points, 4)


@dataclass(frozen=True)
class Total:
    parts: tuple[Part, ...]  # in the course's order: the assignments, then the quiz

    def part(self, key: str) -> Part | None:
        return next((part for part in self.parts if part.key == key), None)

    @property
    def assignments(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.scale.kind == ASSIGNMENT)

    @property
    def notebook(self) -> Part:
        """The default (first) assignment's part."""
        return self.assignments[0]

    @property
    def quiz(self) -> Part | None:
        """The first quiz's part (the default assignment's); None: the course has no quiz."""
        return next(iter(self.quizzes), None)

    @property
    def quizzes(self) -> tuple[Part, ...]:
        """Each assignment's quiz's part, in the course's order."""
        return tuple(part for part in self.parts if part.scale.kind == QUIZ)

    @property
    def score(self) -> float | None:
        """The sum of the parts' counted scores; None when no part has a score."""
        if all(part.score is None for part in self.parts):
            return None
        return round(sum(part.counted for part in self.parts), 4)

    @property
    def maximum(self) -> float:
        return round(sum(part.points for part in self.parts), 4)


def notebook_maximum(db: Database, settings: Settings, name: str) -> float:
    """An assignment's maximum: its gradings' (every grading of one assignment has the same),
    else :data:`DEFAULT_NOTEBOOK_MAXIMUM`."""
    with db.read() as session:
        found = session.scalar(
            select(func.max(Job.max_score))
            .join(Submission, Submission.id == Job.submission_id)
            .where(Job.max_score.is_not(None), of_assignment(Submission.assignment, settings, name))
        )
    return float(found) if found else DEFAULT_NOTEBOOK_MAXIMUM


def quiz_maximum(app: Any) -> dict[str, float]:
    """The points of each assignment's quiz (the app's quiz services) by the assignment's name;
    empty when the course has no quiz."""
    from quiz.scoring import score_quiz

    quizzes = app.extensions.get(QUIZZES_EXTENSION, {})
    return {  # every variant drawn from one bank has the same points: seed 0's
        name: float(score_quiz(quiz.items(0), {}, 0, quiz.policy.pass_mark).max_score)
        for name, quiz in quizzes.items()
    }


QuizMaxima = float | Mapping[str, float] | None  # a float: the default assignment's quiz alone


def scales_of(db: Database, settings: Settings, quiz_max: QuizMaxima) -> tuple[Scale, ...]:
    """The items of this course's totals, in order: each assignment, then each assignment's
    quiz (``quiz_max``: their points by assignment, ``quiz_maximum``), each counting for its
    assignment's ``quiz_points``, else the course's."""
    policies = settings.course_assignments()
    if quiz_max is None or isinstance(quiz_max, float | int):
        quiz_max = {} if quiz_max is None else {policies[0].name: float(quiz_max)}
    found = []
    for policy in policies:
        title = settings.title if len(policies) == 1 else policy.chosen().title
        top = notebook_maximum(db, settings, policy.name)
        found.append(Scale(ASSIGNMENT, policy.name, title, top, policy.points))
    for policy in policies:
        if policy.name in quiz_max:
            title = settings.title if len(quiz_max) == 1 else policy.chosen().title
            top = quiz_max[policy.name]
            points = settings.quiz_points if policy.quiz_points is None else policy.quiz_points
            found.append(Scale(QUIZ, policy.name, f"Quiz: {title}", top, points))
    return tuple(found)


def course_total(
    scores: Mapping[str, tuple[float | None, float | None]], scales: Sequence[Scale]
) -> Total:
    """The total of a learner whose item of key K scored ``scores[K]`` = (score, the score's
    maximum); an item missing there, or with score None, has no score yet."""
    parts = []
    for scale in scales:
        score, top = scores.get(scale.key, (None, None))
        top = top or scale.maximum
        points = top if scale.points is None else scale.points
        parts.append(Part(scale, score, top, points))
    return Total(tuple(parts))
