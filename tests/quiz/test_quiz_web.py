"""The web app through Flask's test client: the learner flow, secrecy, limits, instructor page."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from quiz_helpers import right_form

from quiz.bank import Pool, QuizDefinition, load_bank
from quiz.client import csrf_token
from quiz.store import Store
from quiz.variants import build_quiz
from quiz.web import WebConfig, create_app

TOKEN = "s3cret-instructor-token"


@pytest.fixture
def app(tmp_path, bank, definition, clock):
    cfg = WebConfig(
        db=tmp_path / "quiz.db",
        bank=bank,
        definition=definition,
        instructor_token=TOKEN,
        secret_key="test",
        attempt_limit=2,
        cooldown_seconds=600,
        clock=clock,
    )
    return create_app(cfg)


def visible_text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def start(client, learner="alice"):
    page = client.get("/")
    return client.post("/", data={"learner": learner, "csrf_token": csrf_token(page.text)})


def open_attempt(client, learner="alice"):
    resp = start(client, learner)
    assert resp.status_code == 303, resp.text
    path = resp.headers["Location"]
    page = client.get(path)
    assert page.status_code == 200
    return path, page.text


def items_of(app, path):
    store: Store = app.extensions["quiz_store"]
    att = store.get(path.rsplit("/", 1)[1])
    return att, build_quiz(app.config["QUIZ_BANK"], app.config["QUIZ_DEFINITION"], att.seed)


@pytest.fixture(autouse=True)
def _expose(app, bank, definition):
    app.config["QUIZ_BANK"] = bank
    app.config["QUIZ_DEFINITION"] = definition


def test_take_and_pass(app):
    client = app.test_client()
    path, page = open_attempt(client)
    _att, items = items_of(app, path)
    assert page.count('class="question"') == 10
    resp = client.post(path, data={"csrf_token": csrf_token(page), **right_form(items)})
    assert resp.status_code == 303 and "/result/" in resp.headers["Location"]
    result = client.get(resp.headers["Location"]).text
    assert "Score: 10/10 (100%)" in result and "Passed" in result
    shown = visible_text(result)
    assert all(" ".join(it.question.explanation.replace("`", "").split()) in shown for it in items)


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
    client.post(path, data={"csrf_token": csrf_token(page), "q1": "0"})
    refused = start(client)
    assert refused.status_code == 429
    assert "waiting time" in refused.text and "10 min" in refused.text
    clock.advance(601)
    path2, page2 = open_attempt(client)
    assert path2 != path
    client.post(path2, data={"csrf_token": csrf_token(page2)})
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


def test_csrf_is_required(app):
    client = app.test_client()
    assert client.post("/", data={"learner": "mallory"}).status_code == 400
    path, _ = open_attempt(client)
    assert client.post(path, data={"q1": "0"}).status_code == 400


def test_learner_id_is_validated(app):
    client = app.test_client()
    resp = start(client, "<script>alert(1)</script>")
    assert resp.status_code == 200 and "Use letters, digits" in resp.text
    assert "<script>alert(1)" not in resp.text


def test_bank_text_is_escaped(tmp_path, clock):
    (tmp_path / "evil.yaml").write_text(
        "topic: iou\nquestions:\n"
        "  - id: evil-q\n    type: single\n    prompt: 'Is <script>alert(1)</script> `code` safe?'\n"
        "    options: [{text: '<img src=x onerror=alert(1)>', correct: true}, {text: '&amp; b'}]\n"
        "    explanation: '<b>bold</b>'\n",
        encoding="utf-8",
    )
    bank = load_bank([tmp_path])
    definition = QuizDefinition(pools=(Pool(("iou",), 1),), questions=1)
    app = create_app(
        WebConfig(
            db=tmp_path / "q.db", bank=bank, definition=definition, secret_key="k", clock=clock
        )
    )
    client = app.test_client()
    path, page = open_attempt(client)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&amp;amp; b" in page
    assert "<code>code</code>" in page
    att = app.extensions["quiz_store"].get(path.rsplit("/", 1)[1])
    res = client.get(
        client.post(path, data={"csrf_token": csrf_token(page), "q1": "0"}).headers["Location"]
    ).text
    assert att is not None and "<b>bold</b>" not in res and "&lt;b&gt;bold&lt;/b&gt;" in res


def test_every_page_says_it_is_practice_without_sign_in(app):
    client = app.test_client()
    for page in (client.get("/"), client.get("/instructor"), client.get("/nope")):
        assert "Practice mode: this stand-alone quiz has no sign-in" in page.text


def test_security_headers(app):
    resp = app.test_client().get("/")
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


def test_instructor_page_needs_the_token(app):
    client = app.test_client()
    page = client.get("/instructor")
    assert "Instructor token" in page.text and "pass rate" not in page.text
    assert client.get("/instructor/attempts.csv").status_code == 403
    bad = client.post("/instructor", data={"token": "nope", "csrf_token": csrf_token(page.text)})
    assert bad.status_code == 403
    ok = client.post("/instructor", data={"token": TOKEN, "csrf_token": csrf_token(page.text)})
    assert ok.status_code == 303
    assert "pass rate" in client.get("/instructor").text


def test_instructor_stats_and_csv(app, clock):
    learners = ["ann", "=cmd|' /C calc'!A0", "bob"]
    for i, name in enumerate(learners):
        client = app.test_client()
        path, page = open_attempt(client, name if i != 1 else "eve")
        _, items = items_of(app, path)
        form = right_form(items) if i != 2 else {}
        client.post(path, data={"csrf_token": csrf_token(page), **form})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = app.test_client()
    page = client.get("/instructor", headers=headers).text
    assert re.search(r'id="pass-rate">66\.7%', page)
    rows = list(
        csv.reader(io.StringIO(client.get("/instructor/attempts.csv", headers=headers).text))
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
    assert len(rows[0]) == 9 + len(app.config["QUIZ_BANK"].questions)
    assert all(sum(1 for v in r[9:] if v != "") == 10 for r in rows[1:])
    qrows = list(
        csv.reader(io.StringIO(client.get("/instructor/questions.csv", headers=headers).text))
    )
    assert qrows[0] == ["question", "answered", "difficulty", "fully_correct"]
    assert sum(int(r[1]) for r in qrows[1:]) == 30


def test_csv_neutralises_formulas():
    from quiz.web import _csv_cell

    assert _csv_cell("=1+1") == "'=1+1" and _csv_cell("ann") == "ann" and _csv_cell(3) == 3


def test_instructor_disabled_without_token(tmp_path, bank, definition):
    app = create_app(
        WebConfig(db=tmp_path / "q.db", bank=bank, definition=definition, secret_key="k")
    )
    assert app.test_client().get("/instructor").status_code == 404


def test_database_url(tmp_path, bank, definition):
    url = f"sqlite:///{tmp_path}/sub/quiz.db"
    app = create_app(WebConfig(db=url, bank=bank, definition=definition, secret_key="k"))
    open_attempt(app.test_client())
    assert (tmp_path / "sub" / "quiz.db").exists()
    with pytest.raises(ValueError, match="only sqlite"):
        create_app(WebConfig(db="postgresql://x/y", bank=bank, definition=definition))
