"""Who an LTI launch (or a Names and Roles member) is on this server: the platform's user
(``sub``) mapped to a roster learner or to an instructor, with the session handle the existing
pages already understand (a ``tokens`` row, so ``auth.sign_in`` and every page work unchanged).

The rules, so that a launch never lands in someone else's work:

- Roles: a context Instructor, Administrator, ContentDeveloper or TeachingAssistant (or an
  institution or system Administrator) is an instructor; a Learner is a learner; anyone else
  (a Mentor, a guest) is refused.
- A learner's first launch links them to a roster learner only through a value the platform's
  administrators set and the learner cannot change: the ``lis`` claim's ``person_sourcedid``
  (Moodle's ID number, Canvas's SIS user id) equal to a roster learner's id, ``sis_user_id`` or
  ``idnumber`` not yet linked. Never by email: a learner can edit their own in the LMS. Else a
  learner is created, named from the ``name``/``email`` claims, with an id taken from the email,
  the LMS username or the ``sub`` (the first that is free).
- The session handle is a token whose secret nobody holds (only its digest is stored); revoking
  links (``grader roster revoke``) revokes it too, and the next launch issues a new one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from grader.server.db import Database
from grader.server.models import AuditEvent, Learner, LtiUser, Token, TokenKind, utcnow
from grader.server.roster import Identity, RosterError, digest, normalise

INSTRUCTOR_ROLES = {"Instructor", "Administrator", "ContentDeveloper", "TeachingAssistant"}
LEARNER_ROLES = {"Learner", "Student"}
LIS = "https://purl.imsglobal.org/spec/lti/claim/lis"
EXT = "https://purl.imsglobal.org/spec/lti/claim/ext"
SOURCED_ID_COLUMNS = ("sis_user_id", "idnumber")


class NotAllowed(Exception):
    """A launch by someone who is neither a learner nor an instructor of the course."""


def role_names(roles: Iterable[str]) -> set[str]:
    """Short role names of LIS role URIs (``...membership#Instructor`` -> ``Instructor``,
    ``...membership/Instructor#TeachingAssistant`` -> both); short names stay as they are."""
    names: set[str] = set()
    for role in roles or ():
        text = str(role)
        tail = text.rsplit("#", 1)[-1]
        names.add(tail.rsplit("/", 1)[-1])
        if "/membership/" in text:  # a sub-role names its principal role in the path
            names.add(text.split("/membership/", 1)[1].split("#", 1)[0])
    return names


def kind_of(roles: Iterable[str]) -> TokenKind:
    """Instructor or learner; NotAllowed for anyone else."""
    names = role_names(roles)
    if names & INSTRUCTOR_ROLES:
        return TokenKind.INSTRUCTOR
    if names & LEARNER_ROLES:
        return TokenKind.LEARNER
    raise NotAllowed(", ".join(sorted(names)) or "no role")


@dataclass(frozen=True)
class Person:
    """What the platform says about a user (launch claims or a Names and Roles member)."""

    sub: str
    name: str
    email: str
    sourced_id: str = ""
    username: str = ""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Person:
        lis = claims.get(LIS) or {}
        ext = claims.get(EXT) or {}
        name = claims.get("name") or " ".join(
            p for p in (claims.get("given_name"), claims.get("family_name")) if p
        )
        return cls(
            sub=str(claims.get("sub") or ""),
            name=str(name or "")[:200],
            email=str(claims.get("email") or "")[:320],
            sourced_id=str(lis.get("person_sourcedid") or "") if isinstance(lis, dict) else "",
            username=str(ext.get("user_username") or "") if isinstance(ext, dict) else "",
        )


def _new_session_token(session: Any, kind: TokenKind, learner_id: str | None) -> int:
    row = Token(digest=digest(secrets.token_urlsafe(32)), kind=kind, learner_id=learner_id)
    session.add(row)
    session.flush()
    return row.id


def _roster_match(session: Any, platform_id: int, person: Person) -> Learner | None:
    """The unlinked roster learner whose id, sis_user_id or idnumber is the person's sourced id."""
    if not person.sourced_id:
        return None
    linked = set(
        session.scalars(select(LtiUser.learner_id).where(LtiUser.platform_id == platform_id))
    )
    for learner in session.scalars(select(Learner)).all():
        if learner.id in linked:
            continue
        values = {learner.extra.get("roster_id", learner.id), learner.id}
        values |= {str((learner.extra or {}).get(c) or "") for c in SOURCED_ID_COLUMNS}
        if person.sourced_id in values:
            return learner
    return None


def _free_id(session: Any, platform_id: int, person: Person) -> str:
    candidates = [person.email, person.username, f"lti{platform_id}-{person.sub}"]
    for raw in candidates:
        try:
            ident = normalise(raw) if raw else ""
        except RosterError:
            continue
        if ident and session.get(Learner, ident) is None:
            return ident
    hashed = hashlib.sha256(f"{platform_id}:{person.sub}".encode()).hexdigest()[:16]
    return f"lti{platform_id}-{hashed}"


def _learner_for(session: Any, platform_id: int, person: Person) -> tuple[str, str]:
    """(learner id, how it was found) for a learner without a link yet."""
    match = _roster_match(session, platform_id, person)
    if match is not None:
        return match.id, "roster"
    ident = _free_id(session, platform_id, person)
    session.add(
        Learner(
            id=ident,
            name=person.name or ident,
            email=person.email,
            extra={"added_by": "lti", "lti_sub": person.sub},
        )
    )
    session.flush()
    return ident, "created"


def identify(
    db: Database, platform_id: int, person: Person, kind: TokenKind, *, launch: bool = True
) -> tuple[Identity, int]:
    """The identity of ``person`` as ``kind`` (creating the learner at their first launch or
    sync), and their ``lti_users`` row id. ``launch``: a sign-in (recorded, handle renewed)."""
    if not person.sub:
        raise NotAllowed("no sub claim")
    with db.write() as session:
        user = session.scalar(
            select(LtiUser).where(LtiUser.platform_id == platform_id, LtiUser.sub == person.sub)
        )
        if user is None:
            user = LtiUser(platform_id=platform_id, sub=person.sub, created_at=utcnow())
            session.add(user)
        user.name, user.email = person.name or user.name, person.email or user.email
        learner_id = None
        if kind == TokenKind.LEARNER:
            if user.learner_id is None:
                user.learner_id, how = _learner_for(session, platform_id, person)
                session.add(
                    AuditEvent(
                        actor="lti",
                        action="lti_learner_linked",
                        subject=user.learner_id,
                        detail={"platform": platform_id, "sub": person.sub, "how": how},
                    )
                )
            learner_id = user.learner_id
        token = session.get(Token, user.token_id) if user.token_id else None
        fresh = (
            token is not None
            and not token.revoked
            and token.kind == kind
            and token.learner_id == learner_id
        )
        if not fresh and launch:
            user.token_id = _new_session_token(session, kind, learner_id)
        if launch:
            user.last_launch_at = utcnow()
        session.flush()
        return Identity(user.token_id or 0, kind, learner_id), user.id
