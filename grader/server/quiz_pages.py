"""The quiz's pages (``/quiz``): the one web delivery of the quiz, graded or practice.

On a course server each assignment whose folder has a quiz bank has its graded quiz: the
default assignment's at ``/quiz/``, another's at ``/quiz/?assignment=NAME`` (its start, release
and CSV routes take the same query); an attempt's pages find their quiz from the attempt.

Graded (the course server): only a signed-in learner takes it; the learner is the one their
signed session names, attempts live in the server's database (``quiz_attempts``), and every
lookup of an attempt filters on that learner, so another learner's attempt id is a 404 like a
missing one. Practice (``quiz serve``, ``practice.create_practice_app``): no sign-in, a visitor
types a learner id (anyone can type anyone's, and every page says so), nothing is graded, and the
correct answers show at once. The bank, the seeded variants, the scoring and quiz.yaml's rules are
the quiz package's; this module reads forms (``quiz.answers.read_form``, strict: 400 with a
message for anything no page sends) and renders pages.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from grader.server import auth, quiz_grants, quiz_stats
from grader.server.formatting import fmt_wait, fmt_when
from grader.server.models import QuizAttempt, TokenKind
from grader.server.quiz_attempts import TIME_UP, QuizRefused, QuizService
from grader.server.responses import message
from grader.server.roster import Identity, RosterError, enrol, identify
from grader.server.state import EXTENSION as STATE
from grader.server.state import QUIZ_EXTENSION as EXTENSION
from grader.server.state import QUIZZES_EXTENSION as QUIZZES
from quiz.answers import LETTERS, BadAnswer, read_form
from quiz.model import TYPE_LABELS, Item
from quiz.source import quiz_of

PRACTICE_LEARNER = "practice_learner"  # the session key of the id a practice visitor typed
LEARNER_ID = r"^[\w.@+-]{1,64}$"
CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; script-src 'self'; "
CSP += "form-action 'self'; "
CSP += "frame-ancestors 'none'; base-uri 'none'"

quiz_pages = Blueprint("quiz", __name__, url_prefix="/quiz")


class QuizForm(FlaskForm):
    """A form with only its CSRF token (start an attempt, release the answers)."""


class PracticeForm(FlaskForm):
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


def public_view(item: Item) -> dict[str, Any]:
    """What an attempt page may show: no correctness, no feedback, no explanation."""
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


@quiz_pages.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # attempts and answers are personal
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


def services() -> dict[str, QuizService]:
    """Every quiz of the app by its assignment's name (the default one's first)."""
    return current_app.extensions.get(QUIZZES, {})


def service() -> QuizService:
    """The quiz the request's ``assignment`` query names (none: the default assignment's)."""
    name = request.args.get("assignment")
    found = services().get(name) if name else current_app.extensions.get(EXTENSION)
    if found is None:
        abort(404)
    return found


def viewer() -> Identity | None:
    """Who is asking: the signed-in session (or, for a GET, a Bearer token), else in practice
    the learner id the visitor typed."""
    quiz = service()
    identity = auth.session_identity(quiz.db)
    if identity is None and request.method == "GET" and "Authorization" in request.headers:
        identity = auth.bearer_identity(quiz.db)
    if identity is None and quiz.practice and isinstance(session.get(PRACTICE_LEARNER), str):
        identity = Identity(0, TokenKind.LEARNER, session[PRACTICE_LEARNER])
    g.identity = identity
    return identity


def _signed_in() -> Identity:
    identity = viewer()
    if identity is None:
        abort(404)
    return identity


def _instructor() -> Identity:
    identity = _signed_in()
    if not identity.is_instructor:
        abort(404)
    return identity


def _home_page(quiz: QuizService, identity: Identity | None, form: PracticeForm | None) -> str:
    attempts = quiz.attempts_of(identity.learner_id) if identity and identity.learner_id else []
    now = quiz.clock()
    granted = bool(identity and identity.learner_id) and any(
        grant.attempt_id is None
        for grant in quiz_grants.grants_of(quiz.db, identity.learner_id or "", quiz.names)
    )
    nxt = quiz.policy.next_start(attempts, now, granted)
    return render_template(
        "quiz_home.html",
        quiz=quiz,
        attempts=attempts,
        open_attempt=next((a for a in attempts if a.submitted_at is None), None),
        can_start=nxt is not None and nxt <= now,
        next_start=fmt_when(nxt) if nxt and nxt > now else "",
        cooldown=fmt_wait(quiz.policy.cooldown.total_seconds()),
        form=QuizForm(),
        practice_form=form,
    )


@quiz_pages.get("/")
def home() -> Any:
    quiz = service()
    identity = viewer()
    if quiz.practice and (identity is None or not identity.is_instructor):
        learner = identity.learner_id if identity else ""
        return _home_page(quiz, identity, PracticeForm(learner=learner))
    if identity is None:
        return message(
            "The graded quiz is for signed-in learners: open your personal sign-in link (ask "
            "your instructor if you have none), then come back here.",
            401,
            "Sign in to take the quiz",
        )
    if identity.is_instructor:
        return redirect(url_for("quiz.instructor", assignment=quiz.link))
    return _home_page(quiz, identity, None)


def _practice_learner(quiz: QuizService) -> Identity | Any:
    """The practice visitor's id from the start form, remembered in the session; or the page
    again with the form's errors."""
    form = PracticeForm()
    if not form.validate_on_submit():
        return _home_page(quiz, None, form)
    try:
        learner_id = enrol(quiz.db, form.learner.data.strip(), "quiz serve")
    except RosterError as error:
        form.learner.errors = [str(error)]
        return _home_page(quiz, None, form)
    session[PRACTICE_LEARNER] = learner_id
    return Identity(0, TokenKind.LEARNER, learner_id)


@quiz_pages.post("/start")
def start() -> Any:
    quiz = service()
    identity = viewer()
    if quiz.practice and "learner" in request.form:
        identity = _practice_learner(quiz)
        if not isinstance(identity, Identity):
            return identity
    if identity is None or identity.learner_id is None:
        abort(404)
    try:
        attempt = quiz.start(identity.learner_id)
    except QuizRefused as refused:
        when = ""
        if refused.retry_at:
            wait = fmt_wait((refused.retry_at - quiz.clock()).total_seconds())
            when = f" You may start again from {fmt_when(refused.retry_at)} (in {wait})."
        return message(refused.message + when, refused.status, "No new attempt now", "refused")
    return redirect(url_for("quiz.attempt", attempt_id=attempt.id), 303)


def _owned(attempt_id: int) -> tuple[QuizService, Identity, QuizAttempt]:
    """The attempt, the viewer's own (or any, to the instructor), with the quiz it is of."""
    service()  # 404 without a quiz
    identity = _signed_in()
    for quiz in services().values() or [service()]:
        attempt = quiz.attempt_for(identity, attempt_id)
        if attempt is not None:
            return quiz, identity, attempt
    abort(404)


@quiz_pages.get("/attempts/<int:attempt_id>")
def attempt(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if att.submitted_at is not None or identity.is_instructor:
        return redirect(url_for("quiz.result", attempt_id=att.id), 303)
    return render_template(
        "quiz_attempt.html",
        attempt=att,
        deadline=fmt_when(att.deadline_at),
        items=[public_view(item) for item in quiz.items(att.seed)],
        quiz=quiz,
    )


@quiz_pages.post("/attempts/<int:attempt_id>")
def submit(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if identity.is_instructor:
        abort(404)
    if att.expired:  # closed at its time limit (perhaps just now, by _owned): answers refused
        return message(TIME_UP, 409, "Time is up")
    if att.submitted_at is not None:
        return redirect(url_for("quiz.result", attempt_id=att.id), 303)
    try:
        answers = read_form(quiz.items(att.seed), request.form)
    except BadAnswer as bad:
        return message(
            f"Your answers were not accepted: {bad}. Go back, check them and submit again.",
            400,
            "Answers not accepted",
        )
    try:
        quiz.submit(att, answers)
    except QuizRefused as refused:
        return message(refused.message, refused.status, "Time is up")
    return redirect(url_for("quiz.result", attempt_id=att.id), 303)


@quiz_pages.get("/attempts/<int:attempt_id>/result")
def result(attempt_id: int) -> Any:
    quiz, identity, att = _owned(attempt_id)
    if att.submitted_at is None or att.result is None:
        if identity.is_instructor:
            return message("This attempt is still open.", 200, "Attempt open")
        return redirect(url_for("quiz.attempt", attempt_id=att.id), 303)
    items = {item.number: item for item in quiz.items(att.seed)}
    return render_template(
        "quiz_result.html",
        attempt=att,
        res=att.result,
        prompts={n: item.question.prompt for n, item in items.items()},
        reveal=quiz.answers_visible(identity, att.learner_id),
        submitted=fmt_when(att.submitted_at),
        quiz=quiz,
    )


def _sign_in_instructor(quiz: QuizService) -> Any:
    """Practice mode's instructor sign-in: the token ``quiz serve`` recorded in the store."""
    form = InstructorForm()
    identity = identify(quiz.db, form.token.data or "") if form.validate_on_submit() else None
    if identity is None or not identity.is_instructor:
        page = render_template(
            "quiz_instructor_login.html", form=form, error="Wrong token.", quiz=quiz
        )
        return page, 403
    auth.sign_in(identity, quiz.db)
    return redirect(url_for("quiz.instructor", assignment=quiz.link), 303)


@quiz_pages.route("/instructor", methods=["GET", "POST"])
def instructor() -> Any:
    quiz = service()
    identity = viewer()
    if quiz.practice and (identity is None or not identity.is_instructor):
        if request.method == "POST":
            return _sign_in_instructor(quiz)
        return render_template(
            "quiz_instructor_login.html", form=InstructorForm(), error=None, quiz=quiz
        )
    if request.method == "POST" or identity is None or not identity.is_instructor:
        abort(404)
    attempts = quiz.all_attempts()
    return render_template(
        "quiz_instructor.html",
        attempts=attempts,
        summary=quiz_stats.summary(attempts),
        stats=quiz_stats.question_stats(attempts, quiz.bank),
        released=fmt_when(quiz.released_at()),
        quiz=quiz,
        form=QuizForm(),
    )


@quiz_pages.post("/instructor/release")
def release() -> Any:
    quiz = service()
    _instructor()
    if quiz.practice:  # practice shows the answers at once: nothing to release
        abort(404)
    quiz.release()
    flash("The correct answers and explanations are now shown to every learner.")
    return redirect(url_for("quiz.instructor", assignment=quiz.link), 303)


def _csv(text: str, name: str) -> Response:
    return Response(
        text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@quiz_pages.get("/instructor/attempts.csv")
def attempts_csv() -> Any:
    quiz = service()
    _instructor()
    return _csv(quiz_stats.attempts_csv(quiz.all_attempts(), quiz.bank), "quiz-attempts.csv")


@quiz_pages.get("/instructor/questions.csv")
def questions_csv() -> Any:
    quiz = service()
    _instructor()
    stats = quiz_stats.question_stats(quiz.all_attempts(), quiz.bank)
    return _csv(quiz_stats.questions_csv(stats), "quiz-questions.csv")


def course_quizzes(server: Any) -> dict[str, QuizService]:
    """The graded quiz of each of the course's assignments that has one, by its name."""
    found = {}
    for index, policy in enumerate(server.settings.course_assignments()):
        source = quiz_of(policy.chosen())
        if source is not None:
            bank, definition = source.load()
            found[policy.name] = QuizService(
                server.db,
                bank,
                definition,
                server.settings.quiz_time_limit_minutes,
                clock=lambda: server.clock(),
                assignment=policy.name,
                default=index == 0,
            )
    return found


def register_quiz(app: Flask, quiz: QuizService | None = None) -> None:
    """Serve ``quiz`` (default: the graded quiz of each of the course's assignments that has
    one) under /quiz: the default assignment's at /quiz/, another's with ``?assignment=NAME``."""
    quizzes = course_quizzes(app.extensions[STATE]) if quiz is None else {quiz.assignment: quiz}
    if quizzes:
        app.extensions[QUIZZES] = quizzes
        app.extensions[EXTENSION] = next(iter(quizzes.values()))
    app.register_blueprint(quiz_pages)
