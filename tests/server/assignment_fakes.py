"""A grading that depends on the assignment a job is graded with: the tests of a server with
several assignments see which one each submission was graded as, from its score."""

from __future__ import annotations

from grader.job import GradingJob, GradingOutcome
from grader.results import ScoredCheck
from tests.server.fakes import outcome_of
from tests.server.instructor_fakes import checks_grade

SECOND_SCORE = (3.0, 5.0)  # what a submission graded as the second assignment (keras_course) gets


def per_assignment_grade(job: GradingJob) -> GradingOutcome:
    """keras_course: 3 / 5; any other assignment: ``checks_grade``'s 6 / 10."""
    if job.assignment.name != "keras_course":
        return checks_grade(job)
    score, top = SECOND_SCORE
    check = ScoredCheck("1.1", "shapes", "shapes", top, score, "", kind="incorrect")
    report = f"<!doctype html><html><body><p>keras report: {score:g}</p></body></html>"
    return outcome_of(job, [check], report)
