"""Check results -> scored checks: the step from the checking stage to the results record.

The checking stage hands over one :class:`~grader.checking.CheckResult` per check; this module
turns them into the :class:`~grader.results.record.ScoredCheck` s the record (and so results.json
and the report) holds: points to four places, the outcome kind as its tag. Nothing here runs
learner code or checks.
"""

from __future__ import annotations

from collections.abc import Iterable

from grader.checking import CheckResult
from grader.results.record import ScoredCheck


def scored(checks: Iterable[CheckResult]) -> tuple[ScoredCheck, ...]:
    """The checks' verdicts as the results record keeps them."""
    return tuple(
        ScoredCheck(
            number=check.number,
            name=check.name,
            part=check.part,
            max_score=check.max_score,
            score=round(check.score, 4),
            message=check.message,
            public=check.public,
            kind=str(check.kind),
        )
        for check in checks
    )
