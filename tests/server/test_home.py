"""The learner's home page offers the graded quiz only when the course's assignment has one (a
``quiz/`` folder): a link to a quiz that is not there would lead a learner to "Not found"."""

from __future__ import annotations

import dataclasses

from tests.server import live
from tests.server.helpers import make_course


def home_of(course) -> str:
    response = course.client("alice").get("/")
    assert response.status_code == 200
    return response.data.decode()


def test_the_home_page_links_to_the_quiz_when_the_course_has_one(data_dir, db, settings):
    course = make_course(data_dir, db, settings)  # the installed assignment, with its quiz/
    try:
        page = home_of(course)
        assert "Take the graded quiz" in page and 'href="/quiz/"' in page
        assert course.client("alice").get("/quiz/").status_code == 200
    finally:
        course.executor.shutdown()


def test_no_quiz_link_when_the_course_has_no_quiz(data_dir, db, settings):
    assert not (live.TINY_COURSE / "quiz").exists()
    course = make_course(
        data_dir, db, dataclasses.replace(settings, assignment=str(live.TINY_COURSE))
    )
    try:
        page = home_of(course)
        assert "Hello Alice" in page
        assert "quiz" not in page.lower()
        assert course.client("alice").get("/quiz/").status_code == 404
    finally:
        course.executor.shutdown()
