"""The quiz's web delivery in practice mode (``quiz serve``): the course server's quiz pages and
store without sign-in, through Flask's test client: the learner flow, secrecy, limits, the
instructor's page, and that nothing practised is graded."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from quiz_helpers import right_form

from grader.server import roster
from grader.server.db import open_store
from grader.server.exports import quiz_score
from grader.server.models import QuizAttempt
from grader.server.practice import create_practice_app
from grader.server.quiz_attempts import QuizService
from quiz.bank import Pool, QuizDefinition, load_bank
from quiz.client import csrf_token
from quiz.variants import build_quiz

TOKEN = "s3cret-instructor-token"


@pytest.fixture
def store(tmp_path):
    db = open_store(tmp_path / "quiz.db")
    yield db
    db.dispose()


def practice_app(store, bank, definition, clock, token=TOKEN, **limits):
    if token:
        roster.set_instructor_token(store, token)
    quiz = QuizService(store, bank, definition, clock=clock, practice=True, **limits)
    app = create_practice_app(quiz, secret_key="test")
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(store, bank, definition, clock):
    return practice_app(store, bank, definition, clock, attempt_limit=2, cooldown_seconds=600)


def visible_text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def start(client, learner="alice"):
    page = client.get("/quiz/")
    return client.post(
        "/quiz/start", data={"learner": learner, "csrf_token": csrf_token(page.text)}
    )


def open_attempt(client, learner="alice"):
    resp = start(client, learner)
    assert resp.status_code == 303, resp.text
    path = resp.headers["Location"]
    page = client.get(path)
    assert page.status_code == 200
    return path, page.text


def items_of(app, path):
    quiz = app.extensions["course_quiz"]
    with quiz.db.read() as session:
        att = session.get(QuizAttempt, int(path.rsplit("/", 1)[1]))
    return att, build_quiz(quiz.bank, quiz.definition, att.seed)


def test_take_and_pass_and_see_the_answers_at_once(app):
    client = app.test_client()
    assert client.get("/").headers["Location"].endswith("/quiz/")
    path, page = open_attempt(client)
    att, items = items_of(app, path)
    assert page.count('class="question"') == 10
    resp = client.post(path, data={"csrf_token": csrf_token(page), **right_form(items)})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/result")
    result = client.get(resp.headers["Location"]).text
    assert "Score: 10/10 (100%)" in result and "Passed" in result
    shown = visible_text(result)
    assert all(" ".join(it.question.explanation.replace("`", "").split()) in shown for it in items)
    assert att.practice


def test_practice_attempts_are_never_graded(app, store):
    """A practice attempt is stored as practice: a gradebook reading the same store sees none."""
    client = app.test_client()
    path, page = open_attempt(client)
    _, items = items_of(app, path)
    client.post(path, data={"csrf_token": csrf_token(page), **right_form(items)})
    with store.read() as session:
        (attempt,) = session.query(QuizAttempt).all()
    assert attempt.practice and attempt.score == 10
    assert quiz_score(store, "alice") is None


def test_answers_never_reach_the_browser_before_submission(app):
    client = app.test_client()
    path, page = open_attempt(client)
    _, items = items_of(app, path)
    for it in items:
        q = it.question
        assert q.explanation not in page
        for o in q.options:
            assert not o.feedback or o.feedback not in page
        if q.type == "numeric":
            assert f'value="{q.answer!r}"' not in page
        if q.type == "fill":
            for accepted in q.accepted:
                assert f'value="{accepted}"' not in page
                # A short answer such as "10" may also occur in ordinary page text ("10 questions").
                if len(accepted) > 3 and accepted not in q.prompt and accepted not in q.code:
                    assert accepted not in page
    assert "correct" not in page.lower().replace("correctly", "")


def test_reload_keeps_the_same_variant(app):
    client = app.test_client()
    path1, _ = open_attempt(client)
    path2, _ = open_attempt(client)
    assert path1 == path2


def test_second_attempt_waits_for_the_cooldown_then_the_limit(app, clock):
    client = app.test_client()
    path, page = open_attempt(client)
    _, items = items_of(app, path)
    blank = {f"q{it.number}": "" for it in items if not it.question.options}
    client.post(path, data={"csrf_token": csrf_token(page), **blank})
    refused = start(client)
    assert refused.status_code == 429
    assert "waiting time" in refused.text and "10 min" in refused.text
    clock.advance(601)
    path2, page2 = open_attempt(client)
    assert path2 != path
    _, items2 = items_of(app, path2)
    blank2 = {f"q{it.number}": "" for it in items2 if not it.question.options}
    client.post(path2, data={"csrf_token": csrf_token(page2), **blank2})
    clock.advance(10_000)
    final = start(client)
    assert final.status_code == 403 and "All 2 attempts have been used" in final.text


def test_result_is_recorded_once(app):
    client = app.test_client()
    path, page = open_attempt(client)
    _, items = items_of(app, path)
    token = csrf_token(page)
    client.post(path, data={"csrf_token": token, **right_form(items)})
    again = client.post(path, data={"csrf_token": token})  # a blank resubmission must not overwrite
    assert again.status_code == 303
    assert "Score: 10/10" in client.get(again.headers["Location"]).text


def test_another_visitor_reaches_none_of_an_attempt(app):
    alice = app.test_client()
    path, _page = open_attempt(alice, "alice")
    bob = app.test_client()
    open_attempt(bob, "bob")
    assert bob.get(path).status_code == 404
    assert app.test_client().get(path).status_code == 404  # nobody typed an id yet


def test_csrf_is_required(app):
    client = app.test_client()
    assert client.post("/quiz/start", data={"learner": "mallory"}).status_code == 400
    path, _ = open_attempt(client)
    assert client.post(path, data={"q1": "0"}).status_code == 400


def test_learner_id_is_validated(app):
    client = app.test_client()
    resp = start(client, "<script>alert(1)</script>")
    assert resp.status_code == 200 and "Use letters, digits" in resp.text
    assert "<script>alert(1)" not in resp.text


def test_bank_text_is_escaped(tmp_path, store, clock):
    (tmp_path / "evil.yaml").write_text(
        "topic: iou\nquestions:\n"
        "  - id: evil-q\n    type: single\n    prompt: 'Is <script>alert(1)</script> `code` safe?'\n"
        "    options: [{text: '<img src=x onerror=alert(1)>', correct: true}, {text: '&amp; b'}]\n"
        "    explanation: '<b>bold</b>'\n",
        encoding="utf-8",
    )
    bank = load_bank([tmp_path])
    definition = QuizDefinition(pools=(Pool(("iou",), 1),), questions=1)
    client = practice_app(store, bank, definition, clock).test_client()
    path, page = open_attempt(client)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&amp;amp; b" in page
    assert "<code>code</code>" in page
    res = client.get(
        client.post(path, data={"csrf_token": csrf_token(page), "q1": "0"}).headers["Location"]
    ).text
    assert "<b>bold</b>" not in res and "&lt;b&gt;bold&lt;/b&gt;" in res


def test_every_page_says_it_is_practice_without_sign_in(app):
    client = app.test_client()
    for path in ("/quiz/", "/quiz/instructor", "/nope"):
        assert "Practice mode: this stand-alone quiz has no sign-in" in client.get(path).text, path


def test_security_headers(app):
    resp = app.test_client().get("/quiz/")
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


def test_instructor_page_needs_the_token(app):
    client = app.test_client()
    page = client.get("/quiz/instructor")
    assert "Instructor token" in page.text and "pass rate" not in page.text
    assert client.get("/quiz/instructor/attempts.csv").status_code == 404
    bad = client.post(
        "/quiz/instructor", data={"token": "nope", "csrf_token": csrf_token(page.text)}
    )
    assert bad.status_code == 403
    ok = client.post("/quiz/instructor", data={"token": TOKEN, "csrf_token": csrf_token(page.text)})
    assert ok.status_code == 303
    overview = client.get("/quiz/instructor").text
    assert "pass rate" in overview and "Release the correct answers" not in overview


def test_instructor_stats_and_csv(app):
    for i, name in enumerate(["ann", "eve", "bob"]):
        client = app.test_client()
        path, page = open_attempt(client, name)
        _, items = items_of(app, path)
        form = right_form(items) if i != 2 else {}
        if i == 2:
            form = {f"q{it.number}": "" for it in items if not it.question.options}
        client.post(path, data={"csrf_token": csrf_token(page), **form})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = app.test_client()
    page = client.get("/quiz/instructor", headers=headers).text
    assert re.search(r'id="pass-rate">66\.7%', page)
    rows = list(
        csv.reader(io.StringIO(client.get("/quiz/instructor/attempts.csv", headers=headers).text))
    )
    assert rows[0][:9] == [
        "learner",
        "attempt",
        "seed",
        "started_utc",
        "submitted_utc",
        "score",
        "max_score",
        "percent",
        "passed",
    ]
    assert [r[0] for r in rows[1:]] == ["ann", "eve", "bob"]
    assert [r[8] for r in rows[1:]] == ["1", "1", "0"]
    assert len(rows[0]) == 9 + len(app.extensions["course_quiz"].bank.questions)
    assert all(sum(1 for v in r[9:] if v != "") == 10 for r in rows[1:])
    qrows = list(
        csv.reader(io.StringIO(client.get("/quiz/instructor/questions.csv", headers=headers).text))
    )
    assert qrows[0] == ["question", "answered", "difficulty", "fully_correct"]
    assert sum(int(r[1]) for r in qrows[1:]) == 30


def test_a_learner_id_that_looks_like_a_formula_is_refused_and_csv_cells_are_safe():
    from grader.spreadsheet import safe_cell

    assert safe_cell("=1+1") == "'=1+1" and safe_cell("ann") == "ann" and safe_cell(3) == 3


def test_no_instructor_without_a_recorded_token(store, bank, definition, clock):
    client = practice_app(store, bank, definition, clock, token=None).test_client()
    page = client.get("/quiz/instructor")
    assert page.status_code == 200  # the sign-in form
    refused = client.post(
        "/quiz/instructor", data={"token": "anything", "csrf_token": csrf_token(page.text)}
    )
    assert refused.status_code == 403  # no token recorded: nothing signs in


def test_database_url(tmp_path, bank, definition, clock):
    url = f"sqlite:///{tmp_path}/sub/quiz.db"
    db = open_store(url)
    try:
        open_attempt(practice_app(db, bank, definition, clock).test_client())
    finally:
        db.dispose()
    assert (tmp_path / "sub" / "quiz.db").exists()
    with pytest.raises(ValueError, match="cannot open the database"):
        open_store("nosuchdriver://x/y")
