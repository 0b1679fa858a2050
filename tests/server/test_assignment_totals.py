"""One server with two assignments and a quiz: the instructor's gradebook page, ``gradebook.csv``,
the Canvas and Moodle files, the scores posted to the LMS (AGS, one line item per item) and each
learner's own page agree on every number, with the weights of the total set in settings.yaml."""

from __future__ import annotations

import dataclasses
import re

import pytest

from grader.server.lti.services import ToolConnector
from grader.server.settings import AssignmentPolicy
from tests.server.assignment_fakes import SECOND_SCORE, per_assignment_grade
from tests.server.test_assignments import KERAS, upload
from tests.server.test_lti_launch import DANA, TEACHER, lms_for
from tests.server.test_totals import (
    ELI,
    exports_of,
    gradebook_cells,
    latest_posts,
    learner_of,
    number,
    step,
    take_quiz_right_on_choices,
)

FIRST, SECOND, QUIZ = (
    "assignment:object_localization",
    "assignment:keras_course",
    "quiz:object_localization",
)


@pytest.fixture
def lms(data_dir, sqlite_db, settings):
    ToolConnector.forget_tokens()
    weighted = dataclasses.replace(
        settings,
        quiz_points=20.0,
        assignments=(
            AssignmentPolicy("object_localization", points=50.0, submissions_per_day=50),
            AssignmentPolicy(KERAS, points=30.0, submissions_per_day=50),
        ),
    )
    made = lms_for(data_dir, sqlite_db, weighted, "moodle")
    yield made
    made.platform.stop()
    made.course.executor.shutdown()


def test_two_assignments_and_a_quiz_agree_everywhere(lms):
    dana, _ = lms.launch(lms.platform.claims(DANA))
    eli, _ = lms.launch(lms.platform.claims(ELI))
    assert upload(dana).status_code == 302  # dana: the first assignment only
    assert upload(eli).status_code == 302  # eli: both, and the quiz
    assert upload(eli, "keras_course").status_code == 302
    lms.course.grade_all(per_assignment_grade)
    quiz, quiz_max = take_quiz_right_on_choices(lms, learner_of(lms, ELI))
    teacher, _ = lms.launch(lms.platform.claims(TEACHER))
    step(lms)

    first = 6 / 10 * 50  # checks_grade's 6 / 10, counted out of 50
    second = SECOND_SCORE[0] / SECOND_SCORE[1] * 30
    quiz_counted = round(quiz / quiz_max * 20, 4)
    expected = {  # learner -> item -> counted (None: no score), and the total
        learner_of(lms, DANA): ({FIRST: first, SECOND: None, QUIZ: None}, first),
        learner_of(lms, ELI): (
            {FIRST: first, SECOND: second, QUIZ: quiz_counted},
            round(first + second + quiz_counted, 4),
        ),
    }
    points = {FIRST: 50.0, SECOND: 30.0, QUIZ: 20.0}
    columns = {FIRST: "object_localization_counted", SECOND: "keras_course_counted"}
    columns[QUIZ] = "quiz_counted"

    page = teacher.get("/instructor").get_data(as_text=True)
    headers = re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", page)
    assert headers[3:5] == ["object_localization", "keras_course"], headers
    files = exports_of(teacher)
    posts = latest_posts(lms)
    tags = {item.get("tag") for item in lms.platform.line_items.values()}
    assert tags == {FIRST, SECOND, QUIZ}  # a line item per item
    for user, client in ((DANA, dana), (ELI, eli)):
        learner = learner_of(lms, user)
        counted, total = expected[learner]
        cells = gradebook_cells(page, learner)
        assert cells[6] == f"{total:g} / 100", cells  # the Total column, after 2 + quiz
        (row,) = [r for r in files["gradebook"] if r["id"] == learner]
        assert (number(row["total"]), number(row["total_max_score"])) == (total, 100)
        (canvas,) = [r for r in files["canvas"] if r["SIS User ID"] == learner]
        (moodle,) = [r for r in files["moodle"] if r["ID number"] == learner]
        assert number(canvas["Grade"]) == number(moodle["Grade"]) == total
        for key, value in counted.items():
            assert number(row[columns[key]]) == value, key
            # the LMS receives each item as it counts in the total
            assert posts.get((user.sub, key)) == (None if value is None else (value, points[key]))
        assert sum(value or 0 for value in counted.values()) == pytest.approx(total)
        home = client.get("/").get_data(as_text=True)
        assert f"Your course total so far: <strong>{total:g} / 100</strong>" in home
    eli_row = next(r for r in files["gradebook"] if r["id"] == learner_of(lms, ELI))
    assert (eli_row["keras_course_score"], eli_row["keras_course_max_score"]) == ("3.0", "5.0")


def test_a_launch_into_one_assignment_lands_on_its_section(lms):
    """A resource link of the second assignment opens the learner's home at that assignment's
    section (its upload form, its submissions); a link naming no item opens the first one's."""
    client, answer = lms.launch(lms.platform.claims(DANA, custom={"item": SECOND}))
    assert answer.status_code == 302 and answer.location == "/#assignment-keras_course"
    home = client.get("/").get_data(as_text=True)
    assert '<section id="assignment-keras_course"' in home
    _, answer = lms.launch(lms.platform.claims(DANA))
    assert answer.location == "/#assignment-object_localization"
