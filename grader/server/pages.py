"""The learner's pages: sign in with a link, the home page (bundle, upload, submissions), a
submission's page and its report, the bundle download, sign out.

Why server-rendered forms: the pages must work without JavaScript and on a phone; a page with a
grading in progress updates itself (``live``; without JavaScript a ``<noscript>`` refresh reloads
it). Every form carries a CSRF token (Flask-WTF). A learner reaches only their own rows: each
lookup filters on the signed-in learner in ``views``, and anything else is a 404, whether it
exists or not.
"""

from __future__ import annotations

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
    session,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from grader.server import auth, views
from grader.server.models import AuditEvent
from grader.server.reports import report_response
from grader.server.responses import message
from grader.server.roster import Identity, identify
from grader.server.state import QUIZ_EXTENSION, current
from grader.server.submissions import Refused

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


def _home(identity: Identity, refused: Refused | None = None) -> Any:
    assert identity.learner_id is not None
    server = current()
    rows = views.submissions_of(server.db, server.data_dir, server.settings, identity.learner_id)
    page = render_template(
        "home.html",
        name=views.learner_name(server.db, identity.learner_id),
        submissions=rows,
        form=UploadForm(),
        action=ActionForm(),
        refused=refused,
        refresh=any(row.pending for row in rows),
        settings=server.settings,
        has_quiz=QUIZ_EXTENSION in current_app.extensions,  # the course's assignment has a quiz
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


@learner.get("/signin/<token>")
def signin(token: str) -> Any:
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
    auth.sign_in(identity)
    with server.db.write() as s:
        s.add(AuditEvent(actor=identity.learner_id or "instructor", action="signed_in"))
    return redirect(url_for("learner.index"))


@learner.post("/signout")
def signout() -> Any:
    session.clear()
    return redirect(url_for("learner.index"))


@learner.post("/submit")
def submit() -> Any:
    identity = _learner()
    form = UploadForm()
    if not form.validate_on_submit():
        return _home(identity, Refused("choose your .ipynb notebook file first"))
    try:
        upload = form.notebook.data
        accepted = current().upload(identity, upload.read(), upload.filename or "")
    except Refused as refused:
        return _home(identity, refused)
    flash(f"Submission {accepted.number} received and queued for grading.")
    return redirect(url_for("learner.submission_page", submission_id=accepted.id))


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
    return report_response(row.report, row.overrides)


@learner.get("/bundle.zip")
def bundle_download() -> Any:
    signed_in()
    bundle = current().bundle_zip()
    return send_file(bundle, as_attachment=True, download_name=bundle.name)
