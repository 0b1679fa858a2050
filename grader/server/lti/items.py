"""The course's items an LMS can link to and grade: the server's assignments, and the quiz when
the course has one. An item is named by a key (``assignment:NAME``, ``quiz:NAME``) that travels in the
deep-linked resource link (its custom parameter ``item``) and tags its line item.

Why one module: the deep linking picker lists the items, a launch opens one, and the grade
passback reads each learner's score of each one; they must agree on what an item is and on its
score, which comes from the functions the gradebook itself uses (``views``, ``exports``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, url_for

from grader.server import exports, totals
from grader.server.state import EXTENSION as STATE
from grader.server.state import QUIZZES_EXTENSION, ServerState

ASSIGNMENT = totals.ASSIGNMENT
QUIZ = totals.QUIZ


@dataclass(frozen=True)
class Item:
    kind: str  # ASSIGNMENT or QUIZ
    name: str  # the assignment's name
    title: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def page(self) -> str:
        """Where a learner launched into this item lands (a path of this server): an
        assignment's section of the learner's home when the course has several."""
        if self.kind == ASSIGNMENT:
            several = len(current_app.extensions[STATE].settings.course_assignments()) > 1
            return url_for("learner.index", _anchor=f"assignment-{self.name}" if several else None)
        quiz = current_app.extensions.get(QUIZZES_EXTENSION, {}).get(self.name)
        return url_for("quiz.home", assignment=quiz.link if quiz is not None else self.name)


@dataclass(frozen=True)
class Score:
    score: float
    maximum: float


def course_items(app: Flask, server: ServerState) -> list[Item]:
    """The items of this server, as the course total has them: each assignment, then the quiz."""
    scales = totals.scales_of(server.db, server.settings, totals.quiz_maximum(app))
    return [Item(scale.kind, scale.name, scale.title) for scale in scales]


def find_item(app: Flask, server: ServerState, key: str | None) -> Item | None:
    """The item of ``key``; None for an unknown key. No key: the default (first) assignment."""
    items = course_items(app, server)
    if not key:
        return items[0]
    return next((item for item in items if item.key == key), None)


def score_of(app: Flask, server: ServerState, item: Item, learner_id: str) -> Score | None:
    """The learner's score of ``item`` as it counts in their course total (``totals``: late
    penalty and overrides applied, scaled to the points the item counts for), None while there
    is none to send: an assignment once graded and its feedback released, the quiz once an
    attempt is submitted. The scores of a learner's items add up to the gradebook's total."""
    total = exports.learner_total(
        server.db, server.data_dir, server.settings, learner_id, totals.quiz_maximum(app)
    )
    part = total.part(item.key)
    if part is None or part.score is None or not part.points:
        return None
    return Score(part.counted, part.points)


def maximum_of(app: Flask, server: ServerState, item: Item) -> float:
    """The points an item counts for in the course total: a new line item's maximum."""
    scales = totals.scales_of(server.db, server.settings, totals.quiz_maximum(app))
    part = totals.course_total({}, scales).part(item.key)
    return part.points if part is not None else totals.DEFAULT_NOTEBOOK_MAXIMUM
