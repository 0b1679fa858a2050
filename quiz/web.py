"""The quiz in a browser: a small Flask app with server-rendered forms that work without JavaScript.

This stand-alone app is for practice: it has no sign-in (a learner types an id, and anyone can
type anyone's), and every page says so. The graded quiz runs signed in inside the course server
(``grader/server/quiz_pages.py``), which reuses this package's bank, variants and scoring.

Trust lives on the server: the learner's variant is rebuilt from the seed stored in SQLite, the
page only ever carries prompts and option texts (never which option is right, never feedback or
explanations) until the attempt is submitted, and attempt limits and cooldown are checked in the
store's transaction. Every form carries a CSRF token (Flask-WTF); every bank and learner string
goes through Jinja's autoescaping. The attempt URL holds an unguessable token, so it is sent with
`Referrer-Policy: no-referrer` and never cached.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup, escape
from werkzeug.serving import BaseWSGIServer, make_server
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from quiz.bank import Bank, QuizDefinition, load_bank, load_definition
from quiz.model import TYPE_LABELS, Item
from quiz.scoring import LETTERS, score_quiz
from quiz.store import AttemptRefused, Store
from quiz.variants import build_quiz

MAX_TEXT_ANSWER = 200
NO_SIGN_IN = (
    "Practice mode: this stand-alone quiz has no sign-in, so anyone can type any learner id. "
    "The graded quiz runs signed in inside the course server (grader serve, at /quiz/)."
)
LEARNER_ID = r"^[\w.@+-]{1,64}$"


class StartForm(FlaskForm):
    learner = StringField(
        "Learner id",
        validators=[
            DataRequired(),
            Length(max=64),
            Regexp(LEARNER_ID, message="Use letters, digits and . _ @ + - only (at most 64)."),
        ],
    )


class InstructorForm(FlaskForm):
    token = PasswordField("Instructor token", validators=[DataRequired(), Length(max=200)])


@dataclass
class WebConfig:
    """Everything the app needs; the CLI fills it from flags and environment variables."""

    db: str | Path = "quiz.db"
    bank: Bank | None = None
    definition: QuizDefinition | None = None
    instructor_token: str | None = None
    secret_key: str | None = None
    attempt_limit: int | None = None  # overrides the definition
    cooldown_seconds: float | None = None  # overrides the definition
    clock: Callable[[], float] = field(default=time.time)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_wait(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


def inline_code(text: str) -> Markup:
    """Escape `text`, then show `backticked` spans as <code>; safe because escaping comes first."""
    escaped = str(escape(text))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in learner-controlled text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def public_view(item: Item) -> dict[str, Any]:
    """What an attempt page may show (here and in the course server's quiz): no correctness, no
    feedback, no explanation."""
    q = item.question
    return {
        "number": item.number,
        "type": q.type,
        "label": TYPE_LABELS[q.type],
        "prompt": q.prompt,
        "code": q.code,
        "points": q.points,
        "options": [(i, LETTERS[i], o.text) for i, o in enumerate(q.options)],
    }


def _read_form_answer(item: Item, form: Any) -> Any:
    """The submitted value for one item, in the form scoring expects (invalid values -> blank)."""
    q = item.question
    name = f"q{item.number}"
    if q.type == "multiple":
        picked = {int(v) for v in form.getlist(name) if v.isdigit() and int(v) < len(q.options)}
        return sorted(picked)
    value = form.get(name, "")
    if q.type in ("single", "code", "truefalse"):
        return int(value) if value.isdigit() and int(value) < len(q.options) else None
    return value[:MAX_TEXT_ANSWER]


def create_app(config: WebConfig | None = None) -> Flask:
    """Build the Flask app (a WSGI callable; `quiz serve` runs it on 127.0.0.1 by default)."""
    cfg = config or WebConfig()
    bank = cfg.bank or load_bank()
    definition = cfg.definition or load_definition(bank=bank)
    attempt_limit = cfg.attempt_limit or definition.attempt_limit
    cooldown = definition.cooldown_seconds if cfg.cooldown_seconds is None else cfg.cooldown_seconds
    store = Store(cfg.db, clock=cfg.clock)
    token = cfg.instructor_token

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=cfg.secret_key or os.environ.get("QUIZ_SECRET_KEY") or secrets.token_hex(32),
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    CSRFProtect(app)
    app.jinja_env.filters["inline_code"] = inline_code
    app.jinja_env.filters["points"] = lambda x: f"{x:.2f}".rstrip("0").rstrip(".")
    app.extensions["quiz_store"] = store

    @lru_cache(maxsize=1024)
    def items_for(seed: int) -> tuple[Item, ...]:
        return tuple(build_quiz(bank, definition, seed))

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"title": definition.title, "no_sign_in": NO_SIGN_IN}

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        msg = "The form expired or did not come from this site. Go back, reload the page and submit again."
        return render_template("message.html", heading="Form not accepted", message=msg), 400

    @app.errorhandler(404)
    def not_found(exc: Exception) -> tuple[str, int]:
        return render_template(
            "message.html", heading="Not found", message="There is no such page."
        ), 404

    @app.route("/", methods=["GET", "POST"])
    def index() -> Any:
        form = StartForm()
        if form.validate_on_submit():
            learner = form.learner.data.strip()
            try:
                attempt = store.start_attempt(
                    learner, attempt_limit, cooldown, bank=bank.fingerprint
                )
            except AttemptRefused as exc:
                status = 429 if exc.retry_at else 403
                wait = fmt_wait(exc.retry_at - cfg.clock()) if exc.retry_at else ""
                return (
                    render_template(
                        "refused.html",
                        learner=learner,
                        reason=str(exc),
                        retry_at=fmt_time(exc.retry_at),
                        wait=wait,
                    ),
                    status,
                )
            session["learner"] = learner
            return redirect(url_for("attempt", token=attempt.token), 303)
        return render_template(
            "index.html",
            form=form,
            definition=definition,
            attempt_limit=attempt_limit,
            cooldown=fmt_wait(cooldown),
        )

    @app.route("/attempt/<token>", methods=["GET", "POST"])
    def attempt(token: str) -> Any:
        att = store.get(token)
        if att is None:
            abort(404)
        if att.submitted:
            return redirect(url_for("result", token=token), 303)
        items = items_for(att.seed)
        if request.method == "POST":
            answers = {it.qid: _read_form_answer(it, request.form) for it in items}
            res = score_quiz(items, answers, att.seed, definition.pass_mark)
            store.submit(token, res)  # False if a parallel submit won: its result stands
            return redirect(url_for("result", token=token), 303)
        return render_template(
            "attempt.html",
            attempt=att,
            items=[public_view(it) for it in items],
            definition=definition,
        )

    @app.route("/result/<token>")
    def result(token: str) -> Any:
        att = store.get(token)
        if att is None:
            abort(404)
        if not att.submitted or att.result is None:
            return redirect(url_for("attempt", token=token), 303)
        items = {it.number: it for it in items_for(att.seed)}
        nxt = store.next_allowed(att.learner, attempt_limit, cooldown)
        return render_template(
            "result.html",
            attempt=att,
            res=att.result,
            prompts={n: it.question.prompt for n, it in items.items()},
            submitted=fmt_time(att.submitted_at),
            next_at=fmt_time(nxt) if nxt is not None else None,
            attempts_left=max(0, attempt_limit - att.number),
        )

    # ------------------------------------------------------------------------------ instructor

    def instructor_ok() -> bool:
        if not token:
            abort(404)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), token.encode()):
            return True
        return (
            session.get("instructor")
            == hmac.new(token.encode(), b"instructor", "sha256").hexdigest()
        )

    @app.route("/instructor", methods=["GET", "POST"])
    def instructor() -> Any:
        if not token:
            abort(404)
        form = InstructorForm()
        if request.method == "POST":
            if form.validate_on_submit() and hmac.compare_digest(
                form.token.data.encode(), token.encode()
            ):
                session["instructor"] = hmac.new(
                    token.encode(), b"instructor", "sha256"
                ).hexdigest()
                return redirect(url_for("instructor"), 303)
            return render_template("instructor_login.html", form=form, error="Wrong token."), 403
        if not instructor_ok():
            return render_template("instructor_login.html", form=form, error=None)
        stats = store.question_stats()
        by_id = {q.id: q for q in bank.questions}
        for s in stats:
            q = by_id.get(s["question"])
            s["topic"] = q.topic if q else "?"
            s["type"] = q.type if q else "?"
        return render_template(
            "instructor.html",
            summary=store.summary(),
            stats=stats,
            attempts=store.attempts(),
            fmt_time=fmt_time,
        )

    @app.route("/instructor/logout", methods=["POST"])
    def instructor_logout() -> Any:
        session.pop("instructor", None)
        return redirect(url_for("instructor"), 303)

    def csv_response(rows: list[list[Any]], name: str) -> Response:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
        return Response(
            buf.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.route("/instructor/attempts.csv")
    def attempts_csv() -> Any:
        if not instructor_ok():
            abort(403)
        qids = [q.id for q in bank.questions]
        rows: list[list[Any]] = [
            [
                "learner",
                "attempt",
                "seed",
                "started_utc",
                "submitted_utc",
                "score",
                "max_score",
                "percent",
                "passed",
                *qids,
            ]
        ]
        for a in store.attempts():
            per_q = {q["id"]: q["score"] for q in (a.result or {}).get("questions", [])}
            percent = (
                round(100 * a.score / a.max_score, 2) if a.score is not None and a.max_score else ""
            )
            rows.append(
                [
                    a.learner,
                    a.number,
                    a.seed,
                    fmt_time(a.started_at),
                    fmt_time(a.submitted_at),
                    "" if a.score is None else round(a.score, 4),
                    "" if a.max_score is None else a.max_score,
                    percent,
                    "" if a.passed is None else int(a.passed),
                    *[per_q.get(q, "") for q in qids],
                ]
            )
        return csv_response(rows, "quiz-attempts.csv")

    @app.route("/instructor/questions.csv")
    def questions_csv() -> Any:
        if not instructor_ok():
            abort(403)
        rows: list[list[Any]] = [["question", "answered", "difficulty", "fully_correct"]]
        rows += [
            [s["question"], s["answered"], round(s["difficulty"], 4), s["fully_correct"]]
            for s in store.question_stats()
        ]
        return csv_response(rows, "quiz-questions.csv")

    return app


def make_server_for(app: Flask, host: str = "127.0.0.1", port: int = 8000) -> BaseWSGIServer:
    """A threaded WSGI server (port 0 picks a free port; read it from `.server_port`)."""
    return make_server(host, port, app, threaded=True)
