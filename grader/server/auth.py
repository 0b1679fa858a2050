"""Who is asking: the signed session cookie (web pages) or a Bearer token (the API), and the
in-memory rate limits in front of sign-in, Bearer tokens and uploads.

Why sessions live on the server: the cookie holds a random session key and the id of the token
(sign-in link) that opened it; the ``sign_in_sessions`` row of the key's SHA-256 says whether the
session is still open. Every request looks both up again, so signing out ends the session for
every copy of its cookie (a cookie alone would stay valid for its whole 120 days), and revoking or
re-issuing a link (``grader roster relink``) signs out the sessions it opened, at once. Every
sign-in path (a link, an LTI launch) opens its session with :func:`sign_in`.

Rate limits are kept in memory, per server process (a sliding window per key): they only need to
stop a flood cheaply; the rules that matter (submissions per day, cooldown) are enforced in the
database, across processes. With several server processes each has its own window, so the
effective limit is the per-process one times the number of processes. A Bearer token is a
sign-in link's token: requests that present one that is not valid count against the client
address's sign-in window, and an address whose window is full is refused before any lookup.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import abort, current_app, request, session
from sqlalchemy import update

from grader import environment
from grader.server.db import Database
from grader.server.models import SignInSession, utcnow
from grader.server.roster import Identity, digest, identify, identity_by_id

SECRET_KEY_FILE = "secret_key"
SECRET_KEY_ENV = environment.SERVER_SECRET_KEY.name
#: Where the app keeps the course's shared state (``state.ServerState``: its ``db`` and its
#: ``signins`` limiter are what this module uses), a key of Flask's ``app.extensions``.
EXTENSION = "course_server"
TOKEN_ID = "tid"  # the session's sign-in link (its token row)
SESSION_KEY = "sid"  # the session's random key; the server stores its SHA-256


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (memory of this process)."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._events) > 10_000:  # forget idle keys: the map never grows unbounded
                self._events = {
                    k: v for k, v in self._events.items() if v and v[-1] > now - self.window
                }
            events = self._events.setdefault(key, collections.deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def full(self, key: str) -> bool:
        """Whether ``key`` has used its window (nothing is counted)."""
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            return bool(events) and sum(1 for t in events if t > now - self.window) >= self.limit


def secret_key(data_dir: Path) -> str:
    """The key that signs session cookies: ``$GRADER_SERVER_SECRET_KEY`` (several servers on one
    database share it), else ``DIR/secret_key`` made once (mode 0600), so sessions survive a
    restart."""
    if environment.SERVER_SECRET_KEY.get():
        return str(environment.SERVER_SECRET_KEY.get())
    path = Path(data_dir) / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()


def _state() -> Any:
    return current_app.extensions[EXTENSION]


def _attempts() -> RateLimiter:
    """The app's sign-in window (an app without a course, the practice quiz: one of its own)."""
    state = current_app.extensions.get(EXTENSION)
    if state is not None:
        return state.signins
    return current_app.extensions.setdefault("sign_in_attempts", RateLimiter(30))


def sign_in(identity: Identity, db: Database | None = None) -> None:
    """Open a session for ``identity`` (a new one: whatever the cookie held is forgotten)."""
    key = secrets.token_urlsafe(32)
    with (db or _state().db).write() as s:
        s.add(SignInSession(id=digest(key), token_id=identity.token_id))
    session.clear()
    session.permanent = True
    session[TOKEN_ID] = identity.token_id
    session[SESSION_KEY] = key


def sign_out(db: Database) -> None:
    """End this request's session on the server (every copy of its cookie) and clear the cookie."""
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        with db.write() as s:
            s.execute(
                update(SignInSession)
                .where(SignInSession.id == digest(key), SignInSession.ended_at.is_(None))
                .values(ended_at=utcnow())
            )
    session.clear()


def _open(db: Database, key: str, token_id: int) -> bool:
    with db.read() as s:
        row = s.get(SignInSession, digest(key))
        return row is not None and row.ended_at is None and row.token_id == token_id


def session_identity(db: Database) -> Identity | None:
    """The signed-in identity of this request's cookie; None when there is none, or its session
    was ended (signed out) or its link revoked."""
    token_id, key = session.get(TOKEN_ID), session.get(SESSION_KEY)
    if not isinstance(token_id, int) or not isinstance(key, str):
        return None
    identity = identity_by_id(db, token_id) if _open(db, key, token_id) else None
    if identity is None:
        session.clear()
    return identity


def bearer_identity(db: Database, attempts: RateLimiter | None = None) -> Identity:
    """The identity of ``Authorization: Bearer <token>``; 401 when missing or not valid, 429 when
    this address presented too many that were not (``attempts``: the app's sign-in window)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if attempts is None:
        attempts = _attempts()
    address = request.remote_addr or "?"
    if attempts.full(address):
        abort(429, "too many sign-in attempts from your address; wait a minute and try again")
    identity = identify(db, token.strip()) if scheme.lower() == "bearer" else None
    if identity is None:
        attempts.allow(address)  # a failed attempt counts, as a sign-in does
        abort(401, "send Authorization: Bearer <token>, the last part of your sign-in link")
    return identity
