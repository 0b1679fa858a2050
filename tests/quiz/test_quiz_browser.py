"""The real page in headless Chromium (Playwright + Debian's /usr/bin/chromium; nothing downloaded)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quiz.variants import build_quiz
from quiz.web import WebConfig, create_app, make_server_for

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
    app = create_app(
        WebConfig(
            db=tmp_path / "quiz.db",
            bank=bank,
            definition=definition,
            secret_key="k",
            cooldown_seconds=3600,
        )
    )
    srv = make_server_for(app, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", app
    srv.shutdown()
    srv.server_close()


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
    url, app = server
    page.goto(url + "/")
    page.fill("#learner", "browser-learner")
    page.click("button[type=submit]")
    page.wait_for_url("**/attempt/*")
    token = page.url.rsplit("/", 1)[1]
    attempt = app.extensions["quiz_store"].get(token)
    items = build_quiz(bank, definition, attempt.seed)
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
    page.click("button[type=submit]")
    page.wait_for_url("**/result/*")
    blanks = sum(it.question.type == "fill" for it in items)
    score = page.locator("#score").inner_text()
    assert f"Score: {10 - blanks}/10" in score
    assert ("Passed" in score) == (10 - blanks >= 8)

    page.goto(url + "/")
    page.fill("#learner", "browser-learner")
    page.click("button[type=submit]")
    assert "No new attempt now" in page.content()
    assert "waiting time" in page.locator(".refused").inner_text()
