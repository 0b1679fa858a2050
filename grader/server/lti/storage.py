"""Where an OIDC login keeps its values between ``/lti/login`` and ``/lti/launch`` (the state's
parameters, the nonce, the validated launch), and the record of nonces already used.

Why the database and not the session cookie (the LTI library's default): the launch is a POST
from the platform's page, often inside its iframe, where browsers withhold a Lax cookie, and
another server process may take the launch; the values are short-lived (``LIFETIME``) and swept
as new ones are written. Why a table of used nonces: the library checks that a nonce was issued
here, not that it is used once, so a captured id_token could be posted again while it is
unexpired; :func:`consume_nonce` makes the second use fail in the database's own unique index.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pylti1p3.launch_data_storage.cache import CacheDataStorage
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from grader.server.db import Database
from grader.server.models import LtiLaunchValue, LtiUsedNonce, utcnow

LIFETIME = 3600  # seconds an unfinished login's values are kept (the library's launches: 1 day)
USED_NONCE_DAYS = 2  # an id_token lives minutes: a used nonce need not be remembered longer


class _Table:
    """The ``get``/``set`` cache interface the library's cache storage calls, on a table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> Any:
        with self.db.read() as session:
            row = session.get(LtiLaunchValue, key)
            if row is None or row.expires_at < utcnow():
                return None
            return row.value

    def set(self, key: str, value: Any, exp: int | None = None) -> None:
        now = utcnow()
        expires = now + dt.timedelta(seconds=min(exp or LIFETIME, LIFETIME))
        with self.db.write() as session:
            session.execute(delete(LtiLaunchValue).where(LtiLaunchValue.expires_at < now))
            row = session.get(LtiLaunchValue, key)
            if row is None:
                session.add(LtiLaunchValue(key=key, value=value, expires_at=expires))
            else:
                row.value, row.expires_at = value, expires


class DatabaseLaunchStorage(CacheDataStorage[Any]):
    """The library's cache storage over :class:`_Table`. Over https the keys carry the browser's
    ``lti1p3-session-id`` cookie (SameSite=None; Secure), binding a login to its browser."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._cache = _Table(db)


def consume_nonce(db: Database, platform_id: int, nonce: str) -> bool:
    """Record a launch's nonce as used; False when it was used before (a replay)."""
    now = utcnow()
    try:
        with db.write() as session:
            old = now - dt.timedelta(days=USED_NONCE_DAYS)
            session.execute(delete(LtiUsedNonce).where(LtiUsedNonce.used_at < old))
            seen = session.scalar(
                select(LtiUsedNonce.id).where(
                    LtiUsedNonce.platform_id == platform_id, LtiUsedNonce.nonce == nonce
                )
            )
            if seen is not None:
                return False
            session.add(LtiUsedNonce(platform_id=platform_id, nonce=nonce[:200], used_at=now))
    except IntegrityError:  # a parallel request with the same nonce won (PostgreSQL)
        return False
    return True
