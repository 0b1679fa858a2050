"""The course server's web app: sign-in links, the learner's pages (submissions, upload, report,
bundle); the instructor's pages live in ``instructor.py``, the JSON API in ``api.py``.

Why server-rendered forms: the pages must work without JavaScript and on a phone; a page with a
grading in progress updates itself (base.html: a script fetches the page again; without JavaScript
a ``<noscript>`` refresh reloads it). Every form carries a CSRF
token (Flask-WTF, as ``quiz/web.py``); the API, which authenticates with a Bearer header and no
cookie, is exempt. A learner reaches only their own rows: each lookup filters on the signed-in
learner in ``views.py``, and anything else is a 404, whether it exists or not.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
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
from flask_wtf.csrf import CSRFError, CSRFProtect
from flask_wtf.file import FileField, FileRequired

from grader.server import auth, views
from grader.server.db import Database
from grader.server.models import AuditEvent, utcnow
from grader.server.roster import Identity, identify
from grader.server.settings import Settings
from grader.server.submissions import Accepted, Refused, create_submission


def build_bundle(out: Path, assignment: str = "") -> None:
    """Write the learner bundle of ``assignment`` (empty: the only one installed) into ``out``:
    the one place the server calls ``grader release``."""
    from grader.authoring.release import build_release

    build_release(out, assignment or None)


class UploadForm(FlaskForm):
    notebook = FileField("Your notebook (.ipynb)", validators=[FileRequired()])


class ActionForm(FlaskForm):
    """A form with only its CSRF token: sign out, regrade, release."""


@dataclass
class ServerState:
    data_dir: Path
    settings: Settings
    db: Database
    dispatcher: Any = None  # grader.server.queue.Dispatcher, woken after an upload
    clock: Callable[[], dt.datetime] = utcnow
    bundle: Callable[..., None] = build_bundle
    signins: auth.RateLimiter = field(default_factory=lambda: auth.RateLimiter(30))
    uploads: auth.RateLimiter = field(default_factory=lambda: auth.RateLimiter(6))
    bundle_lock: threading.Lock = field(default_factory=threading.Lock)

    def upload(self, identity: Identity, data: bytes) -> Accepted:
        """Take an upload for a signed-in learner (web page and API alike)."""
        if identity.learner_id is None:
            raise Refused("instructors do not submit: sign in with a learner link", 403)
        if not self.uploads.allow(identity.learner_id):
            raise Refused("too many uploads in a minute; wait a little and try again", 429)
        accepted = create_submission(
            self.db, self.data_dir, self.settings, identity.learner_id, data, now=self.clock()
        )
        if self.dispatcher is not None:
            self.dispatcher.wake()
        return accepted

    def bundle_zip(self) -> Path:
        """The bundle as a zip, built once per server process (in a temp folder, then zipped)."""
        name = self.settings.chosen_assignment().name
        target = self.data_dir / "cache" / f"{name}.zip"
        with self.bundle_lock:
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="objloc-bundle-") as tmp:
                    folder = Path(tmp) / name
                    self.bundle(folder, self.settings.assignment)
                    partial = target.with_suffix(".zip.tmp")
                    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                        for path in sorted(folder.rglob("*")):
                            if path.is_file():
                                archive.write(path, path.relative_to(tmp))
                    partial.replace(target)
        return target


def state() -> ServerState:
    from flask import current_app

    return current_app.extensions["course_server"]


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
    from grader.server.api import api
    from grader.server.instructor import instructor

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or auth.secret_key(data_dir),
        SESSION_COOKIE_NAME="objloc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=120),  # a course's length
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session: a tab left open a day still submits
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,  # the form's own fields
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes + 64 * 1024,
    )
    csrf = CSRFProtect(app)
    csrf.exempt(api)
    csrf.exempt(instructor)  # checks the token itself, after its 404 gate (instructor.py)
    app.register_blueprint(api)
    from grader.server.live import live

    app.register_blueprint(live)
    app.register_blueprint(instructor)  # the instructor's pages (instructor.py)
    server = ServerState(
        Path(data_dir).resolve(),  # Flask's send_file reads a relative path from its package
        settings,
        db,
        dispatcher=dispatcher,
        clock=clock,
        bundle=bundle,
        signins=auth.RateLimiter(settings.signin_per_minute),
        uploads=auth.RateLimiter(max(1, settings.uploads_per_minute)),
    )
    app.extensions["course_server"] = server
    from grader.server.quiz_pages import register_quiz  # the graded quiz under /quiz

    register_quiz(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"title": settings.title, "who": getattr(g, "identity", None)}

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # links hold tokens
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith(("/signin", "/submissions", "/api", "/instructor")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def message(text: str, status: int, heading: str = "") -> tuple[str, int]:
        return render_template("message.html", heading=heading, text=text), status

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        return message(
            f"The form was refused ({error.description}). Reload the page and try again.", 400
        )

    @app.errorhandler(413)
    def _too_large(_error: Any) -> Any:
        text = f"The file is larger than the limit of {settings.max_upload_mb:g} MB."
        if request.path.startswith("/api/"):
            return {"error": text}, 413
        return message(text, 413)

    @app.errorhandler(404)
    def _not_found(_error: Any) -> Any:
        if request.path.startswith("/api/"):
            return {"error": "not found"}, 404
        return message("There is nothing here (or it is not yours).", 404, "Not found")

    def signed_in() -> Identity:
        identity = auth.session_identity(db)
        if identity is None:
            abort(404)
        g.identity = identity
        return identity

    def learner() -> Identity:
        identity = signed_in()
        if identity.is_instructor:
            abort(404)
        return identity

    @app.get("/")
    def index() -> Any:
        identity = auth.session_identity(db)
        g.identity = identity
        if identity is None:
            return render_template("welcome.html")
        if identity.is_instructor:
            return redirect(url_for("instructor.gradebook"))
        return home(identity)

    def home(identity: Identity, refused: Refused | None = None) -> Any:
        assert identity.learner_id is not None
        rows = views.submissions_of(db, server.data_dir, settings, identity.learner_id)
        page = render_template(
            "home.html",
            name=views.learner_name(db, identity.learner_id),
            submissions=rows,
            form=UploadForm(),
            action=ActionForm(),
            refused=refused,
            refresh=any(row.pending for row in rows),
            settings=settings,
            has_quiz="course_quiz" in app.extensions,  # set by register_quiz when there is one
        )
        return (page, refused.status) if refused else page

    @app.get("/signin/<token>")
    def signin(token: str) -> Any:
        if not server.signins.allow(request.remote_addr or "?"):
            return message("Too many sign-in attempts; wait a minute and try again.", 429)
        identity = identify(db, token)
        if identity is None:
            return message(
                "This sign-in link is not valid: it was mistyped, or replaced by a newer one. "
                "Ask your instructor for a new link.",
                404,
                "Sign-in link not valid",
            )
        auth.sign_in(identity)
        with db.write() as s:
            s.add(AuditEvent(actor=identity.learner_id or "instructor", action="signed_in"))
        return redirect(url_for("index"))

    @app.post("/signout")
    def signout() -> Any:
        session.clear()
        return redirect(url_for("index"))

    @app.post("/submit")
    def submit() -> Any:
        identity = learner()
        form = UploadForm()
        if not form.validate_on_submit():
            return home(identity, Refused("choose your .ipynb notebook file first"))
        try:
            accepted = server.upload(identity, form.notebook.data.read())
        except Refused as refused:
            return home(identity, refused)
        flash(f"Submission {accepted.number} received and queued for grading.")
        return redirect(url_for("submission_page", submission_id=accepted.id))

    @app.get("/submissions/<int:submission_id>")
    def submission_page(submission_id: int) -> Any:
        identity = signed_in()
        row = views.submission_for(db, server.data_dir, settings, identity, submission_id)
        if row is None:
            abort(404)
        return render_template(
            "submission.html", row=row, refresh=row.pending, settings=settings, action=ActionForm()
        )

    @app.get("/submissions/<int:submission_id>/report")
    def report_page(submission_id: int) -> Any:
        identity = signed_in()
        row = views.submission_for(db, server.data_dir, settings, identity, submission_id)
        if row is None or row.report is None:
            abort(404)
        return report_response(row.report, row.overrides)

    @app.get("/bundle.zip")
    def bundle_download() -> Any:
        signed_in()
        bundle = server.bundle_zip()
        return send_file(bundle, as_attachment=True, download_name=bundle.name)

    return app


#: The grader's self-contained pages (reports, the class summary): inline styles and data: images
#: only, no script, no request anywhere.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def report_response(path: Path, applied: tuple[Any, ...] = ()) -> Response:
    """A report.html, self-contained (pictures inline): no script, nothing fetched elsewhere.
    With overrides in force (``overrides.Applied``), they are shown above the report, which
    stays as graded on disk."""
    if applied:
        from grader.server.overrides import banner_html

        text = path.read_text(encoding="utf-8", errors="replace")
        match = re.search(r"<body[^>]*>", text, re.IGNORECASE)
        at = match.end() if match else 0
        response = Response(text[:at] + banner_html(applied) + text[at:], mimetype="text/html")
    else:
        response = send_file(path, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


def remove_cached_bundle(data_dir: Path) -> None:
    """Forget the cached bundle (a new release is built at the next download)."""
    shutil.rmtree(Path(data_dir) / "cache", ignore_errors=True)
