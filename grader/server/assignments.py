"""Which assignment a row belongs to: submissions and quiz attempts name theirs, and rows from
before a server had several name none ("", the course's default, first, assignment).

Why one helper: every query that reads one assignment's rows (the upload policy, the learner's
home, the gradebook) must count those old rows with the default assignment and with no other.
"""

from __future__ import annotations

from typing import Any

from grader.server.settings import AssignmentPolicy, Settings


def default_name(settings: Settings) -> str:
    return settings.course_assignments()[0].name


def name_of(settings: Settings, stored: str) -> str:
    """The assignment a row's ``assignment`` value names ("" : the default one)."""
    return stored or default_name(settings)


def stored_names(settings: Settings, name: str) -> tuple[str, ...]:
    """The ``assignment`` values of assignment ``name``'s rows (the default one's: also "")."""
    return (name, "") if name == default_name(settings) else (name,)


def of_assignment(column: Any, settings: Settings, name: str) -> Any:
    """The condition on ``column`` (``Submission.assignment``, ``QuizAttempt.assignment``)
    that keeps the rows of assignment ``name``."""
    return column.in_(stored_names(settings, name))


def chosen(settings: Settings, name: str | None) -> AssignmentPolicy | None:
    """The course's assignment named ``name`` (empty: the default one); None: no such one."""
    return settings.policy_of(name)
