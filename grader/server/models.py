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
    # the assignment's name (settings.AssignmentPolicy.name); "": the course's default (first)
    # assignment, as rows from before a server had several
    assignment: Mapped[str] = mapped_column(String(200), default="", server_default="", index=True)
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
    # numbered per learner and quiz (the attempt's assignment), practice and graded alike
    __table_args__ = (
        UniqueConstraint(
            "learner_id", "assignment", "number", name="uq_quiz_attempts_learner_quiz_number"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per learner and quiz
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
    # the assignment whose quiz this is; "": the course's default (first) assignment, whose
    # quiz is the course's quiz (the only value written while a course has one quiz)
    assignment: Mapped[str] = mapped_column(String(200), default="", server_default="")


class QuizGrant(Base):
    """The instructor let one learner start another graded quiz attempt now, past the cooldown
    and the attempt limit (``QuizService.grant``). ``attempt_id`` is the attempt it let them
    start; None while it is unused."""

    __tablename__ = "quiz_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("quiz_attempts.id"), default=None)
    # the assignment whose quiz it is, as QuizAttempt.assignment ("": the default one's)
    assignment: Mapped[str] = mapped_column(String(200), default="", server_default="")


class Extension(Base):
    """The instructor gave one learner more time (a later deadline) and/or more submissions a
    day for one assignment. Rows are never updated: the latest of a learner and an assignment
    is in force (``grader.server.extensions``), so the table is their whole history."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    assignment: Mapped[str] = mapped_column(String(200))  # as Submission.assignment
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    extra_per_day: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200), default="instructor")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizRelease(Base):
    """The instructor released the correct answers and explanations of one assignment's quiz to
    every learner (the flag is that a row exists; the rows keep who released and when)."""

    __tablename__ = "quiz_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    # the assignment whose quiz's answers were released, as QuizAttempt.assignment
    assignment: Mapped[str] = mapped_column(String(200), default="", server_default="")


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


# LTI 1.3 (grader.server.lti): the platforms that launch the course, the tool's own keys, who
# launched, the courses and resource links they came from, and the scores owed to each platform.


class LtiPlatform(Base):
    """A platform registration (``grader lti register``): an LMS's issuer and the client id it
    gave this tool, with its OIDC, token and key-set URLs. Nothing here is secret: LTI 1.3 signs
    with key pairs, and the platform's public keys are fetched from ``key_set_url``."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    key_set_url: Mapped[str] = mapped_column(String(1000))
    auth_audience: Mapped[str] = mapped_column(String(1000), default="")  # "": the token URL
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    deployments: Mapped[list[LtiDeployment]] = relationship(back_populates="platform")


class LtiDeployment(Base):
    """A deployment id of a platform: launches naming any other deployment are refused."""

    __tablename__ = "lti_deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[LtiPlatform] = relationship(back_populates="deployments")


class LtiKey(Base):
    """One of the tool's RSA keys. The newest unretired key signs; every unretired key is
    published at ``/lti/jwks.json``, so that a rotation never breaks what the old key signed."""

    __tablename__ = "lti_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class LtiLaunchValue(Base):
    """A value of an OIDC login in progress (state, nonce, the launch's claims), keyed as the LTI
    library keys them, kept until ``expires_at``: in the database, so that any server process
    can finish a login another one started."""

    __tablename__ = "lti_launch_values"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class LtiUsedNonce(Base):
    """A nonce of an accepted launch: the same id_token presented again is a replay."""

    __tablename__ = "lti_used_nonces"
    __table_args__ = (UniqueConstraint("platform_id", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"))
    nonce: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LtiUser(Base):
    """A platform's user (``sub``) and who they are here: a roster learner, or an instructor.
    ``token_id`` is the session handle their launches sign in with (a token nobody holds)."""

    __tablename__ = "lti_users"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"), index=True)
    sub: Mapped[str] = mapped_column(String(255))
    learner_id: Mapped[str | None] = mapped_column(
        ForeignKey("learners.id"), index=True, default=None
    )
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_launch_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class LtiContext(Base):
    """A course of a platform (the launch's context claim) and its services' URLs."""

    __tablename__ = "lti_contexts"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(200))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    lineitems_url: Mapped[str] = mapped_column(String(1000), default="")
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    memberships_url: Mapped[str] = mapped_column(String(1000), default="")
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class LtiMember(Base):
    """An LTI user belongs to a context (a launch from it, or the roster sync): their scores
    go to that context's line items."""

    __tablename__ = "lti_members"
    __table_args__ = (UniqueConstraint("context_pk", "user_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id"), index=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("lti_users.id"), index=True)


class LtiLineItem(Base):
    """The gradebook column of one course item (an assignment or its quiz) in one context: the
    resource link's own line item when the launch names it, else one found or created by tag."""

    __tablename__ = "lti_line_items"
    __table_args__ = (UniqueConstraint("context_pk", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id"), index=True)
    item: Mapped[str] = mapped_column(String(200))  # grader.server.lti.items key
    resource_link_id: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(String(1000), default="")  # "": not created yet


class LtiScorePost(Base):
    """A score owed to a platform (an outbox row): posted in the background, retried with
    backoff, never by a request thread. Rows are kept as the history of what was sent."""

    __tablename__ = "lti_score_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_item_pk: Mapped[int] = mapped_column(ForeignKey("lti_line_items.id"), index=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("lti_users.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class LtiCursor(Base):
    """How far the score sync has read the audit log (one row per reader)."""

    __tablename__ = "lti_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class SignInSession(Base):
    """A browser's signed-in session, opened by a sign-in link (or another sign-in path): the
    session cookie holds a random key whose SHA-256 is ``id``. Signing out ends it here, so the
    cookie no longer signs anyone in, wherever a copy of it is; revoking the link it came from
    (``Token.revoked``) ends it too."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
