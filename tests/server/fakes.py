"""Grading functions the tests inject into the queue (``Dispatcher(grade=...)``): each takes a
``grader.job.GradingJob`` and returns a ``grader.job.GradingOutcome``, as the engine does.
Module-level, so that they travel to Dask workers and grading subprocesses by reference."""

from __future__ import annotations

import os
import time
from pathlib import Path

from grader.job import GradingJob, GradingOutcome
from grader.results import GradingResult, ScoredCheck

MARKERS_ENV = "GRADER_TEST_MARKERS"


def outcome_of(job: GradingJob, checks: list[ScoredCheck], report: str) -> GradingOutcome:
    """A graded outcome of ``job`` with these checks and this report's HTML."""
    result = GradingResult(
        job.submission_id,
        checks,
        1.5,
        learner=job.learner,
        submission_file=job.file_name,
        submission_sha256=job.sha256,
    )
    return GradingOutcome.of(result, report)


def _mark(kind: str) -> None:
    folder = os.environ.get(MARKERS_ENV)
    if folder:
        Path(folder, f"{kind}-{os.getpid()}-{time.time_ns()}").write_text(str(os.getppid()))


def fake_grade(job: GradingJob) -> GradingOutcome:
    """Full marks, at once; counts its runs in $GRADER_TEST_MARKERS."""
    assert job.notebook and job.sandbox_mode and job.seed is not None
    _mark("graded")
    check = ScoredCheck("1.1", "everything", "all", 10.0, 10.0)
    return outcome_of(job, [check], "<html><body><p>fake report: 10</p></body></html>")


def slow_grade(job: GradingJob) -> GradingOutcome:
    """Marks that it started, then sleeps for a minute: the grading process must be ended with
    the server that started it (``grader.bounded.grade_bounded`` ends it when its parent dies)."""
    _mark("started")
    time.sleep(60)
    os._exit(3)


def error_grade(job: GradingJob) -> GradingOutcome:
    """The grader fails (status error: retried)."""
    _mark("error")
    raise RuntimeError("the grader broke")
