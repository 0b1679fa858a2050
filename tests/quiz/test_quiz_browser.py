"""The practice quiz's real pages (``quiz serve``: the server's quiz pages under waitress) in
headless Chromium (Playwright + Debian's /usr/bin/chromium; nothing downloaded)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from waitress import wasyncore

from grader.server.db import open_store
from grader.server.practice import create_practice_app
from grader.server.quiz_attempts import QuizService
from grader.server.serve import make_server
from quiz.variants import build_quiz

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
    ),
]


@pytest.fixture
def server(tmp_path, bank, definition):
    path = tmp_path / "quiz.db"
    db = open_store(path)
    quiz = QuizService(db, bank, definition, practice=True, cooldown_seconds=3600)
    srv = make_server(create_practice_app(quiz, secret_key="k"), "127.0.0.1", 0, 4, 64 * 1024)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}", path
    srv.task_dispatcher.shutdown()
    wasyncore.close_all(srv._map)
    thread.join(5)
    db.dispose()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_take_submit_score_and_cooldown(server, page, bank, definition):
    url, db = server
    page.goto(url + "/")  # the start page of the practice quiz
    assert "Practice mode" in page.inner_text("body")
    page.fill("#learner", "browser-learner")
    page.click("button[type=submit]")
    page.wait_for_url("**/quiz/attempts/*")
    attempt_id = int(page.url.rsplit("/", 1)[1])
    (seed,) = (
        sqlite3.connect(db)
        .execute("SELECT seed FROM quiz_attempts WHERE id = ?", (attempt_id,))
        .fetchone()
    )
    items = build_quiz(bank, definition, seed)
    assert page.locator("fieldset.question").count() == 10
    for it in items:
        q, name = it.question, f"q{it.number}"
        if q.type == "multiple":
            for i, o in enumerate(q.options):
                if o.correct:
                    page.check(f"input[name={name}][value='{i}']")
        elif q.options:
            right = next(i for i, o in enumerate(q.options) if o.correct)
            page.check(f"input[name={name}][value='{right}']")
        elif q.type == "numeric":
            page.fill(f"input[name={name}]", repr(q.answer))
        # fill-in questions are left blank on purpose: 9/10 still passes at 80%
    page.click("button[name=submit]")
    page.wait_for_url("**/result")
    blanks = sum(it.question.type == "fill" for it in items)
    score = page.locator("#score").inner_text()
    assert f"Score: {10 - blanks}/10" in score
    assert ("Passed" in score) == (10 - blanks >= 8)

    page.goto(url + "/quiz/")
    page.fill("#learner", "browser-learner")
    page.get_by_role("button", name="Start the quiz").click()
    assert "No new attempt now" in page.content()
    assert "waiting time" in page.locator(".refused").inner_text()
