"""The tool's own key pairs: the newest unretired key signs what the tool sends a platform (the
client-credentials assertion of Assignment and Grade Services and of Names and Roles, the deep
linking response); every unretired key is published at ``/lti/jwks.json``.

Why a rotation keeps the old key published: a platform verifies a tool's JWT with the key set it
fetched, and may cache it; a deep linking response signed just before a rotation, or a platform
that has not refetched yet, must still verify. So ``grader lti rotate-key`` adds a new signing
key and keeps the old ones published, and ``grader lti rotate-key --retire-old`` (run once the
platforms have refreshed their caches, a day later is plenty) stops publishing them. The private
keys live in the course's database, so that every server process on one database signs alike;
nothing prints them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from sqlalchemy import select

from grader.server.db import Database
from grader.server.models import AuditEvent, LtiKey, utcnow

KEY_BITS = 2048  # what Canvas and Moodle expect of an RS256 tool key
ALGORITHM = "RS256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str

    @property
    def public_pem(self) -> str:
        return _public_pem(self.private_pem)


@functools.lru_cache(maxsize=16)
def _public_pem(private_pem: str) -> str:
    """Loading an RSA private key checks it (~0.1 s): each key is loaded once per process."""
    jwk = JWK.from_pem(private_pem.encode("ascii"))
    return jwk.public().export_to_pem().decode("ascii")


def _new_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _add_key(session: Any, actor: str) -> LtiKey:
    pem = _new_pem()
    kid = JWK.from_pem(pem.encode("ascii")).thumbprint()  # the kid the LTI library derives too
    row = LtiKey(kid=kid, private_pem=pem, created_at=utcnow())
    session.add(row)
    session.add(AuditEvent(actor=actor, action="lti_key_created", subject=row.kid))
    return row


def signing_key(db: Database) -> SigningKey:
    """The key that signs now (made on first use)."""
    with db.read() as session:
        row = session.scalars(
            select(LtiKey).where(LtiKey.retired_at.is_(None)).order_by(LtiKey.id.desc()).limit(1)
        ).first()
        if row is not None:
            return SigningKey(row.kid, row.private_pem)
    with db.write() as session:  # the first: under the write lock, so two processes make one
        row = session.scalars(
            select(LtiKey).where(LtiKey.retired_at.is_(None)).order_by(LtiKey.id.desc()).limit(1)
        ).first()
        if row is None:
            row = _add_key(session, "server")
            session.flush()
        return SigningKey(row.kid, row.private_pem)


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public half of a key as a JWK (kid, alg, use: what platforms match on)."""
    jwk = JWK.from_pem(key.private_pem.encode("ascii"))
    public = jwk.export_public(as_dict=True)
    return {**public, "kid": key.kid, "alg": ALGORITHM, "use": "sig"}


def key_set(db: Database) -> dict[str, Any]:
    """The JWKS: every unretired key, newest first (one is made on first use)."""
    signing_key(db)
    with db.read() as session:
        rows = session.scalars(
            select(LtiKey).where(LtiKey.retired_at.is_(None)).order_by(LtiKey.id.desc())
        ).all()
        return {"keys": [public_jwk(SigningKey(r.kid, r.private_pem)) for r in rows]}


def rotate(db: Database, *, retire_old: bool = False, actor: str = "cli") -> tuple[str, int]:
    """Without ``retire_old``: a new signing key, the others kept published. With it: every key
    but the newest stops being published. (the signing kid, how many keys are published)."""
    with db.write() as session:
        live = session.scalars(
            select(LtiKey).where(LtiKey.retired_at.is_(None)).order_by(LtiKey.id.desc())
        ).all()
        if retire_old:
            if not live:
                live = [_add_key(session, actor)]
            now = utcnow()
            for row in live[1:]:
                row.retired_at = now
                session.add(AuditEvent(actor=actor, action="lti_key_retired", subject=row.kid))
            return live[0].kid, 1
        row = _add_key(session, actor)
        session.flush()
        return row.kid, len(live) + 1
