"""The LTI blueprint (``/lti/...``) and :func:`register`, the one line ``create_app`` calls.

Routes: ``/lti/jwks.json`` (the tool's public keys), ``/lti/login`` (OIDC login initiation, GET or
POST), ``/lti/launch`` (the platform's signed launch), ``/lti/deep-link`` (the instructor's picker
and its answer), ``/lti/course`` (the instructor's LTI page: the LMS courses, the roster sync, the
scores sent). The login and the launch are posted by the platform, so they carry no CSRF token
and are exempt; every other form carries one.

Framing: the pages refuse to be framed (``X-Frame-Options: DENY``) except in a session opened by a
launch, which may be framed by the LMS page the launch came from (the origin of its signed
``return_url``: ``Content-Security-Policy: frame-ancestors``). So a course in an LMS iframe works,
and no other site can frame it. A refused launch's page (a message, no form of its own) may be
framed anywhere, so that the refusal shows in the LMS's iframe instead of a blocked frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
from sqlalchemy import func, select

from grader.server import auth
from grader.server.lti import ags, deep_linking, keys, launch, nrps, platforms
from grader.server.lti.services import TimeoutSession
from grader.server.models import LtiContext, LtiMember, LtiScorePost
from grader.server.responses import message
from grader.server.state import current

EXTENSION = "lti"
LOGINS_PER_MINUTE = 300  # per client address: each login writes a state; a class is a few hundred

lti = Blueprint("lti", __name__, url_prefix="/lti", template_folder="templates")


@dataclass
class LtiState:
    """What the LTI routes share: the login rate limit, the HTTP session to platforms, the
    background score poster."""

    logins: auth.RateLimiter  # login initiations per client address per minute
    http: Any = field(default_factory=TimeoutSession)
    poster: ags.ScorePoster | None = None


@lti.get("/jwks.json")
def jwks() -> Any:
    response = Response(json.dumps(keys.key_set(current().db)), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"  # rotation keeps old keys listed
    return response


@lti.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if not _state().logins.allow(request.remote_addr or "?"):
        return message("Too many launches from your network; wait a minute and try again.", 429)
    return launch.login()


@lti.post("/launch", endpoint="launch")
def launch_view() -> Any:
    return launch.accept()


@lti.get("/deep-link")
def deep_link_form() -> Any:
    return deep_linking.form()


@lti.post("/deep-link")
def deep_link() -> Any:
    return deep_linking.respond()


def _instructor() -> None:
    identity = auth.session_identity(current().db)
    if identity is None or not identity.is_instructor:
        abort(404)
    g.identity = identity


@lti.get("/course")
def course() -> Any:
    """The instructor's LTI page."""
    _instructor()
    db = current().db
    with db.read() as s:
        contexts = s.scalars(select(LtiContext).order_by(LtiContext.id)).all()
        members = dict(
            s.execute(
                select(LtiMember.context_pk, func.count(LtiMember.id)).group_by(
                    LtiMember.context_pk
                )
            ).all()
        )
        posts = dict(
            s.execute(
                select(LtiScorePost.status, func.count(LtiScorePost.id)).group_by(
                    LtiScorePost.status
                )
            ).all()
        )
        failures = s.scalars(
            select(LtiScorePost)
            .where(LtiScorePost.status == ags.FAILED)
            .order_by(LtiScorePost.id.desc())
            .limit(20)
        ).all()
    return render_template(
        "lti_course.html",
        contexts=contexts,
        members=members,
        posts=posts,
        failures=failures,
        platforms=platforms.platforms(db),
    )


@lti.post("/contexts/<int:context_pk>/sync")
def sync(context_pk: int) -> Any:
    """Names and Roles: add the LMS course's learners to the roster."""
    _instructor()
    server = current()
    try:
        counts = nrps.sync_roster(server.db, _state().http, context_pk)
    except nrps.SyncError as error:
        flash(f"The roster was not synced: {error}.")
    else:
        flash(
            f"Roster synced: {counts['added']} learner(s) added, {counts['known']} already "
            f"here, {counts['skipped']} member(s) who are not active learners skipped."
        )
    return redirect(url_for("lti.course"))


def _state() -> LtiState:
    return current_app.extensions[EXTENSION]


@lti.after_app_request
def _framing(response: Response) -> Response:
    """Let the LMS page that launched this session frame it (see the module's docstring)."""
    if g.get("lti_refusal"):  # a message and a link, nothing to click-jack: any LMS frames it
        ancestors = "*"
    else:
        origins = session.get(launch.FRAME_ORIGINS) if launch.FRAME_ORIGINS in session else None
        if not origins:
            return response
        ancestors = " ".join(["'self'", *origins])
    response.headers.pop("X-Frame-Options", None)
    policy = response.headers.get("Content-Security-Policy")
    if policy:
        directives = [d for d in policy.split(";") if not d.strip().startswith("frame-ancestors")]
        directives.append(f" frame-ancestors {ancestors}")
        response.headers["Content-Security-Policy"] = ";".join(directives).strip()
    else:
        response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response


def register(app: Flask, *, background: bool | None = None) -> None:
    """Add LTI to the course app: the blueprint, its CSRF exemptions, and (``background``, by
    default when the app has a grading dispatcher, i.e. under ``grader serve``) the thread that
    posts scores to the platforms. Call it before the app's security headers are added, so that
    :func:`_framing` sees them."""
    server = app.extensions["course_server"]
    # a class behind one NAT launches at once: a larger window than a sign-in link's
    state = LtiState(auth.RateLimiter(max(LOGINS_PER_MINUTE, server.settings.signin_per_minute)))
    app.extensions[EXTENSION] = state
    app.register_blueprint(lti)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(login)
        csrf.exempt(launch_view)
    if background if background is not None else server.dispatcher is not None:
        state.poster = ags.ScorePoster(app, state.http).start()
