"""The graded quiz inside the course server: signed-in learners only, seeds drawn by the server
and never shown, quiz.yaml's limit, cooldown and pass mark, the optional time limit, answers
shown only after the last attempt or the instructor's release, strict forms (400, never 500),
and every route tried with the other learner's attempt ids (404)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from grader.server.models import QuizAttempt
from quiz.bank import load_bank, load_definition
from quiz.leaks import answer_leaks
from quiz.source import quiz_of
from quiz.variants import build_quiz
from tests.server.helpers import csrf_token, make_course

START = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)


class Clock:
    """The server's clock, moved by hand: no test sleeps through a cooldown or a time limit."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def course_for(data_dir, database, settings, clock, **changes):
    course = make_course(data_dir, database, dataclasses.replace(settings, **changes), clock=clock)
    course.quiz = course.app.extensions["course_quiz"]
    return course


@pytest.fixture
def course(data_dir, sqlite_db, settings, clock):
    course = course_for(data_dir, sqlite_db, settings, clock)
    yield course
    course.executor.shutdown()


def start(client):
    token = csrf_token(client.get("/quiz/").data)
    return client.post("/quiz/start", data={"csrf_token": token})


def open_attempt(course, client) -> tuple[int, str, QuizAttempt]:
    response = start(client)
    assert response.status_code == 303, response.data
    path = response.headers["Location"]
    attempt_id = int(path.rstrip("/").rsplit("/", 1)[1])
    page = client.get(path)
    assert page.status_code == 200
    with course.db.read() as session:
        attempt = session.get(QuizAttempt, attempt_id)
    return attempt_id, page.data.decode(), attempt


def right_form(items) -> dict:
    form = {}
    for it in items:
        q, name = it.question, f"q{it.number}"
        if q.type == "multiple":
            form[name] = [str(i) for i, o in enumerate(q.options) if o.correct]
        elif q.options:
            form[name] = str(next(i for i, o in enumerate(q.options) if o.correct))
        else:
            form[name] = repr(q.answer) if q.type == "numeric" else q.accepted[0]
    return form


def blank_form(items) -> dict:
    return {f"q{it.number}": "" for it in items if not it.question.options}


def submit(course, client, attempt_id, page, form):
    return client.post(
        f"/quiz/attempts/{attempt_id}", data={"csrf_token": csrf_token(page.encode()), **form}
    )


def items_of(course, attempt):
    return course.quiz.items(attempt.seed)


def test_an_unsigned_visitor_gets_the_sign_in_requirement_not_the_quiz(course):
    anonymous = course.app.test_client()
    page = anonymous.get("/quiz/")
    assert page.status_code == 401 and b"Sign in to take the quiz" in page.data
    assert b"Question 1" not in page.data and b"Start attempt" not in page.data
    alice = course.client("alice")
    attempt_id, _, _ = open_attempt(course, alice)
    for path in (f"/quiz/attempts/{attempt_id}", f"/quiz/attempts/{attempt_id}/result"):
        assert anonymous.get(path).status_code == 404, path
    assert anonymous.post("/quiz/start").status_code == 400  # no session, no CSRF token


def test_take_and_pass_with_a_server_drawn_seed_that_is_never_shown(course):
    client = course.client("alice")
    assert b"Take the graded quiz" in client.get("/").data
    attempt_id, page, attempt = open_attempt(course, client)
    assert page.count('class="question"') == 10
    assert str(attempt.seed) not in page and "seed" not in page.lower()
    items = items_of(course, attempt)
    assert [it.qid for it in items] == [
        it.qid for it in build_quiz(course.quiz.bank, course.quiz.definition, attempt.seed)
    ]
    for it in items:  # nothing about the answers before submission
        assert it.question.explanation not in page
    again = start(client)  # reloading "start" resumes the open attempt, same variant
    assert again.headers["Location"].endswith(f"/quiz/attempts/{attempt_id}")
    response = submit(course, client, attempt_id, page, right_form(items))
    assert response.status_code == 303
    result = client.get(response.headers["Location"])
    text = result.data.decode()
    assert "Score: 10/10 (100%)" in text and "Passed" in text
    assert str(attempt.seed) not in text
    assert result.headers["Cache-Control"] == "no-store"


def test_limit_cooldown_and_pass_mark_come_from_quiz_yaml_and_answers_show_after_the_last(
    course, clock
):
    definition = course.quiz.definition
    assert (course.quiz.policy.attempt_limit, course.quiz.policy.pass_mark) == (
        definition.attempt_limit,
        definition.pass_mark,
    )
    client = course.client("alice")
    explanations_seen = []
    for number in range(1, definition.attempt_limit + 1):
        attempt_id, page, attempt = open_attempt(course, client)
        assert attempt.number == number
        items = items_of(course, attempt)
        form = right_form(items)
        for it in items[:3]:  # 7/10 < the pass mark of 80%
            form.pop(f"q{it.number}")
            if not it.question.options:
                form[f"q{it.number}"] = ""
        result = client.get(submit(course, client, attempt_id, page, form).headers["Location"])
        assert b"Score: 7/10 (70%)" in result.data and b"Not passed" in result.data
        shown = result.data.decode()
        explanations_seen.append("Why:" in shown and "Correct answer:" in shown)
        refused = start(client)
        if number < definition.attempt_limit:
            assert refused.status_code == 429 and b"waiting time" in refused.data
            clock.advance(seconds=definition.cooldown_seconds - 60)
            assert start(client).status_code == 429
            clock.advance(seconds=61)
        else:
            assert refused.status_code == 403
            assert f"All {definition.attempt_limit} attempts".encode() in refused.data
    # the correct answers and explanations only after the last allowed attempt
    assert explanations_seen == [False] * (definition.attempt_limit - 1) + [True]


def test_instructor_release_shows_the_answers_before_the_last_attempt(course):
    client = course.client("alice")
    attempt_id, page, attempt = open_attempt(course, client)
    items = items_of(course, attempt)
    submit(course, client, attempt_id, page, blank_form(items))
    result = f"/quiz/attempts/{attempt_id}/result"
    assert b"Correct answer:" not in client.get(result).data
    instructor = course.client("instructor")
    assert instructor.get("/quiz/").status_code == 302
    overview = instructor.get("/quiz/instructor")
    assert overview.status_code == 200 and b"alice" in overview.data
    assert b"Correct answer:" in instructor.get(result).data  # the instructor sees them
    assert instructor.post("/quiz/instructor/release").status_code == 400  # CSRF
    token = csrf_token(overview.data)
    assert (
        instructor.post("/quiz/instructor/release", data={"csrf_token": token}).status_code == 303
    )
    shown = client.get(result).data.decode()
    assert "Correct answer:" in shown and "Why:" in shown


def with_both_kinds(course, attempt_id: int):
    """Pin the attempt to the first seed whose draw has a one-choice question and a typed-answer
    one (about one draw in a hundred has no typed answer); the attempt's items."""
    seed = next(
        seed
        for seed in range(1000)
        if any(not it.question.options for it in course.quiz.items(seed))
        and any(it.question.options and it.type != "multiple" for it in course.quiz.items(seed))
    )
    with course.db.write() as session:
        session.get(QuizAttempt, attempt_id).seed = seed
    return course.quiz.items(seed)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("choice", "\u0661", "is not one of its options"),  # ARABIC-INDIC DIGIT ONE
        ("choice", "\u00b2", "is not one of its options"),  # SUPERSCRIPT TWO: int() fails
        ("choice", "99", "is not one of its options"),
        ("choice", ["0", "1"], "takes one choice"),
        ("text", None, "the answer field is missing"),
        ("text", "x" * 201, "at most 200 characters"),
        ("q99", "0", "not in this attempt: q99"),
        ("qx", "0", "not in this attempt: qx"),
    ],
)
def test_bad_input_is_a_400_with_a_message_and_the_attempt_stays_open(
    course, field, value, message
):
    client = course.client("alice")
    attempt_id, page, _ = open_attempt(course, client)
    items = with_both_kinds(course, attempt_id)
    form = blank_form(items)
    if field == "choice":
        single = next(it for it in items if it.question.options and it.type != "multiple")
        form[f"q{single.number}"] = value
    elif field == "text":
        text = next(it for it in items if not it.question.options)
        if value is None:
            form.pop(f"q{text.number}")
        else:
            form[f"q{text.number}"] = value
    else:
        form[field] = value
    response = submit(course, client, attempt_id, page, form)
    assert response.status_code == 400
    assert message in response.data.decode()
    with course.db.read() as session:
        assert session.get(QuizAttempt, attempt_id).submitted_at is None


def test_every_route_refuses_the_other_learners_attempt(data_dir, db, settings, clock):
    course = course_for(data_dir, db, settings, clock)
    alice = course.client("alice")
    attempt_id, page, attempt = open_attempt(course, alice)
    bob = course.client("bob")
    bob_token = csrf_token(bob.get("/quiz/").data)
    items = items_of(course, attempt)
    for path in (f"/quiz/attempts/{attempt_id}", f"/quiz/attempts/{attempt_id}/result"):
        assert bob.get(path).status_code == 404, path
    stolen = bob.post(
        f"/quiz/attempts/{attempt_id}", data={"csrf_token": bob_token, **right_form(items)}
    )
    assert stolen.status_code == 404
    with course.db.read() as session:
        assert session.get(QuizAttempt, attempt_id).submitted_at is None  # untouched
    # Alice submits; Bob still sees nothing of it, and his own list is empty
    submit(course, alice, attempt_id, page, right_form(items))
    for path in (f"/quiz/attempts/{attempt_id}", f"/quiz/attempts/{attempt_id}/result"):
        response = bob.get(path)
        assert response.status_code == 404 and b"10/10" not in response.data, path
    assert b"None yet" in bob.get("/quiz/").data
    for who in ("alice", "bob"):
        learner = course.client(who)
        assert learner.get("/quiz/instructor").status_code == 404
        token = csrf_token(learner.get("/quiz/").data)
        assert (
            learner.post("/quiz/instructor/release", data={"csrf_token": token}).status_code == 404
        )
    assert course.client("bob").get("/quiz/attempts/999").status_code == 404
    course.executor.shutdown()


def test_parallel_starts_open_one_attempt(data_dir, db, settings, clock):
    course = course_for(data_dir, db, settings, clock)
    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(lambda _: course.quiz.start("alice").id, range(6)))
    assert len(ids) == 1
    with course.db.read() as session:
        assert len(session.scalars(select(QuizAttempt)).all()) == 1
    course.executor.shutdown()


def test_time_limit_is_enforced_on_the_server(data_dir, sqlite_db, settings, clock):
    course = course_for(data_dir, sqlite_db, settings, clock, quiz_time_limit_minutes=10)
    client = course.client("alice")
    attempt_id, page, attempt = open_attempt(course, client)
    assert attempt.deadline_at == START + dt.timedelta(minutes=10)
    assert "Submit by 2027-01-10 09:10 UTC" in page
    items = items_of(course, attempt)
    clock.advance(minutes=10, seconds=30)  # within the grace for the network and the click
    response = submit(course, client, attempt_id, page, right_form(items))
    assert response.status_code == 303
    assert b"Score: 10/10" in client.get(response.headers["Location"]).data

    clock.advance(seconds=course.quiz.definition.cooldown_seconds)
    attempt_id, page, attempt = open_attempt(course, client)
    clock.advance(minutes=12)  # past the limit and its grace
    late = submit(course, client, attempt_id, page, right_form(items_of(course, attempt)))
    assert late.status_code == 409 and b"time for this attempt ran out" in late.data
    with course.db.read() as session:
        closed = session.get(QuizAttempt, attempt_id)
    assert closed.expired and closed.score == 0 and closed.submitted_at == closed.deadline_at
    assert b"time ran out" in client.get(f"/quiz/attempts/{attempt_id}/result").data


def test_an_open_attempt_past_its_limit_is_closed_when_the_learner_returns(
    data_dir, sqlite_db, settings, clock
):
    course = course_for(data_dir, sqlite_db, settings, clock, quiz_time_limit_minutes=5)
    client = course.client("alice")
    attempt_id, _, attempt = open_attempt(course, client)
    clock.advance(hours=1)
    page = client.get("/quiz/").data
    assert b"time ran out" in page and b"Continue attempt" not in page
    with course.db.read() as session:
        assert session.get(QuizAttempt, attempt_id).submitted_at == attempt.deadline_at
    # the cooldown counts from the limit, not from when the learner came back
    clock.advance(seconds=course.quiz.definition.cooldown_seconds - 3600 + 5 * 60 + 61)
    assert start(client).status_code == 303


# --------------------------------------------------------------------- the bank's questions


def test_no_question_code_shows_another_questions_answer():
    bank, definition = quiz_of("object_localization").load()
    assert answer_leaks(bank, definition) == []


def test_the_leak_check_finds_a_leak(tmp_path):
    bank_dir = tmp_path / "bank"
    bank_dir.mkdir()
    (bank_dir / "q.yaml").write_text(
        "questions:\n"
        "  - id: es-key\n    topic: early-stopping\n    type: fill\n"
        "    prompt: monitor=____\n    accepted: [val_box_out_iou]\n"
        "  - id: cb-code\n    topic: callbacks\n    type: code\n    prompt: What happens?\n"
        "    code: 'if logs[\"val_box_out_iou\"] > 0.9: stop()'\n"
        "    options: [{text: it stops, correct: true}, {text: it runs}]\n"
        "  - id: iou-formula\n    topic: iou\n    type: single\n    prompt: IoU?\n"
        "    answer_patterns: ['area\\(\\w+\\)\\s*\\+\\s*area\\(\\w+\\)\\s*-']\n"
        "    options: [{text: a, correct: true}, {text: b}]\n"
        "  - id: iou-code\n    topic: iou\n    type: code\n    prompt: Which pair is wrong?\n"
        "    code: 'union = area(a) + area(b) - inter'\n"
        "    options: [{text: disjoint, correct: true}, {text: nested}]\n",
        encoding="utf-8",
    )
    (bank_dir / "quiz.yaml").write_text(
        "quiz:\n  pools:\n    - {topics: [early-stopping], draw: 1}\n"
        "    - {topics: [callbacks], draw: 1}\n    - {topics: [iou], draw: 2}\n",
        encoding="utf-8",
    )
    bank = load_bank([bank_dir])
    found = answer_leaks(bank, load_definition(bank_dir / "quiz.yaml", bank), seeds=[0])
    assert found == ["cb-code shows es-key: val_box_out_iou", "iou-code shows iou-formula"]
