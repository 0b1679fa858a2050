"""OIDC login initiation and the launch: the platform's user becomes a signed-in learner or
instructor of the server, and lands on the item the resource link names.

The flow (IMS Security Framework, OIDC third-party initiated login): the platform calls
``/lti/login`` (iss, login_hint, ...); the tool answers with a redirect to the platform's
authorization URL carrying a fresh ``state`` (also set as a cookie) and ``nonce`` (kept in the
database); the platform posts a signed ``id_token`` back to ``/lti/launch``. pylti1p3 validates it
(state, signature against the platform's key set, expiry, issuer and client id registered, the
deployment registered, the message's required claims); then this module refuses a nonce already
used, maps the user (``identities``), records the course context and its services, and signs the
user in with the server's own session, so every existing page works unchanged.

Every refusal is a page in plain words (what happened, what to do) with status 403, and a
warning in the log plus an ``lti_launch_refused`` audit event with the library's reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from flask import current_app, g, redirect, request, session, url_for
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException, OIDCException
from sqlalchemy import select

from grader.server import auth
from grader.server.db import Database
from grader.server.lti import identities, items, platforms
from grader.server.lti.services import ToolConnector
from grader.server.lti.storage import DatabaseLaunchStorage, consume_nonce
from grader.server.models import AuditEvent, LtiContext, LtiLineItem, LtiMember, TokenKind
from grader.server.responses import message
from grader.server.state import ServerState, current

log = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
FRAME_ORIGINS = "lti_frame_origins"  # the session key: origins allowed to frame the pages
DEEP_LINK = "lti_deep_link"  # the session key: the deep linking launch being answered


@dataclass(frozen=True)
class Refusal:
    """Why a launch was refused, in the user's words and in the log's."""

    text: str
    reason: str


# The library's reasons (its exception messages) -> what the user reads.
REASONS = (
    ("expired", "The launch has expired. Go back to the course in your LMS and open it again."),
    (
        "signature",
        "The launch's signature does not match the platform's keys: it was not sent "
        "by the registered platform, or it was altered on the way.",
    ),
    (
        "public key",
        "The launch's signature does not match the platform's keys: it was not sent "
        "by the registered platform, or it was altered on the way.",
    ),
    ("kid", "The launch names no key of the platform: it cannot be verified."),
    (
        "nonce",
        "This launch was already used, or it did not start here. Open the activity again "
        "from your LMS.",
    ),
    (
        "registration not found",
        "This launch is meant for another tool: its client id (audience) "
        "is not registered on this course server.",
    ),
    (
        "client id",
        "This launch is meant for another tool: its client id (audience) is not "
        "registered on this course server.",
    ),
    (
        "deployment",
        "This launch comes from a deployment of the LMS that is not registered on "
        "this course server. Ask the instructor to register it (grader lti register).",
    ),
    (
        "state",
        "The sign-in did not start on this course server, or your browser did not send "
        "its cookie back. Open the activity again from your LMS; if it persists, open it in a new "
        "window.",
    ),
    (
        "cookie",
        "Your browser did not send this course server's cookie back. Open the activity "
        "again from your LMS in a new window.",
    ),
)


def _explain(error: Exception) -> Refusal:
    text = str(error)
    lowered = text.lower()
    for needle, words in REASONS:
        if needle in lowered:
            return Refusal(words, text)
    return Refusal("The launch could not be verified, so you were not signed in.", text)


def refuse(refusal: Refusal, claims: dict[str, Any] | None = None) -> Any:
    """The refusal page; logged with the reason and the launch's issuer and audience."""
    where = {
        "iss": (claims or {}).get("iss") or request.values.get("iss", ""),
        "aud": (claims or {}).get("aud", ""),
        "from": request.remote_addr or "",
    }
    log.warning("LTI launch refused: %s (%s)", refusal.reason, where)
    with current().db.write() as s:
        s.add(
            AuditEvent(
                actor="lti",
                action="lti_launch_refused",
                detail={
                    "reason": refusal.reason[:500],
                    **{k: str(v)[:300] for k, v in where.items()},
                },
            )
        )
    g.lti_refusal = True  # shown where the launch was: in the LMS's iframe (routes._framing)
    return message(refusal.text, 403, "Launch refused", "refused")


def tool_conf(db: Database) -> platforms.DatabaseToolConf:
    return platforms.DatabaseToolConf(db)


def launch_url(server: ServerState) -> str:
    """The redirect URI every platform registers: ``<base_url>/lti/launch`` (the public URL,
    not the one a reverse proxy forwards to)."""
    return server.settings.base_url + url_for("lti.launch")


def login() -> Any:
    """``/lti/login``: answer the platform's login initiation with the authentication request."""
    server = current()
    oidc = FlaskOIDCLogin(
        FlaskRequest(),
        tool_conf(server.db),
        launch_data_storage=DatabaseLaunchStorage(server.db),
    )
    try:
        return oidc.redirect(launch_url(server))
    except (OIDCException, LtiException) as error:
        return refuse(
            Refusal(
                "This LMS is not registered on this course server, so it cannot sign you in. Ask "
                "the instructor to register it (grader lti register).",
                str(error),
            )
        )


def _validated(server: ServerState, lti: Any) -> tuple[FlaskMessageLaunch, dict[str, Any]]:
    launch = FlaskMessageLaunch(
        FlaskRequest(),
        tool_conf(server.db),
        launch_data_storage=DatabaseLaunchStorage(server.db),
        requests_session=lti.http,
        service_connector_cls=ToolConnector,
    )
    return launch, dict(launch.get_launch_data())


def _unverified_claims() -> dict[str, Any]:
    """The id_token's claims without verifying them: only to say in the log whose launch failed."""
    try:
        return jwt.decode(request.form.get("id_token", ""), options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def _item_key(claims: dict[str, Any]) -> str | None:
    custom = claims.get(CLAIM + "custom") or {}
    if isinstance(custom, dict) and custom.get("item"):
        return str(custom["item"])
    query = parse_qs(urlsplit(str(claims.get(CLAIM + "target_link_uri") or "")).query)
    return query.get("item", [None])[0]


def _frame_origins(claims: dict[str, Any]) -> list[str]:
    """The LMS page that frames the launch: the origin of its return URL (signed, so trusted)."""
    presentation = claims.get(CLAIM + "launch_presentation") or {}
    url = str(presentation.get("return_url") or "") if isinstance(presentation, dict) else ""
    parts = urlsplit(url)
    if parts.scheme in ("https", "http") and parts.netloc:
        return [f"{parts.scheme}://{parts.netloc}"]
    return []


def record_context(
    db: Database,
    platform_id: int,
    claims: dict[str, Any],
    user_pk: int,
    item: items.Item | None,
) -> int | None:
    """Keep the launch's course (context), its service URLs, the user's membership and the
    resource link's line item; the context's row id (None for a launch without a context)."""
    context = claims.get(CLAIM + "context") or {}
    if not isinstance(context, dict) or not context.get("id"):
        return None
    ags = claims.get(AGS_ENDPOINT) or {}
    nrps = claims.get(NRPS) or {}
    with db.write() as session:
        row = session.scalar(
            select(LtiContext).where(
                LtiContext.platform_id == platform_id, LtiContext.context_id == str(context["id"])
            )
        )
        if row is None:
            row = LtiContext(platform_id=platform_id, context_id=str(context["id"]))
            session.add(row)
        row.deployment_id = str(claims.get(CLAIM + "deployment_id") or "")
        row.title = str(context.get("title") or context.get("label") or "")[:500]
        if ags.get("lineitems") or ags.get("lineitem"):
            row.lineitems_url = str(ags.get("lineitems") or row.lineitems_url or "")
            row.ags_scopes = [str(s) for s in ags.get("scope") or []]
        if nrps.get("context_memberships_url"):
            row.memberships_url = str(nrps["context_memberships_url"])
        session.flush()
        member = session.scalar(
            select(LtiMember).where(LtiMember.context_pk == row.id, LtiMember.user_pk == user_pk)
        )
        if member is None:
            session.add(LtiMember(context_pk=row.id, user_pk=user_pk))
        if item is not None and ags.get("lineitem"):
            line = session.scalar(
                select(LtiLineItem).where(
                    LtiLineItem.context_pk == row.id, LtiLineItem.item == item.key
                )
            )
            if line is None:
                line = LtiLineItem(context_pk=row.id, item=item.key)
                session.add(line)
            link = claims.get(CLAIM + "resource_link") or {}
            line.url = str(ags["lineitem"])
            line.resource_link_id = str(link.get("id") or "")[:255]
        return row.id


def accept() -> Any:
    """``/lti/launch``: validate, map the user, sign them in, open the item (or the picker)."""
    server = current()
    lti = current_app.extensions["lti"]
    try:
        launch, claims = _validated(server, lti)
    except LtiException as error:
        return refuse(_explain(error), _unverified_claims())
    platform = platforms.find(server.db, str(claims.get("iss")), launch.get_client_id())
    if platform is None:  # the library found it a moment ago: only a removal in between
        return refuse(Refusal("This LMS is no longer registered here.", "registration gone"))
    if not consume_nonce(server.db, platform.id, str(claims.get("nonce") or "")):
        return refuse(_explain(LtiException("nonce already used (replayed launch)")), claims)
    person = identities.Person.from_claims(claims)
    try:
        kind = identities.kind_of(claims.get(CLAIM + "roles") or [])
    except identities.NotAllowed as error:
        return refuse(
            Refusal(
                "This course's pages are for its learners and instructors; your role in the LMS "
                "course is neither.",
                f"roles: {error}",
            ),
            claims,
        )
    deep_link = launch.is_deep_link_launch()
    if deep_link and kind != TokenKind.INSTRUCTOR:
        return refuse(
            Refusal("Only an instructor chooses what a link opens.", "deep link by a learner"),
            claims,
        )
    item = items.find_item(current_app, server, None if deep_link else _item_key(claims))
    if item is None:
        return refuse(
            Refusal(
                "This link opens an item this course server does not have.",
                f"unknown item {_item_key(claims)!r}",
            ),
            claims,
        )
    identity, user_pk = identities.identify(server.db, platform.id, person, kind)
    record_context(server.db, platform.id, claims, user_pk, None if deep_link else item)
    auth.sign_in(identity)
    session[FRAME_ORIGINS] = _frame_origins(claims)
    with server.db.write() as s:
        s.add(
            AuditEvent(
                actor=identity.learner_id or "instructor",
                action="signed_in",
                detail={"via": "lti", "platform": platform.id, "item": item.key},
            )
        )
    if deep_link:
        session[DEEP_LINK] = launch.get_launch_id()
        return redirect(url_for("lti.deep_link_form"))
    if kind == TokenKind.INSTRUCTOR:
        return redirect(url_for("lti.course"))
    return redirect(item.page())
