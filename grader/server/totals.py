"""A learner's course total: the one computation behind every number that adds the notebook and
the quiz (the gradebook page, ``gradebook.csv``, the Canvas and Moodle files, the learner's home
page, the scores posted to an LMS).

Why one function: views that each add the parts their own way disagree (a quiz counted only
when attempted makes one learner's total out of 110 and another's out of 100). The rules, once:

- The notebook's part is the latest submission's score as ``views`` shows it (late penalty and
  the instructor's overrides applied); the quiz's part is the best submitted attempt
  (``exports.quiz_score``).
- Each part counts for its points in the total (``notebook_points``, ``quiz_points`` in the
  settings; default: the part's own maximum), its score scaled to them.
- A part without a score yet (no submission, no attempt, a grading in progress, feedback not
  released) counts 0 of its points, so every learner's total has the same maximum.
- A learner with no score in any part has no total (None): nothing to import, nothing to post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from grader.server.db import Database
from grader.server.models import Job
from grader.server.settings import Settings
from grader.server.state import QUIZ_EXTENSION

DEFAULT_NOTEBOOK_MAXIMUM = 100.0  # the notebook's maximum before any grading says what it is


@dataclass(frozen=True)
class Scale:
    """What each part is out of and what it counts for in the total."""

    notebook_maximum: float
    quiz_maximum: float | None  # None: the course has no quiz
    notebook_points: float | None = None  # None: the part's own maximum
    quiz_points: float | None = None


@dataclass(frozen=True)
class Part:
    score: float | None  # the part's own score; None: none yet (counts 0)
    maximum: float  # the part's own maximum
    points: float  # what the part counts for in the total

    @property
    def counted(self) -> float:
        """The part's score scaled to its points (0 while it has none)."""
        if self.score is None or not self.maximum:
            return 0.0
        return round(self.score / self.maximum * self.points, 4)


@dataclass(frozen=True)
class Total:
    notebook: Part
    quiz: Part | None  # None: the course has no quiz

    @property
    def parts(self) -> tuple[Part, ...]:
        return (self.notebook,) if self.quiz is None else (self.notebook, self.quiz)

    @property
    def score(self) -> float | None:
        """The sum of the parts' counted scores; None when no part has a score."""
        if all(part.score is None for part in self.parts):
            return None
        return round(sum(part.counted for part in self.parts), 4)

    @property
    def maximum(self) -> float:
        return round(sum(part.points for part in self.parts), 4)


def notebook_maximum(db: Database) -> float:
    """The notebook's maximum: its gradings' (every grading of one assignment has the same),
    else :data:`DEFAULT_NOTEBOOK_MAXIMUM`."""
    with db.read() as session:
        found = session.scalar(select(func.max(Job.max_score)).where(Job.max_score.is_not(None)))
    return float(found) if found else DEFAULT_NOTEBOOK_MAXIMUM


def quiz_maximum(app: Any) -> float | None:
    """The points of the course's quiz (the app's quiz service), None when it has none."""
    from quiz.scoring import score_quiz

    quiz = app.extensions.get(QUIZ_EXTENSION)
    if quiz is None:
        return None  # every variant drawn from one bank has the same points: seed 0's
    return float(score_quiz(quiz.items(0), {}, 0, quiz.policy.pass_mark).max_score)


def scale_of(db: Database, settings: Settings, quiz_max: float | None) -> Scale:
    """The scale of this course's totals (``quiz_max``: the quiz's points, None without one)."""
    return Scale(notebook_maximum(db), quiz_max, settings.notebook_points, settings.quiz_points)


def course_total(
    notebook: float | None,
    notebook_max: float | None,
    quiz: tuple[float, float] | None,
    scale: Scale,
) -> Total:
    """The total of a learner whose notebook scored ``notebook`` of ``notebook_max`` (None:
    no score yet) and whose quiz scored ``quiz`` (score, maximum; None: no submitted attempt)."""
    top = notebook_max or scale.notebook_maximum
    points = top if scale.notebook_points is None else scale.notebook_points
    notebook_part = Part(notebook, top, points)
    quiz_max = quiz[1] if quiz is not None else scale.quiz_maximum
    if quiz_max is None:
        return Total(notebook_part, None)
    points = quiz_max if scale.quiz_points is None else scale.quiz_points
    return Total(notebook_part, Part(quiz[0] if quiz else None, quiz_max, points))
