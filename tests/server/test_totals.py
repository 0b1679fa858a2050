"""The course total agrees everywhere: one server, a learner with a quiz attempt and one
without, an override; the instructor's gradebook page, ``gradebook.csv``, the Canvas and Moodle
files, the scores posted to the LMS (AGS) and each learner's own page show the same numbers. The
quiz counts the same way for everyone (no attempt: 0 of its points, never a smaller maximum),
and the weights of notebook and quiz are settings. An override shows everywhere: the report's
banner with the new score, the override table, the gradebook, the class summary, the exports and
a new AGS post."""

from __future__ import annotations

import csv
import dataclasses
import io
import re

import pytest
import requests
from sqlalchemy import select

from grader.server import views
from grader.server.lti import ags
from grader.server.lti.services import ToolConnector
from grader.server.models import LtiUser
from grader.server.state import QUIZ_EXTENSION
from tests.server.helpers import csrf_token
from tests.server.instructor_fakes import checks_grade
from tests.server.lti_platform import LEARNER_ROLES, User
from tests.server.test_lti_launch import DANA, TEACHER, lms_for
from tests.server.test_lti_services import submit

ELI = User("8", "Eli Vance", "eli@x.org", LEARNER_ROLES)
ASSIGNMENT = "assignment:object_localization"
QUIZ = "quiz:object_localization"


@pytest.fixture
def make_lms(data_dir, sqlite_db, settings):
    made = []

    def make(**changes):
        ToolConnector.forget_tokens()
        lms = lms_for(data_dir, sqlite_db, dataclasses.replace(settings, **changes), "moodle")
        made.append(lms)
        return lms

    yield make
    for lms in made:
        lms.platform.stop()
        lms.course.executor.shutdown()


def learner_of(lms, user: User) -> str:
    with lms.course.db.read() as s:
        return s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == user.sub))


def take_quiz_right_on_choices(lms, learner: str) -> tuple[float, float]:
    """A submitted attempt answering choice questions right and leaving the others blank, and
    at least one question blank whichever questions the attempt's seed drew: a score strictly
    between 0 and the maximum."""
    quiz = lms.course.app.extensions[QUIZ_EXTENSION]
    attempt = quiz.start(learner)
    items = quiz.items(attempt.seed)
    answers = {}
    for item in items:
        right = [i for i, option in enumerate(item.question.options) if option.correct]
        if right:
            answers[item.qid] = right if item.type == "multiple" else right[0]
    if len(answers) == len(items):
        del answers[items[-1].qid]
    quiz.submit(attempt, answers)
    attempt = quiz.attempts_of(learner)[-1]
    assert 0 < attempt.score < attempt.max_score
    return attempt.score, attempt.max_score


def step(lms) -> None:
    with lms.course.app.app_context():
        ags.sync(lms.course.app)
        ags.post_due(lms.course.app, requests.Session())


def latest_posts(lms) -> dict[tuple[str, str], tuple[float, float]]:
    """(user id, item tag) -> the last (scoreGiven, scoreMaximum) the platform received."""
    tags = {i["id"]: i.get("tag") for i in lms.platform.line_items.values()}
    found = {}
    for score in lms.platform.scores:
        found[(score["userId"], tags[score["lineitem"]])] = (
            score["scoreGiven"],
            score["scoreMaximum"],
        )
    return found


def gradebook_cells(page: str, learner: str) -> list[str]:
    """The cells of a learner's row of the gradebook page, as text."""
    row = next(r for r in page.split("<tr>") if f">{learner}</a>" in r)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [re.sub(r"<[^>]+>", "", c).split("(o)")[0].strip() for c in cells]


def exports_of(teacher) -> dict[str, list[dict[str, str]]]:
    found = {}
    for kind in ("gradebook", "canvas", "moodle"):
        text = teacher.get(f"/instructor/export/{kind}.csv?column=Grade").get_data(as_text=True)
        found[kind] = list(csv.DictReader(io.StringIO(text)))
    return found


def number(text: str) -> float | None:
    return float(text) if text not in ("", "-", "–") else None


def course_with_two_learners(lms):
    """dana: notebook graded 6/10, no quiz attempt; eli: notebook 6/10 and a quiz attempt."""
    dana, _ = lms.launch(lms.platform.claims(DANA))
    eli, _ = lms.launch(lms.platform.claims(ELI))
    submit(dana)
    submit(eli)
    lms.course.grade_all(checks_grade)
    quiz = take_quiz_right_on_choices(lms, learner_of(lms, ELI))
    teacher, _ = lms.launch(lms.platform.claims(TEACHER))
    return dana, eli, teacher, quiz


def override(teacher, submission_id: int, check: str, score: str) -> None:
    page = teacher.get(f"/instructor/submissions/{submission_id}/override")
    answer = teacher.post(
        f"/instructor/submissions/{submission_id}/override",
        data={
            "csrf_token": csrf_token(page.data),
            "check": check,
            "score": score,
            "comment": "the boxes were right",
        },
    )
    assert answer.status_code == 302, answer.data[:500]


def assert_everywhere(lms, teacher, clients, expected) -> None:
    """``expected``: learner -> (notebook counted, notebook points, quiz counted or None, quiz
    points, total, total maximum, the quiz's own score or None), checked in every view."""
    page = teacher.get("/instructor").get_data(as_text=True)
    files = exports_of(teacher)
    posts = latest_posts(lms)
    for user, client in clients:
        learner = learner_of(lms, user)
        nb, nb_points, quiz, quiz_points, total, top, quiz_own = expected[learner]
        cells = gradebook_cells(page, learner)
        assert cells[6] == f"{total:g} / {top:g}", cells  # the Total column
        (row,) = [r for r in files["gradebook"] if r["id"] == learner]
        assert (number(row["total"]), number(row["total_max_score"])) == (total, top)
        assert number(row["quiz_score"]) == quiz_own
        (canvas,) = [r for r in files["canvas"] if r["SIS User ID"] == learner]
        (moodle,) = [r for r in files["moodle"] if r["ID number"] == learner]
        assert number(canvas["Grade"]) == number(moodle["Grade"]) == total
        # the LMS receives each item as it counts in the total: the items add up to it
        assert posts[(user.sub, ASSIGNMENT)] == (nb, nb_points)
        assert posts.get((user.sub, QUIZ)) == (None if quiz is None else (quiz, quiz_points))
        assert nb + (quiz or 0) == pytest.approx(total)
        home = client.get("/").get_data(as_text=True)
        assert f"Your course total so far: <strong>{total:g} / {top:g}</strong>" in home


@pytest.mark.parametrize("weights", [{}, {"notebook_points": 80, "quiz_points": 20}])
def test_the_total_is_the_same_on_every_page_file_and_lms_post(make_lms, weights):
    lms = make_lms(**weights)
    dana, eli, teacher, (quiz, quiz_max) = course_with_two_learners(lms)
    step(lms)
    nb_points = weights.get("notebook_points", 10)  # the fake grading's maximum
    quiz_points = weights.get("quiz_points", quiz_max)
    nb = 6 / 10 * nb_points
    quiz_counted = round(quiz / quiz_max * quiz_points, 4)
    top = nb_points + quiz_points  # the same for both: no attempt is 0 of the quiz's points
    expected = {
        learner_of(lms, DANA): (nb, nb_points, None, quiz_points, nb, top, None),
        learner_of(lms, ELI): (
            nb,
            nb_points,
            quiz_counted,
            quiz_points,
            round(nb + quiz_counted, 4),
            top,
            quiz,
        ),
    }
    assert_everywhere(lms, teacher, [(DANA, dana), (ELI, eli)], expected)
    # an override of one check changes dana's total in every view, and is posted again
    (row,) = views.submissions_of(
        lms.course.db, lms.course.data_dir, lms.course.settings, learner_of(lms, DANA)
    )
    override(teacher, row.id, "iou_metric", "3")  # 6 -> 9 of 10
    step(lms)
    nb_now = 9 / 10 * nb_points
    expected[learner_of(lms, DANA)] = (nb_now, nb_points, None, quiz_points, nb_now, top, None)
    assert_everywhere(lms, teacher, [(DANA, dana), (ELI, eli)], expected)


def test_an_override_shows_in_the_report_table_summary_and_a_new_lms_post(make_lms):
    lms = make_lms()
    dana, _eli, teacher, _quiz = course_with_two_learners(lms)
    step(lms)
    learner = learner_of(lms, DANA)
    (row,) = views.submissions_of(lms.course.db, lms.course.data_dir, lms.course.settings, learner)
    summary = teacher.get("/instructor/summary/").get_data(as_text=True)
    assert re.search(rf">{re.escape(learner)}<.*?6 / 10", summary, re.S)
    override(teacher, row.id, "iou_metric", "3")
    override(teacher, row.id, "", "8.5")  # a total override is final
    # the learner's report: the banner names each change and the score they make
    report = dana.get(f"/submissions/{row.id}/report").get_data(as_text=True)
    assert "Score now: 8.5 / 10" in report and "graded: 0" in report
    # the override table counts the new scores
    table = teacher.get(f"/instructor/submissions/{row.id}/override").get_data(as_text=True)
    assert re.search(r'id="counted-total"><strong>8.5 / 10</strong>', table)
    assert re.search(r"iou_metric</td>.*?<td>3 / 4</td></tr>", table, re.S)
    # the class summary: the learner's score
    summary = teacher.get("/instructor/summary/").get_data(as_text=True)
    assert re.search(rf">{re.escape(learner)}<.*?8.5 / 10", summary, re.S)
    # the gradebook, the exports and a new post to the LMS
    assert gradebook_cells(teacher.get("/instructor").get_data(as_text=True), learner)[4] == (
        "8.5 / 10"
    )
    (canvas,) = [r for r in exports_of(teacher)["canvas"] if r["SIS User ID"] == learner]
    assert canvas["Grade"] == "8.5"
    before = len(lms.platform.scores)
    step(lms)
    assert len(lms.platform.scores) == before + 1
    assert latest_posts(lms)[(DANA.sub, ASSIGNMENT)] == (8.5, 10)
    # cleared: every view is back to the graded score, posted again
    override(teacher, row.id, "", "")
    step(lms)
    assert latest_posts(lms)[(DANA.sub, ASSIGNMENT)] == (9, 10)  # the check override stays
