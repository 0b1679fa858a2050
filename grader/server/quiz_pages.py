"""The graded quiz's pages in the course server (``/quiz``), for signed-in learners only.

Why a blueprint over the quiz package: the stand-alone ``quiz serve`` asks for a typed learner id,
so anyone could open, use up or harvest anyone's attempts; here the learner is the one their
signed session names, attempts live in the server's database (``quiz_attempts``), and every
lookup of an attempt filters on that learner, so another learner's attempt id is a 404 like a
missing one. The bank, the seeded variants, the scoring and quiz.yaml's rules are the quiz
package's; this module only reads forms and renders pages.

Forms are read strictly: a choice must be one of the option numbers the page offered, in ASCII
digits (``int('١')`` is 1 in Python, so ``str.isdigit`` is not enough); a text field the page always
sends must be present; a field for a question not in the attempt is refused. Each is a 400 with a
message. An unanswered radio or checkbox question sends nothing, which is a blank answer.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from grader.server import auth
from grader.server.quiz_attempts import TIME_UP, QuizRefused, QuizService, course_quiz
from grader.server.roster import Identity
from quiz.model import Item
from quiz.web import fmt_wait, inline_code, public_view

MAX_TEXT_ANSWER = 200
CHOICE = re.compile(r"[0-9]{1,2}", re.ASCII)
FORM_FIELDS = frozenset({"csrf_token", "submit"})


quiz_pages = Blueprint("quiz", __name__, url_prefix="/quiz")


class QuizForm(FlaskForm):
    """A form with only its CSRF token (start an attempt, release the answers)."""


class BadAnswer(ValueError):
    """A submitted form that no page of ours sends: refused with a 400 and this message."""


def read_answers(items: tuple[Item, ...], form: MultiDict[str, str]) -> dict[str, Any]:
    """The answers of a submitted attempt form, keyed by question id, as scoring expects."""
    names = {f"q{item.number}": item for item in items}
    unknown = sorted(set(form.keys()) - set(names) - FORM_FIELDS)
    if unknown:
        raise BadAnswer(f"the form names question(s) not in this attempt: {', '.join(unknown)}")
    answers: dict[str, Any] = {}
    for name, item in names.items():
        q = item.question
        values = form.getlist(name)
        if q.options:
            picked = []
            for value in values:
                if not CHOICE.fullmatch(value) or int(value) >= len(q.options):
                    raise BadAnswer(
                        f"question {item.number}: {value[:20]!r} is not one of its options"
                    )
                picked.append(int(value))
            if q.type != "multiple" and len(picked) > 1:
                raise BadAnswer(f"question {item.number} takes one choice, got {len(picked)}")
            if q.type == "multiple":
                answers[item.qid] = sorted(set(picked))
            else:
                answers[item.qid] = picked[0] if picked else None
        else:
            if len(values) != 1:
                raise BadAnswer(
                    f"question {item.number}: the answer field is missing; reload the page"
                )
            if len(values[0]) > MAX_TEXT_ANSWER:
                raise BadAnswer(f"question {item.number}: at most {MAX_TEXT_ANSWER} characters")
            answers[item.qid] = values[0]
    return answers


@quiz_pages.after_request
def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"  # attempts and answers are personal
    return response


def service() -> QuizService:
    found = current_app.extensions.get("course_quiz")
    if found is None:
        abort(404)
    return found


def _server() -> Any:
    return current_app.extensions["course_server"]


def _identity() -> Identity | None:
    identity = auth.session_identity(_server().db)
    g.identity = identity
    return identity


def _message(text: str, status: int, heading: str = "") -> tuple[str, int]:
    return render_template("message.html", heading=heading, text=text), status


def _fmt(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else ""


def _signed_in() -> Identity:
    identity = _identity()
    if identity is None:
        abort(404)
    return identity


@quiz_pages.get("/")
def home() -> Any:
    quiz = service()
    identity = _identity()
    if identity is None:
        return _message(
            "The graded quiz is for signed-in learners: open your personal sign-in link (ask "
            "your instructor if you have none), then come back here.",
            401,
            "Sign in to take the quiz",
        )
    if identity.is_instructor:
        return redirect(url_for("quiz.instructor"))
    assert identity.learner_id is not None
    attempts = quiz.attempts_of(identity.learner_id)
    nxt = quiz.next_start(attempts)
    now = quiz.clock()
    return render_template(
        "quiz_home.html",
        quiz=quiz,
        attempts=attempts,
        open_attempt=next((a for a in attempts if a.submitted_at is None), None),
        can_start=nxt is not None and nxt <= now,
        next_start=_fmt(nxt) if nxt and nxt > now else "",
        cooldown=fmt_wait(quiz.policy.cooldown.total_seconds()),
        form=QuizForm(),
    )


@quiz_pages.post("/start")
def start() -> Any:
    quiz = service()
    identity = _signed_in()
    if identity.learner_id is None:
        abort(404)
    try:
        attempt = quiz.start(identity.learner_id)
    except QuizRefused as refused:
        when = f" You may start again from {_fmt(refused.retry_at)}." if refused.retry_at else ""
        return _message(refused.message + when, refused.status, "No new attempt now")
    return redirect(url_for("quiz.attempt", attempt_id=attempt.id), 303)


def _owned(attempt_id: int) -> tuple[QuizService, Identity, Any]:
    quiz = service()
    identity = _signed_in()
    attempt = quiz.attempt_for(identity, attempt_id)
    if attempt is None:
        abort(404)
    return quiz, identity, attempt


@quiz_pages.get("/attempts/<int:attempt_id>")
def attempt(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if att.submitted_at is not None or identity.is_instructor:
        return redirect(url_for("quiz.result", attempt_id=att.id), 303)
    return render_template(
        "quiz_attempt.html",
        attempt=att,
        deadline=_fmt(att.deadline_at),
        items=[public_view(item) for item in quiz.items(att.seed)],
        quiz=quiz,
    )


@quiz_pages.post("/attempts/<int:attempt_id>")
def submit(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if identity.is_instructor:
        abort(404)
    if att.expired:  # closed at its time limit (perhaps just now, by _owned): answers refused
        return _message(TIME_UP, 409, "Time is up")
    if att.submitted_at is not None:
        return redirect(url_for("quiz.result", attempt_id=att.id), 303)
    try:
        answers = read_answers(quiz.items(att.seed), request.form)
    except BadAnswer as bad:
        return _message(
            f"Your answers were not accepted: {bad}. Go back, check them and submit again.",
            400,
            "Answers not accepted",
        )
    try:
        quiz.submit(att, answers)
    except QuizRefused as refused:
        return _message(refused.message, refused.status, "Time is up")
    return redirect(url_for("quiz.result", attempt_id=att.id), 303)


@quiz_pages.get("/attempts/<int:attempt_id>/result")
def result(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if att.submitted_at is None or att.result is None:
        if identity.is_instructor:
            return _message("This attempt is still open.", 200, "Attempt open")
        return redirect(url_for("quiz.attempt", attempt_id=att.id), 303)
    items = {item.number: item for item in quiz.items(att.seed)}
    return render_template(
        "quiz_result.html",
        attempt=att,
        res=att.result,
        prompts={n: item.question.prompt for n, item in items.items()},
        reveal=quiz.answers_visible(identity, att.learner_id),
        submitted=_fmt(att.submitted_at),
        quiz=quiz,
    )


@quiz_pages.get("/instructor")
def instructor() -> Any:
    quiz = service()
    identity = _signed_in()
    if not identity.is_instructor:
        abort(404)
    return render_template(
        "quiz_instructor.html",
        attempts=quiz.all_attempts(),
        released=_fmt(quiz.released_at()),
        quiz=quiz,
        form=QuizForm(),
        fmt=_fmt,
    )


@quiz_pages.post("/instructor/release")
def release() -> Any:
    quiz = service()
    identity = _signed_in()
    if not identity.is_instructor:
        abort(404)
    quiz.release()
    flash("The correct answers and explanations are now shown to every learner.")
    return redirect(url_for("quiz.instructor"), 303)


def register_quiz(app: Flask, quiz: QuizService | None = None) -> None:
    """Serve the graded quiz of the course's assignment (its ``quiz/`` folder) under /quiz."""
    server = app.extensions["course_server"]
    if quiz is None:
        found = course_quiz(server.settings.chosen_assignment().folder)
        if found is not None:
            bank, definition = found
            quiz = QuizService(
                server.db,
                bank,
                definition,
                server.settings.quiz_time_limit_minutes,
                clock=lambda: server.clock(),
            )
    if quiz is not None:
        app.extensions["course_quiz"] = quiz
    app.jinja_env.filters.setdefault("inline_code", inline_code)
    app.jinja_env.filters.setdefault("points", lambda x: f"{x:.2f}".rstrip("0").rstrip("."))
    app.register_blueprint(quiz_pages)
