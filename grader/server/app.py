"""The course server's web app: :func:`create_app` configures Flask and registers the blueprints,
as Flask's own examples (flaskr) do.

The blueprints: ``pages`` (the learner's pages: sign-in, upload, submissions, reports, bundle),
``api`` (the JSON API, Bearer tokens), ``instructor`` (the instructor's pages), ``live`` (a
pending grading's status for the page's script) and ``quiz_pages`` (the quiz, when the course's
assignment has one). What they share is ``state.ServerState``, kept in ``app.extensions``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, g, url_for
from flask_wtf.csrf import CSRFProtect

from grader.server import auth
from grader.server.api import api
from grader.server.db import Database
from grader.server.formatting import add_filters
from grader.server.instructor import instructor
from grader.server.live import live
from grader.server.lti import register as register_lti
from grader.server.models import utcnow
from grader.server.pages import learner
from grader.server.quiz_pages import register_quiz
from grader.server.responses import add_error_pages, add_security_headers
from grader.server.settings import Settings
from grader.server.similarity_page import similarity_page
from grader.server.state import EXTENSION, ServerState, build_bundle


def create_app(
    data_dir: Path,
    settings: Settings,
    db: Database,
    *,
    dispatcher: Any = None,
    clock: Callable[[], dt.datetime] = utcnow,
    bundle: Callable[..., None] = build_bundle,
    secret_key: str | None = None,
) -> Flask:
    """The WSGI app of a course (``grader serve`` runs it under waitress)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or auth.secret_key(data_dir),
        SESSION_COOKIE_NAME="objloc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE=settings.session_samesite,  # None: pages in an LMS iframe
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_PARTITIONED=settings.session_samesite == "None",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=120),  # a course's length
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session: a tab left open a day still submits
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,  # the form's own fields
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes + 64 * 1024,
    )
    app.extensions[EXTENSION] = ServerState(
        Path(data_dir).resolve(),  # Flask's send_file reads a relative path from its package
        settings,
        db,
        dispatcher=dispatcher,
        clock=clock,
        bundle=bundle,
        signins=auth.RateLimiter(settings.signin_per_minute),
        uploads=auth.RateLimiter(max(1, settings.uploads_per_minute)),
    )
    csrf = CSRFProtect(app)
    csrf.exempt(api)  # Bearer tokens, no cookie
    csrf.exempt(instructor)  # checks the token itself, after its 404 gate (instructor.py)
    for blueprint in (learner, api, instructor, live, similarity_page):
        app.register_blueprint(blueprint)
    register_quiz(app)  # the course's quiz under /quiz, when its assignment has one
    register_lti(app)  # LTI 1.3 under /lti (and the score poster when a dispatcher runs)
    add_filters(app)
    add_error_pages(app, f"{settings.max_upload_mb:g} MB")
    add_security_headers(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "title": settings.title,
            "who": getattr(g, "identity", None),
            "home_url": url_for("learner.index"),
            "signout_url": url_for("learner.signout"),
        }

    return app
