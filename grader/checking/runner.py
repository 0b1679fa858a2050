"""Run the checks in the trusted process: pytest over the assignment's ``checks/`` with a plugin
that provides the ``submission`` fixture and turns each check's outcome into a CheckResult.

Public checks live in ``checks/public`` (shipped to learners for the self-check); hidden ones in
``checks/hidden`` (never shipped). Grading runs both. A :class:`CheckResult` is this
stage's output: the results stage adds them up.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.checking.check_api import CheckOutcome, OutcomeKind
from grader.checking.submission import Submission

#: The engine's pytest settings for every assignment's checks (the ``check`` and ``public`` marks).
PYTEST_INI = Path(__file__).resolve().parent / "pytest.ini"


@dataclass
class CheckResult:
    """One check's verdict, as computed in the trusted process."""

    number: str  # "2.1": part 2, check 1
    name: str
    part: str
    max_score: float
    score: float
    message: str  # empty when passed
    public: bool = False
    kind: OutcomeKind = OutcomeKind.PASSED
    #: what the check measured (``Submission.measured``), for ``grader bench``; not in results.json
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass
class _Collector:
    """A pytest plugin: provides the ``submission`` fixture and records each check's verdict."""

    learner: Submission
    order: tuple[str, ...]  # check groups in report order
    parts: list[str] | None = None
    stop: Callable[[CheckResult], bool] | None = None  # True: run no further check
    results: list[CheckResult] = field(default_factory=list)

    @pytest.fixture(scope="session")
    def submission(self) -> Submission:
        return self.learner

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def part_of(item: pytest.Item) -> int:
            marker = item.get_closest_marker("check")
            part = marker.kwargs.get("part") if marker else None
            return self.order.index(part) if part in self.order else len(self.order)

        items.sort(key=part_of)  # stable: file order within a part; the assignment's order
        if self.parts:
            items[:] = [
                item
                for item in items
                if (marker := item.get_closest_marker("check"))
                and marker.kwargs.get("part") in self.parts
            ]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        marker = item.get_closest_marker("check")
        if marker is None:
            return
        part, points = marker.kwargs["part"], marker.kwargs["points"]
        doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
        error = call.excinfo.value if call.excinfo is not None else None
        if error is None:
            score, message, kind = points, "", OutcomeKind.PASSED
        elif isinstance(error, CheckOutcome):
            score, message, kind = points * error.fraction, error.message, error.kind
        else:  # a check's own bug or unexpected data: never show the check's code
            score, kind = 0.0, OutcomeKind.CHECK_ERROR
            message = (
                "This check could not be completed on what your code returned "
                f"({type(error).__name__}). Compare your function's return values with the task."
            )
        self.results.append(
            CheckResult(
                number="",
                name=f"{part}: {doc}",
                part=part,
                max_score=points,
                score=round(score, 4),
                message=message,
                public=item.get_closest_marker("public") is not None,
                kind=kind,
                figures=dict(self.learner.figures),
            )
        )
        self.learner.figures.clear()
        if self.stop is not None and self.stop(self.results[-1]):
            item.session.shouldstop = "a check's verdict settled what was asked"


def run_checks(
    submission: Submission,
    *,
    public_only: bool = False,
    parts: list[str] | None = None,
    stop: Callable[[CheckResult], bool] | None = None,
) -> list[CheckResult]:
    """Run the checks in this process against ``submission`` and return numbered verdicts.

    ``stop`` ends the run after the first verdict it returns True for (the mutation audit stops
    at a mutant's first killing check: the rest would not change its verdict)."""
    assignment = submission.assignment
    order = assignment.check_order
    collector = _Collector(submission, order, parts, stop)
    checks = assignment.checks_dir
    folders = [checks / "public"] if public_only else [checks / "public", checks / "hidden"]
    folders = [folder for folder in folders if folder.is_dir()]
    args = [
        *map(str, folders),
        "-c",
        str(PYTEST_INI),
        "--rootdir",
        str(checks),
        "--confcutdir",  # no conftest.py from above the checks (e.g. a test suite's) joins in
        str(checks),
        "-p",
        "no:cacheprovider",
        "--assert=plain",
        "-q",
        "--disable-warnings",
    ]
    if public_only:
        args += ["-m", "public"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[collector])
    counters: dict[str, int] = {}
    for result in collector.results:
        part_number = order.index(result.part) + 1 if result.part in order else 99
        counters[result.part] = counters.get(result.part, 0) + 1
        result.number = f"{part_number}.{counters[result.part]}"
    return collector.results
