"""The course's items an LMS can link to and grade: the server's assignment, and its quiz when it
has one. An item is named by a key (``assignment:NAME``, ``quiz:NAME``) that travels in the
deep-linked resource link (its custom parameter ``item``) and tags its line item.

Why one module: the deep linking picker lists the items, a launch opens one, and the grade
passback reads each learner's score of each one; they must agree on what an item is and on its
score, which comes from the functions the gradebook itself uses (``views``, ``exports``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, url_for
from sqlalchemy import func, select

from grader.server import exports, views
from grader.server.models import Job
from grader.server.state import QUIZ_EXTENSION, ServerState

ASSIGNMENT = "assignment"
QUIZ = "quiz"
DEFAULT_MAXIMUM = 100.0  # a line item's maximum before any grading says what it is


@dataclass(frozen=True)
class Item:
    kind: str  # ASSIGNMENT or QUIZ
    name: str  # the assignment's name
    title: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def page(self) -> str:
        """Where a learner launched into this item lands (a path of this server)."""
        return url_for("learner.index") if self.kind == ASSIGNMENT else url_for("quiz.home")


@dataclass(frozen=True)
class Score:
    score: float
    maximum: float


def course_items(app: Flask, server: ServerState) -> list[Item]:
    """The items of this server, the assignment first."""
    assignment = server.settings.chosen_assignment()
    found = [Item(ASSIGNMENT, assignment.name, server.settings.title)]
    if QUIZ_EXTENSION in app.extensions:
        found.append(Item(QUIZ, assignment.name, f"Quiz: {server.settings.title}"))
    return found


def find_item(app: Flask, server: ServerState, key: str | None) -> Item | None:
    """The item of ``key``; None for an unknown key. No key: the assignment."""
    items = course_items(app, server)
    if not key:
        return items[0]
    return next((item for item in items if item.key == key), None)


def score_of(app: Flask, server: ServerState, item: Item, learner_id: str) -> Score | None:
    """The learner's score of ``item`` as the gradebook shows it, None while there is none to
    send: the assignment's latest submission once graded and its feedback released (late
    penalty and overrides applied), the quiz's best submitted attempt."""
    if item.kind == QUIZ:
        quiz = exports.quiz_score(server.db, learner_id)
        return Score(quiz.score, quiz.max_score) if quiz else None
    rows = views.submissions_of(server.db, server.data_dir, server.settings, learner_id)
    latest = rows[0] if rows else None
    if latest is None or latest.pending or latest.score is None or not latest.max_score:
        return None
    return Score(latest.score, latest.max_score)


def maximum_of(app: Flask, server: ServerState, item: Item) -> float:
    """The item's maximum score for a new line item: the quiz's points, the assignment's
    maximum in its gradings so far (every grading of one assignment has the same), else 100."""
    if item.kind == QUIZ:
        from quiz.scoring import score_quiz

        quiz: Any = app.extensions[QUIZ_EXTENSION]
        return float(score_quiz(quiz.items(0), {}, 0, quiz.policy.pass_mark).max_score)
    with server.db.read() as session:
        found = session.scalar(select(func.max(Job.max_score)).where(Job.max_score.is_not(None)))
    return float(found) if found else DEFAULT_MAXIMUM
