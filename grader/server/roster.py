"""Who is who: the roster of learners and their personal sign-in links.

Why links: a course of a few hundred has no accounts to manage; each learner gets one
unguessable link (``secrets.token_urlsafe(32)``, 256 bits), and the instructor one of their own.
Only a token's SHA-256 is stored, so a copy of the database signs no one in, and a link can be
revoked (``revoke``) or replaced (``relink``, which revokes the old one) without touching the
learner's submissions. Ids are normalised (NFKC, case-folded) so that ``Anna``, ``anna`` and a
full-width ``Ａnna`` are one learner, and a roster in which two rows normalise to the same id is
refused instead of silently merging two people.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from grader.server.db import Database
from grader.server.models import AuditEvent, Learner, Token, TokenKind
from grader.spreadsheet import csv_text

ID_PATTERN = re.compile(r"^[\w.@+-]{1,64}$")
REQUIRED_COLUMNS = ("id",)
KNOWN_COLUMNS = ("id", "name", "email")


class RosterError(ValueError):
    """A roster file or id that cannot be used; the message says which row and why."""


def normalise(raw: str) -> str:
    """The canonical form of a learner id: NFKC, case-folded, NFKC again (NFKC_Casefold)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw.strip()).casefold())
    if not ID_PATTERN.match(folded) or not folded.strip("."):
        raise RosterError(
            f"learner id {raw!r}: use 1 to 64 letters, digits and . _ @ + - (no spaces)"
        )
    return folded


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/signin/{token}"


@dataclass(frozen=True)
class Issued:
    """A learner (or the instructor, ``id`` empty) and the link just issued."""

    id: str
    name: str
    email: str
    link: str


@dataclass(frozen=True)
class RosterRow:
    id: str
    raw_id: str
    name: str
    email: str
    extra: dict[str, str]


def read_roster(text: str) -> list[RosterRow]:
    """Parse a roster CSV (``id,name,email`` and any other columns, which are kept)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise RosterError(f"the roster has no {', '.join(missing)} column (found: {columns})")
    rows: list[RosterRow] = []
    seen: dict[str, tuple[int, str]] = {}
    for line, record in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "").strip() for k, v in record.items()}
        if not any(record.values()):
            continue
        raw = record.get("id", "")
        try:
            ident = normalise(raw)
        except RosterError as error:
            raise RosterError(f"row {line}: {error}") from None
        if ident in seen:
            first_line, first_raw = seen[ident]
            raise RosterError(
                f"row {line}: id {raw!r} is the same learner as {first_raw!r} on row "
                f"{first_line} once normalised ({ident!r}); give them distinct ids"
            )
        seen[ident] = (line, raw)
        extra = {k: v for k, v in record.items() if k not in KNOWN_COLUMNS and k}
        if raw != ident:
            extra["roster_id"] = raw
        rows.append(RosterRow(ident, raw, record.get("name", ""), record.get("email", ""), extra))
    return rows


def _issue(session, kind: TokenKind, learner_id: str | None) -> str:
    token = new_token()
    session.add(Token(digest=digest(token), kind=kind, learner_id=learner_id))
    return token


def add_learners(
    db: Database, rows: Iterable[RosterRow], base_url: str, actor: str = "cli"
) -> tuple[list[Issued], list[str]]:
    """Create the learners not yet on the roster, each with a link; all or nothing.

    Returns (issued links, notes on rows skipped because that learner already exists). A row whose
    id normalises to an existing learner's id but was spelled differently is refused: it may be
    another person whose id only looks alike.
    """
    issued: list[Issued] = []
    notes: list[str] = []
    with db.write() as session:
        for row in rows:
            existing = session.get(Learner, row.id)
            if existing is not None:
                known_raw = existing.extra.get("roster_id", existing.id)
                if known_raw != row.raw_id:
                    raise RosterError(
                        f"id {row.raw_id!r} normalises to {row.id!r}, the id of learner "
                        f"{known_raw!r} already on the roster; give them distinct ids"
                    )
                notes.append(
                    f"{row.id} is already on the roster (kept; `grader roster relink` issues a "
                    "new link)"
                )
                continue
            session.add(Learner(id=row.id, name=row.name, email=row.email, extra=row.extra))
            session.flush()
            token = _issue(session, TokenKind.LEARNER, row.id)
            session.add(AuditEvent(actor=actor, action="learner_added", subject=row.id))
            issued.append(Issued(row.id, row.name, row.email, link(base_url, token)))
    return issued, notes


def add_roster_file(db: Database, path: Path, base_url: str) -> tuple[list[Issued], list[str]]:
    return add_learners(db, read_roster(Path(path).read_text(encoding="utf-8")), base_url)


def relink(db: Database, raw_id: str, base_url: str, actor: str = "cli") -> Issued:
    """Revoke a learner's links and issue a new one."""
    ident = normalise(raw_id)
    with db.write() as session:
        learner = session.get(Learner, ident)
        if learner is None:
            raise RosterError(f"no learner {ident!r} on the roster")
        _revoke(session, learner_id=ident)
        token = _issue(session, TokenKind.LEARNER, ident)
        session.add(AuditEvent(actor=actor, action="link_reissued", subject=ident))
        return Issued(ident, learner.name, learner.email, link(base_url, token))


def _revoke(session, *, learner_id: str | None = None, instructor: bool = False) -> int:
    statement = update(Token).where(Token.revoked.is_(False))
    if instructor:
        statement = statement.where(Token.kind == TokenKind.INSTRUCTOR)
    else:
        statement = statement.where(Token.learner_id == learner_id)
    return session.execute(statement.values(revoked=True)).rowcount


def revoke(
    db: Database, raw_id: str | None, *, instructor: bool = False, actor: str = "cli"
) -> int:
    """Revoke a learner's links (or every instructor link); the number revoked."""
    with db.write() as session:
        if instructor:
            count = _revoke(session, instructor=True)
            subject = "instructor"
        else:
            subject = normalise(raw_id or "")
            if session.get(Learner, subject) is None:
                raise RosterError(f"no learner {subject!r} on the roster")
            count = _revoke(session, learner_id=subject)
        session.add(AuditEvent(actor=actor, action="links_revoked", subject=subject))
        return count


def instructor_link(db: Database, base_url: str, actor: str = "cli") -> Issued:
    """A new instructor link (earlier ones keep working until revoked)."""
    with db.write() as session:
        token = _issue(session, TokenKind.INSTRUCTOR, None)
        session.add(AuditEvent(actor=actor, action="instructor_link_issued", subject="instructor"))
    return Issued("", "instructor", "", link(base_url, token))


def set_instructor_token(db: Database, token: str, actor: str = "quiz serve") -> None:
    """Make ``token`` the store's one instructor token (``quiz serve --instructor-token``; only
    its SHA-256 is kept): earlier instructor tokens stop working."""
    with db.write() as session:
        _revoke(session, instructor=True)
        if session.scalar(select(Token).where(Token.digest == digest(token))) is None:
            session.add(Token(digest=digest(token), kind=TokenKind.INSTRUCTOR, learner_id=None))
        else:
            session.execute(
                update(Token).where(Token.digest == digest(token)).values(revoked=False)
            )
        session.add(AuditEvent(actor=actor, action="instructor_link_issued", subject="instructor"))


def is_course(db: Database) -> bool:
    """Whether the store holds a course's roster (a learner with a sign-in link): then only
    learners on it take the graded quiz, and practice stays out of it."""
    with db.read() as session:
        return session.scalar(select(Token.id).where(Token.kind == TokenKind.LEARNER)) is not None


def on_roster(db: Database, raw_id: str) -> str:
    """The normalised id of a learner on the roster; RosterError when there is none."""
    ident = normalise(raw_id)
    with db.read() as session:
        if session.get(Learner, ident) is None:
            raise RosterError(f"no learner {ident!r} on the roster")
    return ident


def enrol(db: Database, raw_id: str, actor: str) -> str:
    """The learner ``raw_id`` of a store without a roster (``quiz take --db``, ``quiz serve``),
    added on first use without a link; their normalised id. RosterError for a malformed id."""
    ident = normalise(raw_id)
    try:
        with db.write() as session:
            if session.get(Learner, ident) is None:
                extra = {"roster_id": raw_id} if raw_id != ident else {}
                session.add(Learner(id=ident, name=raw_id, extra={**extra, "added_by": actor}))
                session.add(AuditEvent(actor=actor, action="learner_added", subject=ident))
    except IntegrityError:  # a parallel request added them first (PostgreSQL)
        pass
    return ident


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    token_id: int
    kind: TokenKind
    learner_id: str | None

    @property
    def is_instructor(self) -> bool:
        return self.kind == TokenKind.INSTRUCTOR


def identify(db: Database, token: str) -> Identity | None:
    """The identity of an unrevoked token, or None."""
    if not token or len(token) > 200:
        return None
    with db.read() as session:
        row = session.scalar(select(Token).where(Token.digest == digest(token)))
        if row is None or row.revoked:
            return None
        return Identity(row.id, TokenKind(row.kind), row.learner_id)


def identity_by_id(db: Database, token_id: int) -> Identity | None:
    """The identity of a session's token, None once it is revoked (relink signs sessions out)."""
    with db.read() as session:
        row = session.get(Token, token_id)
        if row is None or row.revoked:
            return None
        return Identity(row.id, TokenKind(row.kind), row.learner_id)


def to_csv(issued: list[Issued]) -> str:
    """The links as CSV (``grader roster add --format csv``), spreadsheet-safe."""
    return csv_text(
        ["id", "name", "email", "link"], ([r.id, r.name, r.email, r.link] for r in issued)
    )
