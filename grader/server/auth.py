"""Who is asking: the signed session cookie (web pages) or a Bearer token (the API), and the
in-memory rate limits in front of sign-in and uploads.

Why the session holds a token's row id and not the learner's id: every request looks the token
up again, so revoking or re-issuing a link (``grader roster relink``) signs out the sessions it
opened, at once. Rate limits are kept in memory, per server process (a sliding window per key):
they only need to stop a flood cheaply; the rules that matter (submissions per day, cooldown) are
enforced in the database, across processes. With several server processes each has its own
window, so the effective limit is the per-process one times the number of processes.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flask import abort, request, session

from grader.server.db import Database
from grader.server.roster import Identity, identify, identity_by_id

SECRET_KEY_FILE = "secret_key"
SECRET_KEY_ENV = "OBJLOC_SERVER_SECRET_KEY"


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


def secret_key(data_dir: Path) -> str:
    """The key that signs session cookies: ``$OBJLOC_SERVER_SECRET_KEY`` (several servers on one
    database share it), else ``DIR/secret_key`` made once (mode 0600), so sessions survive a
    restart."""
    if os.environ.get(SECRET_KEY_ENV):
        return os.environ[SECRET_KEY_ENV]
    path = Path(data_dir) / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()


def sign_in(identity: Identity) -> None:
    session.clear()
    session.permanent = True
    session["tid"] = identity.token_id


def session_identity(db: Database) -> Identity | None:
    """The signed-in identity of this request's cookie, None when absent or revoked."""
    token_id = session.get("tid")
    if not isinstance(token_id, int):
        return None
    identity = identity_by_id(db, token_id)
    if identity is None:
        session.clear()
    return identity


def bearer_identity(db: Database) -> Identity:
    """The identity of ``Authorization: Bearer <token>``; 401 when missing or not valid."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    identity = identify(db, token.strip()) if scheme.lower() == "bearer" else None
    if identity is None:
        abort(401, "send Authorization: Bearer <token>, the last part of your sign-in link")
    return identity
