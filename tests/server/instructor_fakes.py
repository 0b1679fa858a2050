"""A grading function for the instructor's tests: a results record with checks (Gradescope's
``tests[]``), so that overrides and the class summary have checks to work on. Module-level and
light, so that the grading subprocess imports it by reference quickly."""

from __future__ import annotations

from grader.job import GradingJob, GradingOutcome
from grader.results import ScoredCheck
from tests.server.fakes import outcome_of

CHECKS = [  # name, number, score, max_score
    ("create_example", "1.1", 4.0, 4.0),
    ("iou_metric", "2.1", 0.0, 4.0),
    ("training", "3.1", 2.0, 2.0),
]


def checks_grade(job: GradingJob) -> GradingOutcome:
    """6 / 10: the IoU check fails with a hint; the report names its score."""
    checks = [
        ScoredCheck(
            number,
            name,
            name,
            top,
            score,
            "" if score == top else "disjoint boxes should score 0",
            kind="passed" if score == top else "incorrect",
        )
        for name, number, score, top in CHECKS
    ]
    total = sum(check.score for check in checks)
    report = (
        f"<!doctype html><html><head><title>r</title></head><body><p>graded report: {total:g}</p>"
        "</body></html>"
    )
    return outcome_of(job, checks, report)
