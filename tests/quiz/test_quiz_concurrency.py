"""Concurrent submissions against a real threaded server on 127.0.0.1: nothing lost, nothing doubled."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from quiz_helpers import right_form

from quiz.client import QuizClient
from quiz.variants import build_quiz
from quiz.web import WebConfig, create_app, make_server_for


@pytest.fixture
def server(tmp_path, bank, definition):
    db = tmp_path / "quiz.db"
    app = create_app(
        WebConfig(db=db, bank=bank, definition=definition, secret_key="k", instructor_token="t")
    )
    srv = make_server_for(app, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, app, db
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def attempt_for(app, path):
    att = app.extensions["quiz_store"].get(path.rsplit("/", 1)[1])
    return att


def test_many_learners_submit_at_once(server, bank, definition):
    srv, app, db = server
    n = 24

    def one(i: int) -> tuple[str, int]:
        c = QuizClient("127.0.0.1", srv.server_port)
        started = c.start(f"learner{i}")
        assert started.status == 303, started.body
        page = c.request("GET", started.location).body
        att = attempt_for(app, started.location)
        items = build_quiz(bank, definition, att.seed)
        form = right_form(items) if i % 2 == 0 else {}
        reply = c.submit(started.location, page, form)
        return att.token, reply.status

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(n)))
    assert all(status == 303 for _, status in results)
    con = sqlite3.connect(db)
    assert (
        con.execute("SELECT COUNT(*) FROM attempts WHERE submitted_at IS NOT NULL").fetchone()[0]
        == n
    )
    assert con.execute("SELECT COUNT(*) FROM item_results").fetchone()[0] == n * 10
    assert con.execute("SELECT SUM(passed) FROM attempts").fetchone()[0] == n // 2


def test_same_attempt_submitted_from_many_threads_counts_once(server, bank, definition):
    srv, app, db = server
    c = QuizClient("127.0.0.1", srv.server_port)
    started = c.start("racer")
    page = c.request("GET", started.location).body
    items = build_quiz(bank, definition, attempt_for(app, started.location).seed)
    barrier = threading.Barrier(8)

    def hit(_: int) -> int:
        me = QuizClient("127.0.0.1", srv.server_port)
        me.cookies = dict(c.cookies)
        barrier.wait()
        return me.submit(started.location, page, right_form(items)).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(hit, range(8)))
    assert statuses == [303] * 8
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM item_results").fetchone()[0] == 10
    assert con.execute("SELECT score FROM attempts").fetchall() == [(10.0,)]


def test_parallel_starts_cannot_exceed_the_limit(server):
    srv, _app, db = server

    def go(_: int) -> str:
        return QuizClient("127.0.0.1", srv.server_port).start("twin").location

    with ThreadPoolExecutor(max_workers=8) as pool:
        locations = set(pool.map(go, range(8)))
    assert len(locations) == 1, "parallel starts resume one attempt instead of opening several"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
