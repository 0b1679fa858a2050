"""The quiz on its own, for practice (``quiz serve``): the course server's quiz pages without a
course around them.

Why the same pages and the same store: one delivery of the quiz is tested, secured and kept; the
stand-alone case differs only in who takes it. Here nobody signs in: a visitor types a learner id
(anyone can type anyone's, and every page says so), the attempts are recorded as practice (never
in a gradebook) and show the right answers at once. Limits and the cooldown still hold, in the
store's transaction. The instructor signs in with the token ``quiz serve`` recorded in the store
(``roster.set_instructor_token``). Like ``grader serve``, it runs under waitress, never Werkzeug's
development server.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask, g, redirect, session, url_for
from flask_wtf.csrf import CSRFProtect

from grader.server import roster, serve
from grader.server.db import open_store
from grader.server.formatting import add_filters
from grader.server.quiz_attempts import QuizService
from grader.server.quiz_pages import register_quiz
from grader.server.responses import add_error_pages, add_security_headers
from quiz.bank import Bank, QuizDefinition

PRACTICE_NOTE = (
    "Practice mode: this stand-alone quiz has no sign-in, so anyone can type any learner id, and "
    "nothing here is graded (attempts are recorded as practice). The graded quiz runs signed in "
    "inside the course server (grader serve, at /quiz/)."
)
SECRET_KEY_ENV = "QUIZ_SECRET_KEY"


def create_practice_app(quiz: QuizService, *, secret_key: str | None = None) -> Flask:
    """The WSGI app of a practice quiz (``quiz`` must be a practice service)."""
    if not quiz.practice:
        raise ValueError("the stand-alone quiz serves practice attempts only")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get(SECRET_KEY_ENV) or secrets.token_hex(32),
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,  # an attempt's answers: a few KB
    )
    CSRFProtect(app)
    register_quiz(app, quiz)
    add_filters(app)
    add_error_pages(app, "64 KB")
    add_security_headers(app)

    @app.get("/")
    def index() -> Any:
        return redirect(url_for("quiz.home"))

    @app.post("/signout")
    def signout() -> Any:
        session.clear()
        return redirect(url_for("quiz.home"))

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "title": quiz.definition.title,
            "who": getattr(g, "identity", None),
            "home_url": url_for("quiz.home"),
            "signout_url": url_for("signout"),
            "practice_note": PRACTICE_NOTE,
        }

    return app


def serve_practice(
    store: str,
    bank: Bank,
    definition: QuizDefinition,
    host: str,
    port: int,
    instructor_token: str | None = None,
    attempt_limit: int | None = None,
    cooldown_seconds: float | None = None,
) -> None:
    """``quiz serve``: the practice app over ``store`` under waitress until Ctrl-C or SIGTERM.
    ValueError for a course server's database (its quiz is graded there)."""
    db = open_store(store)
    try:
        if roster.is_course(db):
            raise ValueError(
                f"{store} is a course server's database: its quiz is served, signed in and "
                "graded, by `grader serve` at /quiz/; give `quiz serve` a store of its own"
            )
        token = instructor_token or secrets.token_urlsafe(16)
        roster.set_instructor_token(db, token)  # what /quiz/instructor and `quiz show` check
        quiz = QuizService(
            db,
            bank,
            definition,
            practice=True,
            attempt_limit=attempt_limit,
            cooldown_seconds=cooldown_seconds,
        )
        server = serve.make_server(create_practice_app(quiz), host, port, 8, 64 * 1024)
        print(f"Serving the quiz on http://{host}:{server.effective_port}/", flush=True)
        print(PRACTICE_NOTE, flush=True)
        if not instructor_token:
            print(f"Instructor token (for /quiz/instructor): {token}", flush=True)
        serve.run_until_stopped(server)
    finally:
        db.dispose()
