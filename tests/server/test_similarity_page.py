"""The instructor's similarity page: the learners' latest submissions compared as
``grader similarity`` compares them (code, and the model fingerprints their gradings stored),
ranked, with the code side by side and the words that it is not a verdict; linked from the
gradebook; a 404 for anyone but the instructor, like every instructor page."""

from __future__ import annotations

import io

import nbformat
import pytest

from grader.job import GradingJob, GradingOutcome
from grader.results import Fingerprint, GradingResult, ScoredCheck
from tests import similarity_cohort as cohort
from tests.server.helpers import make_course

#: One model's fingerprint, as the course's check records it (synthetic: no model is built).
MODEL = Fingerprint(
    architecture=("InputLayer (144, 144, 3) 0", "Conv2D (72, 72, 8) 224", "Dense (None, 9) 99"),
    predictions=tuple((0.1, 0.2, 0.7, 0.31, 0.42) for _ in range(16)),
    tolerance=0.0015,
    images="5ea2754a",
)


def grade_with_fingerprint(job: GradingJob) -> GradingOutcome:
    """Full marks; every model the same (as a disguised copy's would be)."""
    result = GradingResult(
        job.submission_id,
        (ScoredCheck("1.1", "everything", "all", 10.0, 10.0),),
        learner=job.learner,
        submission_file=job.file_name,
        submission_sha256=job.sha256,
        fingerprint=MODEL,
    )
    return GradingOutcome.of(result, "<html><body><p>report</p></body></html>")


@pytest.fixture
def course(data_dir, sqlite_db, settings):
    course = make_course(data_dir, sqlite_db, settings)
    yield course
    course.executor.shutdown()


def upload(course, who: str, nb: nbformat.NotebookNode) -> None:
    answer = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(nbformat.writes(nb).encode()), "nb.ipynb")},
        headers=course.bearer(who),
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.data


def test_the_instructor_sees_the_pairs_ranked_with_the_code_side_by_side(course) -> None:
    upload(course, "alice", cohort.alternative(0))
    upload(course, "bob", cohort.disguised_copy(cohort.alternative(0), 1))
    course.grade_all(grade_with_fingerprint)
    client = course.client("instructor")
    gradebook = client.get("/instructor").get_data(as_text=True)
    assert 'href="/instructor/similarity"' in gradebook
    page = client.get("/instructor/similarity")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "not a verdict" in text
    assert "alice" in text and "bob" in text
    # the pair, with its behaviour measured from the stored fingerprints, and both codes shown
    row = text[text.index("<tbody>") : text.index("</tbody>")]
    assert "<td>alice</td><td>bob</td>" in row and "1.00" in row
    assert text.count("<pre><code>") == 2 and "<mark>" in text
    assert "same predictions on 16 of 16 hidden images" in text


def test_without_stored_fingerprints_behaviour_is_empty_and_the_page_says_why(course) -> None:
    from tests.server.fakes import fake_grade  # a grading that stores no fingerprint

    upload(course, "alice", cohort.alternative(0))
    upload(course, "bob", cohort.disguised_copy(cohort.alternative(0), 1))
    course.grade_all(fake_grade)
    text = course.client("instructor").get("/instructor/similarity").get_data(as_text=True)
    assert "recorded no fingerprint" in text
    row = text[text.index("<tbody>") : text.index("</tbody>")]
    assert "–" in row  # behaviour: not measured


def test_one_learner_is_nothing_to_compare(course) -> None:
    upload(course, "alice", cohort.alternative(0))
    text = course.client("instructor").get("/instructor/similarity").get_data(as_text=True)
    assert "at least two are needed" in text


@pytest.mark.parametrize("who", [None, "alice"])
def test_anyone_but_the_instructor_gets_a_404(course, who) -> None:
    assert course.client(who).get("/instructor/similarity").status_code == 404
