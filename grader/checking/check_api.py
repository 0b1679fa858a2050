"""The vocabulary hidden checks are written in (see ``assignments/AUTHORING.md``).

A check is a pytest test function decorated with :func:`check`, which attaches its part, points and
visibility as pytest markers (gradescope-utils style). A check ends in one of three ways:

- it returns: full points;
- it raises one of the outcomes below (learntools style): :class:`NotAttempted`, :class:`Incorrect`
  (what was expected, what came back, and a hint naming the mistake when one explains it),
  :class:`PartialCredit`, or :class:`LearnerError` (the learner's code crashed or timed out);
- anything else is a bug in the check; the learner sees "could not be checked", never the check code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")
T = TypeVar("T")


def check(part: str, points: float, *, public: bool = False) -> Callable[[F], F]:
    """Attach the graded part, its points and whether the learner's self-check runs it."""

    def decorate(function: F) -> F:
        function = pytest.mark.check(part=part, points=float(points))(function)
        if public:
            function = pytest.mark.public(function)
        return function

    return decorate


class OutcomeKind(StrEnum):
    """How one check ended; a tag of its test in results.json (the values are those strings)."""

    PASSED = "passed"  # the check returned: full points
    INCORRECT = "incorrect"  # :class:`Incorrect` (or a bare :class:`CheckOutcome`)
    PARTIAL = "partial"  # :class:`PartialCredit`
    NOT_ATTEMPTED = "not_attempted"  # :class:`NotAttempted`
    LEARNER_ERROR = "learner_error"  # :class:`LearnerError`
    CHECK_ERROR = "check_error"  # the check itself raised something else: its bug, 0 points
    NOT_GRADED = "not_graded"  # the grading did not finish (a retried status): no verdict


class CheckOutcome(Exception):
    """Base of the outcomes a check raises; ``message`` is what the learner reads, ``kind`` what
    results.json tags it with (each outcome class declares its own)."""

    kind = OutcomeKind.INCORRECT
    fraction = 0.0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAttempted(CheckOutcome):
    """The part is missing or still the stub."""

    kind = OutcomeKind.NOT_ATTEMPTED


class LearnerError(CheckOutcome):
    """The learner's code raised, timed out or crashed the worker during this check; ``raised``
    when it raised an exception of its own (an input it cannot handle), not a timeout or a crash."""

    kind = OutcomeKind.LEARNER_ERROR

    def __init__(self, message: str, *, raised: bool = False) -> None:
        super().__init__(message)
        self.raised = raised


def where_it_returns(cases: Iterable[C], call: Callable[[C], T]) -> list[tuple[C, T]]:
    """``(case, value)`` for each case on which the learner's code returns; the first error it
    raised when it returns on none.

    For a check of a property other than "it handles these inputs", on random inputs: a crash
    on some inputs (a box past an edge, one coordinate order) is the finding of the check whose
    fixed inputs meet it every time. Judged here, it would fail this check on the hidden seeds
    whose inputs happen to meet it and not on the others: the same mistake, two verdicts. A
    timeout or a crash is raised at once (each further case would cost as much).
    """
    kept: list[tuple[C, T]] = []
    first: LearnerError | None = None
    for case in cases:
        try:
            kept.append((case, call(case)))
        except LearnerError as error:
            if not error.raised:
                raise
            first = first or error
    if first is not None and not kept:
        raise first
    return kept


class Incorrect(CheckOutcome):
    """A wrong answer: says what was expected, what came back, and the likely mistake."""

    kind = OutcomeKind.INCORRECT

    def __init__(self, what: str, *, expected: Any = None, got: Any = None, hint: str = "") -> None:
        parts = [what.rstrip(".") + "."]
        if expected is not None:
            parts.append(f"Expected: {expected}.")
        if got is not None:
            parts.append(f"Got: {got}.")
        if hint:
            parts.append(f"Hint: {hint}")
        super().__init__(" ".join(parts))
        self.hint = hint


class PartialCredit(CheckOutcome):
    """Some of the points: ``fraction`` in (0, 1)."""

    kind = OutcomeKind.PARTIAL

    def __init__(self, fraction: float, message: str) -> None:
        super().__init__(message)
        self.fraction = max(0.0, min(1.0, fraction))


def short(value: Any, limit: int = 120) -> str:
    """A value as a learner should see it in a message: short, no huge arrays."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
