"""Another quiz attempt for one learner: the instructor's button on the learner's page (a POST
with the CSRF token, audit-logged) lets that learner, and nobody else, start a new attempt
despite the cooldown, and past the attempt limit, once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from grader.server.models import AuditEvent, QuizGrant
from tests.server.helpers import csrf_token
from tests.server.test_quiz_pages import (
    Clock,
    blank_form,
    course_for,
    items_of,
    open_attempt,
    start,
    submit,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def course(data_dir, sqlite_db, settings, clock):
    made = course_for(data_dir, sqlite_db, settings, clock)
    yield made
    made.executor.shutdown()


def finish_attempt(course, client) -> None:
    attempt_id, page, attempt = open_attempt(course, client)
    assert (
        submit(course, client, attempt_id, page, blank_form(items_of(course, attempt))).status_code
        == 303
    )


def grant(course, teacher, learner: str, comment: str = "missed it: ill"):
    page = teacher.get(f"/instructor/learners/{learner}")
    assert b"Allow another quiz attempt now" in page.data
    return teacher.post(
        f"/instructor/learners/{learner}/quiz-attempt",
        data={"csrf_token": csrf_token(page.data), "comment": comment},
    )


def test_a_granted_attempt_starts_despite_the_cooldown_once(course, clock):
    alice, bob, teacher = course.client("alice"), course.client("bob"), course.client("instructor")
    finish_attempt(course, alice)
    finish_attempt(course, bob)
    clock.advance(minutes=5)
    assert start(alice).status_code == 429  # the 8-hour cooldown
    answer = grant(course, teacher, "alice")
    assert answer.status_code == 303
    page = teacher.get(answer.headers["Location"]).get_data(as_text=True)
    assert "may start another quiz attempt now" in page and 'id="grant-waiting"' in page
    assert re.search(
        r"Quiz of \w+: another attempt granted by instructor: missed it: ill\.", page
    )  # the history
    with course.db.read() as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "quiz_attempt_granted")
        ).all()
        assert (event.actor, event.subject, event.detail["comment"]) == (
            "instructor",
            "alice",
            "missed it: ill",
        )
    # a second click before it is used does not add another
    again = grant(course, teacher, "alice")
    assert "already has another attempt granted" in teacher.get(again.headers["Location"]).text
    assert "Start attempt 2" in alice.get("/quiz/").get_data(as_text=True)
    assert start(bob).status_code == 429  # only alice
    finish_attempt(course, alice)  # the granted attempt
    with course.db.read() as session:
        (row,) = session.scalars(select(QuizGrant)).all()
        assert row.attempt_id is not None and row.learner_id == "alice"
    assert start(alice).status_code == 429  # used: the cooldown applies again
    assert len(course.quiz.attempts_of("alice")) == 2


def test_a_grant_goes_past_the_attempt_limit(course, clock):
    alice, teacher = course.client("alice"), course.client("instructor")
    for _ in range(course.quiz.policy.attempt_limit):
        finish_attempt(course, alice)
        clock.advance(hours=9)
    assert start(alice).status_code == 403  # all attempts used
    assert grant(course, teacher, "alice").status_code == 303
    finish_attempt(course, alice)
    assert len(course.quiz.attempts_of("alice")) == course.quiz.policy.attempt_limit + 1
    clock.advance(hours=9)
    assert start(alice).status_code == 403


def test_only_the_instructor_grants_and_only_with_the_csrf_token(course):
    alice, teacher = course.client("alice"), course.client("instructor")
    token = csrf_token(alice.get("/").data)
    refused = alice.post("/instructor/learners/alice/quiz-attempt", data={"csrf_token": token})
    assert refused.status_code == 404  # a learner does not even learn the route exists
    assert teacher.post("/instructor/learners/alice/quiz-attempt").status_code == 400
    page = teacher.get("/instructor/learners/alice")
    unknown = teacher.post(
        "/instructor/learners/nobody/quiz-attempt", data={"csrf_token": csrf_token(page.data)}
    )
    assert unknown.status_code == 404
    with course.db.read() as session:
        assert session.scalars(select(QuizGrant)).all() == []
