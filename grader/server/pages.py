"""The learner's pages: sign in with a link, the home page (bundle, upload, submissions), a
submission's page and its report, the bundle download, sign out, and the help page on
automating the course (the API).

Why server-rendered forms: the pages must work without JavaScript and on a phone; a page with a
grading in progress updates itself (``live``; without JavaScript a ``<noscript>`` refresh reloads
it). Every form carries a CSRF token (Flask-WTF). A learner reaches only their own rows: each
lookup filters on the signed-in learner in ``views``, and anything else is a 404, whether it
exists or not.

Why a sign-in link does not simply replace a session: a page elsewhere could make the browser
open someone else's link (login CSRF) and the learner would then upload their work into that
account without noticing. A link opened while another person is signed in asks first, with a
form (a POST with the session's CSRF token) that a third-party page cannot send.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from grader.server import auth, exports, extensions, totals, views
from grader.server.models import AuditEvent, Extension
from grader.server.reports import report_response
from grader.server.responses import body_too_large, message
from grader.server.roster import Identity, identify
from grader.server.settings import AssignmentPolicy
from grader.server.state import QUIZZES_EXTENSION, current
from grader.server.submissions import Refused, too_large

learner = Blueprint("learner", __name__)


class UploadForm(FlaskForm):
    notebook = FileField("Your notebook (.ipynb)", validators=[FileRequired()])


class ActionForm(FlaskForm):
    """A form with only its CSRF token: sign out, regrade, release."""


def signed_in() -> Identity:
    """The signed-in learner or instructor; 404 for anyone else."""
    identity = auth.session_identity(current().db)
    if identity is None:
        abort(404)
    g.identity = identity
    return identity


def _learner() -> Identity:
    identity = signed_in()
    if identity.is_instructor:
        abort(404)
    return identity


@dataclass(frozen=True)
class AssignmentHome:
    """One assignment on a learner's home: its policy as it applies to them, their
    submissions of it and its part of their total."""

    policy: AssignmentPolicy
    title: str
    submissions: list[views.SubmissionView]
    extension: Extension | None
    part: totals.Part | None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def deadline(self) -> dt.datetime | None:
        """Their deadline (an extension's when it is later)."""
        return self.policy.deadline_for(self.extension.deadline if self.extension else None)

    @property
    def per_day(self) -> int:
        extra = self.extension.extra_per_day if self.extension else 0
        return self.policy.submissions_per_day + extra


def assignment_of(name: str | None) -> AssignmentPolicy:
    """The course's assignment a form or a query names (none: the default); 404 otherwise."""
    policy = current().settings.policy_of(name)
    if policy is None:
        abort(404)
    return policy


def _home(identity: Identity, refused: Refused | None = None, refused_for: str = "") -> Any:
    assert identity.learner_id is not None
    server = current()
    settings = server.settings
    rows = views.submissions_of(server.db, server.data_dir, settings, identity.learner_id)
    total = exports.learner_total(
        server.db, server.data_dir, settings, identity.learner_id, totals.quiz_maximum(current_app)
    )
    granted = extensions.extensions_of(server.db, settings, identity.learner_id)
    policies = settings.course_assignments()
    quizzes = current_app.extensions.get(QUIZZES_EXTENSION, {})
    homes = [
        AssignmentHome(
            policy,
            settings.title if len(policies) == 1 else policy.chosen().title,
            [row for row in rows if row.assignment == policy.name],
            granted.get(policy.name),
            total.part(f"{totals.ASSIGNMENT}:{policy.name}"),
        )
        for policy in policies
    ]
    page = render_template(
        "home.html",
        name=views.learner_name(server.db, identity.learner_id),
        assignments=homes,
        submissions=rows,
        form=UploadForm(formdata=None),  # a blank form: never reads (maybe refused) request data
        action=ActionForm(formdata=None),
        refused=refused,
        refused_for=refused_for or policies[0].name,
        refresh=any(row.pending for row in rows),
        settings=settings,
        quizzes=[  # each assignment's quiz: its title and its page's assignment query value
            (home.title, quizzes[home.policy.name].link)
            for home in homes
            if home.policy.name in quizzes
        ],
        total=total,
    )
    return (page, refused.status) if refused else page


@learner.get("/")
def index() -> Any:
    identity = auth.session_identity(current().db)
    g.identity = identity
    if identity is None:
        return render_template("welcome.html")
    if identity.is_instructor:
        return redirect(url_for("instructor.gradebook"))
    return _home(identity)


def _who(identity: Identity) -> str:
    if identity.learner_id is None:
        return "the instructor"
    return views.learner_name(current().db, identity.learner_id)


def _link_identity(token: str) -> Identity | Any:
    """The identity of a sign-in link, or the page that refuses it (rate limit, not valid)."""
    server = current()
    if not server.signins.allow(request.remote_addr or "?"):
        return message("Too many sign-in attempts; wait a minute and try again.", 429)
    identity = identify(server.db, token)
    if identity is None:
        return message(
            "This sign-in link is not valid: it was mistyped, or replaced by a newer one. "
            "Ask your instructor for a new link.",
            404,
            "Sign-in link not valid",
        )
    return identity


def _sign_in(identity: Identity) -> Any:
    server = current()
    auth.sign_in(identity, server.db)
    with server.db.write() as s:
        s.add(AuditEvent(actor=identity.learner_id or "instructor", action="signed_in"))
    return redirect(url_for("learner.index"))


@learner.get("/signin/<token>")
def signin(token: str) -> Any:
    identity = _link_identity(token)
    if not isinstance(identity, Identity):
        return identity
    now = auth.session_identity(current().db)
    if now is None or (now.kind, now.learner_id) == (identity.kind, identity.learner_id):
        return _sign_in(identity)
    g.identity = now
    return render_template(
        "signin_confirm.html",
        current=_who(now),
        other=_who(identity),
        action=ActionForm(),
        token=token,
    )


@learner.post("/signin/<token>")
def signin_confirmed(token: str) -> Any:
    """The confirmation's form: the link replaces the session the browser had."""
    identity = _link_identity(token)
    return _sign_in(identity) if isinstance(identity, Identity) else identity


@learner.post("/signout")
def signout() -> Any:
    auth.sign_out(current().db)
    flash("You are signed out. Your sign-in link signs you in again.")
    return redirect(url_for("learner.index"))


@learner.post("/submit")
def submit() -> Any:
    identity = _learner()
    form = UploadForm()
    policy = assignment_of(request.args.get("assignment"))  # the form's action names it
    if not form.validate_on_submit():
        return _home(identity, Refused("choose your .ipynb notebook file first"), policy.name)
    upload = form.notebook.data
    try:
        accepted = current().upload(identity, upload.read(), upload.filename or "", policy)
    except Refused as refused:
        return _home(identity, refused, policy.name)
    flash(f"Submission {accepted.number} received and queued for grading.")
    return redirect(url_for("learner.submission_page", submission_id=accepted.id))


@learner.errorhandler(413)
def _too_large(_error: Any) -> Any:
    """An upload over the cap (refused from its headers, unread): the learner's page says so."""
    identity = auth.session_identity(current().db)
    if request.endpoint != "learner.submit" or identity is None or identity.is_instructor:
        return body_too_large("")
    g.identity = identity
    refused = Refused(too_large(request.content_length or 0, current().settings), 413)
    return _home(identity, refused, request.args.get("assignment", ""))


def _own(submission_id: int) -> views.SubmissionView:
    server = current()
    identity = signed_in()
    row = views.submission_for(server.db, server.data_dir, server.settings, identity, submission_id)
    if row is None:
        abort(404)
    return row


@learner.get("/submissions/<int:submission_id>")
def submission_page(submission_id: int) -> Any:
    row = _own(submission_id)
    return render_template(
        "submission.html",
        row=row,
        refresh=row.pending,
        settings=current().settings,
        action=ActionForm(),
    )


@learner.get("/submissions/<int:submission_id>/report")
def report_page(submission_id: int) -> Any:
    row = _own(submission_id)
    if row.report is None:
        abort(404)
    return report_response(row.report, row.overrides, row.score, row.max_score)


@learner.get("/bundle.zip")
def bundle_download() -> Any:
    signed_in()
    bundle = current().bundle_zip(assignment_of(request.args.get("assignment")))
    return send_file(bundle, as_attachment=True, download_name=bundle.name)


@learner.get("/help/automation")
def automation_help() -> Any:
    """How to script the course: the API, Bearer tokens, the exports' column parameter."""
    g.identity = auth.session_identity(current().db)
    return render_template("help_automation.html", base=current().settings.base_url)


@learner.get("/favicon.ico")
def favicon() -> Any:
    """Browsers ask for /favicon.ico before reading a page's icon link: the same icon."""
    return redirect(url_for("static", filename="favicon.svg"), 301)
