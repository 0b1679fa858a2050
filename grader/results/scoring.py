"""Check results -> points -> ``results.json`` in the Gradescope autograder schema.

The checking stage hands over one :class:`~grader.checking.CheckResult` per check; this module adds
up a submission's points, says how its grading ended (:class:`Status`) and writes the document the
course platform and the batch read. Nothing here runs learner code or checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.checking import Artifacts, CheckResult
from grader.files import write_atomically
from grader.results.locations import LocatedProblem
from grader.results.pictures import Picture
from grader.status import Status

#: ``extra_data.isolation`` of a grading that started no sandbox (an unreadable or rejected file:
#: no learner code ran). Said once, here; the grading itself holds ``None`` (:func:`shown_isolation`).
NOT_RUN = "none (not run)"


def shown_isolation(isolation: str | None) -> str:
    """What results.json says of a grading's isolation: the sandbox's rung, or that none ran."""
    return NOT_RUN if isolation is None else isolation


@dataclass
class GradingResult:
    """Everything grading one submission produced; turned into results.json and report.html."""

    submission_id: str
    checks: list[CheckResult]
    execution_time: float
    output: str  # the summary shown on top (problems, isolation note)
    extra: dict[str, Any] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=Artifacts)  # data for the report
    pictures: dict[str, Picture] = field(default_factory=dict)  # the report's, in order
    title: str = ""  # the assignment's title, the report's heading
    credit: str = ""  # the assignment's credit line, in the report's footer
    status: Status = Status.GRADED
    status_message: str = ""  # one line: why the status is not "graded"
    #: Who submitted, as the course knows them (the server's learner, the batch's id from the
    #: LMS name); None where the grading does not know (a file graded on its own).
    learner: str | None = None
    submission_file: str | None = None  # the submitted file's name (grade.py: its path's name)
    graded_at: str = ""  # when, ISO 8601 in UTC to the second
    #: What ingestion found in the notebook, each with its graded part and its cell as the
    #: learner sees it (the report opens with these).
    problems: list[LocatedProblem] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(check.score for check in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(check.max_score for check in self.checks), 4)

    def part_scores(self) -> list[tuple[str, float, float]]:
        parts: dict[str, list[float]] = {}
        for check in self.checks:
            total = parts.setdefault(check.part, [0.0, 0.0])
            total[0] += check.score
            total[1] += check.max_score
        return [(part, round(got, 4), round(best, 4)) for part, (got, best) in parts.items()]


def to_gradescope(result: GradingResult) -> dict[str, Any]:
    """The Gradescope ``results.json`` document; grader-specific data goes under ``extra_data``."""
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.execution_time, 1),
        "output": result.output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": check.name,
                "number": check.number,
                "score": round(check.score, 4),
                "max_score": check.max_score,
                "status": "passed" if check.passed else "failed",
                "output": check.message,
                "visibility": "visible",
                "tags": [check.part, check.kind] + (["public"] if check.public else []),
            }
            for check in result.checks
        ],
        "extra_data": {
            "submission_id": result.submission_id,
            **({"learner": result.learner} if result.learner is not None else {}),
            **({"submission_file": result.submission_file} if result.submission_file else {}),
            **({"graded_at": result.graded_at} if result.graded_at else {}),
            **result.extra,
            "status": str(result.status),
            "status_message": result.status_message,
        },
    }


def write_results(result: GradingResult, path: Path) -> dict[str, Any]:
    document = to_gradescope(result)
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    return document


def result_as_dict(result: GradingResult) -> dict[str, Any]:
    return {
        "submission_id": result.submission_id,
        "checks": [asdict(check) for check in result.checks],
    }
