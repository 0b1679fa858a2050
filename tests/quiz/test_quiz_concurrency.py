"""Concurrent submissions against a real server on 127.0.0.1 (``quiz serve``'s app under
waitress, the store in SQLite): nothing lost, nothing doubled, no limit exceeded."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from quiz_helpers import right_form
from waitress import wasyncore

from grader.server.db import open_store
from grader.server.practice import create_practice_app
from grader.server.quiz_attempts import QuizService
from grader.server.serve import make_server
from quiz.client import QuizClient
from quiz.variants import build_quiz


@pytest.fixture
def server(tmp_path, bank, definition):
    path = tmp_path / "quiz.db"
    db = open_store(path)
    quiz = QuizService(db, bank, definition, practice=True)
    srv = make_server(create_practice_app(quiz, secret_key="k"), "127.0.0.1", 0, 8, 64 * 1024)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield srv, path
    srv.task_dispatcher.shutdown()
    wasyncore.close_all(srv._map)
    thread.join(5)
    db.dispose()


def seed_of(path: str, db) -> int:
    attempt_id = int(path.rstrip("/").rsplit("/", 1)[1])
    return (
        sqlite3.connect(db)
        .execute("SELECT seed FROM quiz_attempts WHERE id = ?", (attempt_id,))
        .fetchone()[0]
    )


def blank(items) -> dict:
    return {f"q{it.number}": "" for it in items if not it.question.options}


def test_many_learners_submit_at_once(server, bank, definition):
    srv, db = server
    n = 24

    def one(i: int) -> int:
        c = QuizClient("127.0.0.1", srv.effective_port)
        started = c.start(f"learner{i}")
        assert started.status == 303, started.body
        page = c.request("GET", started.location).body
        items = build_quiz(bank, definition, seed_of(started.location, db))
        form = right_form(items) if i % 2 == 0 else blank(items)
        return c.submit(started.location, page, form).status

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(one, range(n)))
    assert statuses == [303] * n
    con = sqlite3.connect(db)
    rows = con.execute("SELECT passed, result FROM quiz_attempts WHERE submitted_at IS NOT NULL")
    rows = rows.fetchall()
    assert len(rows) == n
    assert all(len(json.loads(result)["questions"]) == 10 for _, result in rows)
    assert sum(passed for passed, _ in rows) == n // 2


def test_same_attempt_submitted_from_many_threads_counts_once(server, bank, definition):
    srv, db = server
    c = QuizClient("127.0.0.1", srv.effective_port)
    started = c.start("racer")
    page = c.request("GET", started.location).body
    items = build_quiz(bank, definition, seed_of(started.location, db))
    barrier = threading.Barrier(8)

    def hit(_: int) -> int:
        me = QuizClient("127.0.0.1", srv.effective_port)
        me.cookies = dict(c.cookies)
        barrier.wait()
        return me.submit(started.location, page, right_form(items)).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(hit, range(8)))
    assert statuses == [303] * 8
    con = sqlite3.connect(db)
    assert con.execute("SELECT score FROM quiz_attempts").fetchall() == [(10.0,)]
    events = con.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'quiz_submitted'")
    assert events.fetchone()[0] == 1


def test_parallel_starts_cannot_exceed_the_limit(server):
    srv, db = server

    def go(_: int) -> str:
        return QuizClient("127.0.0.1", srv.effective_port).start("twin").location

    with ThreadPoolExecutor(max_workers=8) as pool:
        locations = set(pool.map(go, range(8)))
    assert len(locations) == 1, "parallel starts resume one attempt instead of opening several"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM quiz_attempts").fetchone()[0] == 1
