"""Each assignment its own quiz: on a server with two assignments that both have a quiz bank,
each quiz has its pages (the default one's at /quiz/, another's with ``?assignment=NAME``), its
own attempts, cooldown, grants of another attempt and release of the answers, and its own item
in the course total (the gradebook page, gradebook.csv, the learner's home, the LTI items)."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from sqlalchemy import select

from grader.server.lti.items import course_items
from grader.server.models import QuizAttempt
from grader.server.settings import AssignmentPolicy
from grader.server.state import EXTENSION as STATE
from grader.server.state import QUIZZES_EXTENSION
from tests.server import live
from tests.server.helpers import csrf_token, make_course
from tests.server.test_quiz_pages import Clock, blank_form, right_form

FIRST, SECOND = "object_localization", "tiny_course"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def course(data_dir, sqlite_db, settings, clock, tmp_path):
    second = live.tiny_course_with_quiz(tmp_path)
    two = dataclasses.replace(
        settings,
        quiz_points=10.0,
        assignments=(
            AssignmentPolicy(FIRST, submissions_per_day=50),
            AssignmentPolicy(str(second), submissions_per_day=50, quiz_points=25.0),
        ),
    )
    made = make_course(data_dir, sqlite_db, two, clock=clock)
    yield made
    made.executor.shutdown()


def quiz_path(name: str, rest: str = "") -> str:
    return f"/quiz/{rest}" + (f"?assignment={name}" if name != FIRST else "")


def start(client, name: str):
    token = csrf_token(client.get(quiz_path(name)).data)
    return client.post(quiz_path(name, "start"), data={"csrf_token": token})


def take(course, client, name: str, right: bool) -> QuizAttempt:
    """Start and submit an attempt at assignment ``name``'s quiz: all right, or all blank."""
    response = start(client, name)
    assert response.status_code == 303, response.data
    path = response.headers["Location"]
    page = client.get(path)
    with course.db.read() as session:
        attempt = session.get(QuizAttempt, int(path.rstrip("/").rsplit("/", 1)[1]))
    items = course.app.extensions[QUIZZES_EXTENSION][name].items(attempt.seed)
    form = right_form(items) if right else blank_form(items)
    done = client.post(path, data={"csrf_token": csrf_token(page.data), **form})
    assert done.status_code == 303, done.data
    with course.db.read() as session:
        return session.get(QuizAttempt, attempt.id)


def test_each_assignment_has_its_own_quiz_attempts_and_cooldown(course):
    alice, bob = course.client("alice"), course.client("bob")
    first = take(course, alice, FIRST, right=False)
    assert first.assignment == FIRST and first.score == 0
    assert start(alice, FIRST).status_code == 429  # the first quiz's cooldown
    page = alice.get(quiz_path(SECOND)).get_data(as_text=True)
    assert "Start attempt 1" in page  # the second quiz counts its own attempts
    second = take(course, alice, SECOND, right=True)
    assert second.assignment == SECOND and second.score == second.max_score
    assert (first.number, second.number) == (1, 1)  # each quiz numbers its own attempts
    result = alice.get(f"/quiz/attempts/{second.id}/result").get_data(as_text=True)
    assert "Quiz: attempt 1</h1>" in result
    history = course.client("instructor").get("/instructor/learners/alice").get_data(as_text=True)
    assert f"Quiz of {FIRST}: attempt 1 submitted, 0 points." in history
    assert f"Quiz of {SECOND}: attempt 1 started." in history
    result = alice.get(f"/quiz/attempts/{second.id}/result").get_data(as_text=True)
    assert f'href="/quiz/?assignment={SECOND}"' in result  # back to its own quiz
    assert bob.get(f"/quiz/attempts/{second.id}/result").status_code == 404
    assert alice.get("/quiz/?assignment=no_such_one").status_code == 404
    home = alice.get("/").get_data(as_text=True)
    assert 'href="/quiz/"' in home and f'href="/quiz/?assignment={SECOND}"' in home


def test_releasing_one_quizs_answers_leaves_the_others_hidden(course):
    teacher = course.client("instructor")
    page = teacher.get(quiz_path(SECOND, "instructor"))
    assert page.status_code == 200
    done = teacher.post(
        quiz_path(SECOND, "instructor/release"), data={"csrf_token": csrf_token(page.data)}
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(f"={SECOND}")
    quizzes = course.app.extensions[QUIZZES_EXTENSION]
    assert quizzes[SECOND].released_at() is not None
    assert quizzes[FIRST].released_at() is None


def test_another_attempt_is_granted_at_one_assignments_quiz(course, clock):
    alice, teacher = course.client("alice"), course.client("instructor")
    take(course, alice, FIRST, right=False)
    take(course, alice, SECOND, right=False)
    clock.advance(minutes=5)
    page = teacher.get("/instructor/learners/alice")
    assert page.get_data(as_text=True).count("Allow another quiz attempt now") == 2
    granted = teacher.post(
        f"/instructor/learners/alice/quiz-attempt?assignment={SECOND}",
        data={"csrf_token": csrf_token(page.data), "comment": "ill"},
    )
    assert granted.status_code == 303
    assert start(alice, FIRST).status_code == 429  # the first quiz: still its cooldown
    assert start(alice, SECOND).status_code == 303  # the second: the grant
    history = teacher.get("/instructor/learners/alice").get_data(as_text=True)
    assert f"Quiz of {SECOND}: another attempt granted by instructor: ill." in history
    assert f"Quiz of {SECOND}: attempt 2 started (granted by the instructor)." in history


def test_each_quiz_is_an_item_of_the_total_everywhere(course):
    alice = course.client("alice")
    take(course, alice, FIRST, right=False)
    best = take(course, alice, SECOND, right=True)
    teacher = course.client("instructor")
    text = teacher.get("/instructor/export/gradebook.csv").get_data(as_text=True)
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(text))}
    alice_row = rows["alice"]
    assert float(alice_row["quiz_score"]) == 0
    assert float(alice_row[f"{SECOND}_quiz_score"]) == best.score
    assert float(alice_row[f"{SECOND}_quiz_max_score"]) == best.max_score
    assert float(alice_row["quiz_counted"]) == 0
    assert float(alice_row[f"{SECOND}_quiz_counted"]) == 25.0  # all right: its own quiz_points
    assert float(alice_row["total"]) == 25.0
    # nothing graded yet: each notebook its default 100, the first quiz the top-level 10
    assert float(alice_row["total_max_score"]) == 100 + 100 + 10 + 25
    assert rows["bob"]["quiz_score"] == rows["bob"][f"{SECOND}_quiz_score"] == ""
    gradebook = teacher.get("/instructor").get_data(as_text=True)
    assert f"Quiz: {FIRST}" in gradebook and f"Quiz: {SECOND}" in gradebook
    app = course.app
    with app.test_request_context():
        items = course_items(app, app.extensions[STATE])
        pages = {item.key: item.page() for item in items}
    assert pages[f"quiz:{FIRST}"] == "/quiz/"
    assert pages[f"quiz:{SECOND}"] == f"/quiz/?assignment={SECOND}"
    with course.db.read() as session:
        kinds = set(session.scalars(select(QuizAttempt.assignment)))
    assert kinds == {FIRST, SECOND}
