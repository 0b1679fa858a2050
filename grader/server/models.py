"""The course server's tables as typed SQLAlchemy 2 ORM classes.

Why a module of its own: the web app, the roster commands, the grading queue and the Alembic
migrations all name these tables; keeping them in one leaf module (importing nothing else of the
server) lets each of those import them without importing one another. The schema itself is made
by the Alembic migrations in ``migrations/``, never by ``create_all``: a test checks that the
migrations at head and these classes agree.

Times are stored in UTC. SQLite has no time zone type, so :class:`UTCDateTime` stores naive UTC
there and hands back aware datetimes everywhere, so that code never compares naive and aware.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, backref, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every database (naive UTC on SQLite, timestamptz elsewhere)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class TokenKind(enum.StrEnum):
    LEARNER = "learner"
    INSTRUCTOR = "instructor"


class JobStatus(enum.StrEnum):
    """A job's life: queued -> grading -> one of grader.results.Status's values (graded, ...)."""

    QUEUED = "queued"
    GRADING = "grading"


class Base(DeclarativeBase):
    pass


class Learner(Base):
    """One learner of the roster. ``id`` is NFKC-normalised and casefolded (``roster.normalise``)."""

    __tablename__ = "learners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the roster's other columns
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    submissions: Mapped[list[Submission]] = relationship(back_populates="learner")


class Token(Base):
    """A sign-in link's token: only its SHA-256 is stored, so the database does not sign anyone in."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # TokenKind
    learner_id: Mapped[str | None] = mapped_column(
        ForeignKey("learners.id"), index=True, default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Submission(Base):
    """An uploaded notebook, stored at ``DIR/<path>`` before this row commits."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("learner_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per learner
    path: Mapped[str] = mapped_column(String(500))  # relative to DIR
    sha256: Mapped[str] = mapped_column(String(64))
    # the uploaded file's own name (the report's header); stored as <number>.ipynb whatever it is
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    # feedback_release: manual -> hidden from the learner until the instructor releases it
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    learner: Mapped[Learner] = relationship(back_populates="submissions")
    jobs: Mapped[list[Job]] = relationship(back_populates="submission", order_by="Job.id")


class Job(Base):
    """One grading of a submission (a regrade adds a job). Claimed under a lease (``queue``)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    result_dir: Mapped[str | None] = mapped_column(String(500), default=None)  # relative to DIR
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    submission: Mapped[Submission] = relationship(back_populates="jobs")


class AuditEvent(Base):
    """Who did what, when: sign-ins, links issued or revoked, uploads, gradings, regrades."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # learner id, "instructor", "server", "cli"
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class QuizAttempt(Base):
    """One quiz attempt (``quiz_attempts.QuizService``): graded (a signed-in learner of the
    course server, or ``quiz take --db``), or practice (``quiz serve``: no sign-in, never
    counted in a gradebook).

    The seed is drawn by the server and never shown; the quiz is rebuilt from it with the quiz
    package. ``deadline_at`` is set when the course has a time limit; ``expired`` marks an attempt
    closed by the server at that limit (its late answers were refused)."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (UniqueConstraint("learner_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per learner
    seed: Mapped[int] = mapped_column(Integer)
    bank: Mapped[str] = mapped_column(String(64))  # the bank's fingerprint
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    passed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    practice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class QuizRelease(Base):
    """The instructor released the quiz's correct answers and explanations to every learner (the
    flag is that a row exists; the rows keep who released and when)."""

    __tablename__ = "quiz_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))


class Override(Base):
    """An instructor's manual score for one check of a submission, or for its total
    (``check_name`` empty), with the comment the learner reads. Rows are never updated: a new
    override of the same check supersedes the older one (the latest wins), and a row whose
    ``score`` is None clears it, so the table is the override's whole history.
    ``grader.server.overrides`` applies them; the report on disk is never touched."""

    __tablename__ = "overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    check_name: Mapped[str] = mapped_column(String(200), default="")  # "": the total
    score: Mapped[float | None] = mapped_column(Float, default=None)  # None: cleared
    comment: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="instructor")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    submission: Mapped[Submission] = relationship(
        backref=backref("overrides", order_by="Override.id")
    )
