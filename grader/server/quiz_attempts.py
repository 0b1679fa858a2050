"""The quiz's one store: its rules on the server's database (start, submit, close at the time
limit, who may see the correct answers), for every delivery.

Why this module: the quiz package (``quiz/``) already loads the bank, draws a seeded variant and
scores it, and ``quiz.yaml`` already says the attempt limit, cooldown and pass mark; what the
store adds is *who* (the signed-in learner of the course server; a learner id typed at ``quiz take
--db`` or, in practice mode, on ``quiz serve``'s page), *where* (the server's database, SQLite or
PostgreSQL, the same tables whichever delivery) and *when* (an optional time limit). A service is
graded or practice (``practice=True``: ``quiz serve``, no sign-in): it sees only attempts of its
own kind, and practice attempts never reach a gradebook (``exports.quiz_score``). The limit and the cooldown are
decided inside one write transaction that first locks the learner's row, so two "start" requests
cannot both slip under the limit, and a submission is recorded once (``submitted_at IS NULL``).

Decisions, documented in the README:

- The seed of an attempt is ``secrets.randbelow(2**31)``, drawn here; no page or API shows it.
- Time limit (``quiz_time_limit_minutes``): ``deadline_at = started_at + limit``. Answers that
  arrive by the deadline plus ``GRACE`` (the network, the click) are scored; later ones are
  refused, and the attempt is closed as it stood at the limit: the web form keeps nothing on the
  server before it is sent, so that is with no answers (score 0), ``submitted_at`` = the deadline
  (the cooldown counts from there), ``expired`` set. An open attempt past its deadline is closed
  the same way as soon as the learner comes back to the quiz.
- The instructor may grant one learner another attempt (``quiz_grants``, audit-logged): their
  next start ignores the cooldown and the attempt limit, once.
- Correct answers, option feedback and explanations are shown to a learner only once all their
  allowed attempts (granted ones included) are used, or after the instructor released them (a ``QuizRelease`` row); in
  practice mode at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, select

from grader.server import quiz_grants
from grader.server.db import Database
from grader.server.models import (
    AuditEvent,
    Learner,
    QuizAttempt,
    QuizGrant,
    QuizRelease,
    utcnow,
)
from grader.server.roster import Identity
from quiz.bank import Bank, QuizDefinition
from quiz.model import Item
from quiz.scoring import score_quiz
from quiz.variants import build_quiz

GRACE = dt.timedelta(seconds=60)
WAIT = "The waiting time after your last attempt has not passed yet."
TIME_UP = (
    "The time for this attempt ran out before your answers arrived, so they were not accepted; "
    "the attempt was closed as it stood at the limit."
)


class QuizRefused(Exception):
    """The learner may not do this now; ``status`` is the HTTP status, ``retry_at`` when waiting
    helps."""

    def __init__(self, message: str, status: int, retry_at: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_at = retry_at


@dataclass(frozen=True)
class Policy:
    """The rules an attempt meets: quiz.yaml's, plus the server's optional time limit."""

    attempt_limit: int
    cooldown: dt.timedelta
    pass_mark: float
    time_limit: dt.timedelta | None

    @classmethod
    def of(
        cls,
        definition: QuizDefinition,
        time_limit_minutes: float | None = None,
        attempt_limit: int | None = None,
        cooldown_seconds: float | None = None,
    ) -> Policy:
        """quiz.yaml's rules, with what the caller overrides (``quiz serve --attempts``)."""
        cooldown = definition.cooldown_seconds if cooldown_seconds is None else cooldown_seconds
        return cls(
            attempt_limit=attempt_limit or definition.attempt_limit,
            cooldown=dt.timedelta(seconds=cooldown),
            pass_mark=definition.pass_mark,
            time_limit=dt.timedelta(minutes=time_limit_minutes) if time_limit_minutes else None,
        )

    def next_start(
        self, attempts: list[QuizAttempt], now: dt.datetime, granted: bool = False
    ) -> dt.datetime | None:
        """When a learner with these attempts may start another (None: never, all used);
        ``granted``: the instructor granted one not used yet, so now."""
        if granted:
            return now
        if len(attempts) >= self.attempt_limit:
            return None
        done = [a.submitted_at for a in attempts if a.submitted_at is not None]
        return max(done) + self.cooldown if done else now

    def check_start(self, attempts: list[QuizAttempt], now: dt.datetime) -> None:
        """QuizRefused when a learner with these attempts (none open, no grant) may not start
        another now: all used (403), or the cooldown not over (429)."""
        if len(attempts) >= self.attempt_limit:
            raise QuizRefused(f"All {self.attempt_limit} attempts have been used.", 403)
        if attempts:
            retry_at = max(a.submitted_at for a in attempts if a.submitted_at) + self.cooldown
            if now < retry_at:
                raise QuizRefused(WAIT, 429, retry_at)


class QuizService:
    """One quiz over the server's database: graded, or practice (``practice=True``)."""

    def __init__(
        self,
        db: Database,
        bank: Bank,
        definition: QuizDefinition,
        time_limit_minutes: float | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        *,
        practice: bool = False,
        attempt_limit: int | None = None,
        cooldown_seconds: float | None = None,
        assignment: str = "",
        default: bool = True,
    ) -> None:
        self.db = db
        self.bank = bank
        self.definition = definition
        self.clock = clock
        self.practice = practice
        self.policy = Policy.of(definition, time_limit_minutes, attempt_limit, cooldown_seconds)
        self.items = lru_cache(maxsize=1024)(self._items)
        # whose quiz it is: the assignment its rows name (the default one's rows: also "")
        self.assignment = assignment
        self.names = (assignment, "") if default else (assignment,)

    @property
    def link(self) -> str | None:
        """The ``assignment`` query value of this quiz's pages (None: the default quiz's)."""
        return None if "" in self.names else self.assignment

    def _mine(self) -> Any:
        """The condition that keeps this service to attempts of its kind and its assignment."""
        return and_(QuizAttempt.practice.is_(self.practice), QuizAttempt.assignment.in_(self.names))

    def _items(self, seed: int) -> tuple[Item, ...]:
        return tuple(build_quiz(self.bank, self.definition, seed))

    # ------------------------------------------------------------------------------- reading

    def _attempts(self, *where: Any, order: tuple[Any, ...]) -> list[QuizAttempt]:
        query = select(QuizAttempt).where(self._mine(), *where).order_by(*order)
        with self.db.read() as session:
            return list(session.scalars(query))

    def attempts_of(self, learner_id: str) -> list[QuizAttempt]:
        self.close_expired(learner_id)
        return self._attempts(QuizAttempt.learner_id == learner_id, order=(QuizAttempt.number,))

    def attempt_for(self, viewer: Identity, attempt_id: int) -> QuizAttempt | None:
        """One attempt, or None when it does not exist or belongs to another learner (the
        caller answers 404 either way)."""
        if viewer.learner_id is not None:
            self.close_expired(viewer.learner_id)
        with self.db.read() as session:
            query = select(QuizAttempt).where(QuizAttempt.id == attempt_id, self._mine())
            if not viewer.is_instructor:
                query = query.where(QuizAttempt.learner_id == viewer.learner_id)
            return session.scalar(query)

    def all_attempts(self) -> list[QuizAttempt]:
        return self._attempts(order=(QuizAttempt.started_at, QuizAttempt.id))

    def released_at(self) -> dt.datetime | None:
        with self.db.read() as session:
            return session.scalar(
                select(func.min(QuizRelease.released_at)).where(
                    QuizRelease.assignment.in_(self.names)
                )
            )

    def answers_visible(self, viewer: Identity, learner_id: str) -> bool:
        """Correct answers show in practice, to the instructor, to a learner whose attempts are
        all used, and to everyone once the instructor released them."""
        if self.practice or viewer.is_instructor or self.released_at() is not None:
            return True
        done = len(
            self._attempts(
                QuizAttempt.learner_id == learner_id,
                QuizAttempt.submitted_at.is_not(None),
                order=(QuizAttempt.id,),
            )
        )
        granted = len(quiz_grants.grants_of(self.db, learner_id, self.names))
        return done >= self.policy.attempt_limit + granted

    # ------------------------------------------------------------------------------- writing

    def start(self, learner_id: str) -> QuizAttempt:
        """The learner's open attempt, or a new one if the limit and the cooldown allow it."""
        self.close_expired(learner_id)
        now = self.clock()
        with self.db.write() as session:
            # lock the learner's row: on PostgreSQL this serialises starts of one learner
            session.scalar(select(Learner).where(Learner.id == learner_id).with_for_update())
            every = list(
                session.scalars(
                    select(QuizAttempt)
                    .where(QuizAttempt.learner_id == learner_id)
                    .order_by(QuizAttempt.number)
                )
            )
            of_quiz = [a for a in every if a.assignment in self.names]
            attempts = [a for a in of_quiz if a.practice == self.practice]
            open_ = [a for a in attempts if a.submitted_at is None]
            if open_:
                return open_[-1]
            grant = None if self.practice else quiz_grants.waiting(session, learner_id, self.names)
            if grant is None:
                self.policy.check_start(attempts, now)
            limit_delta = self.policy.time_limit
            attempt = QuizAttempt(
                learner_id=learner_id,
                # per learner and quiz, practice and graded alike (max: numbers stored before
                # each quiz had its own numbering count every quiz's attempts)
                number=max((a.number for a in of_quiz), default=0) + 1,
                practice=self.practice,
                seed=secrets.randbelow(2**31),
                bank=self.bank.fingerprint,
                started_at=now,
                deadline_at=now + limit_delta if limit_delta else None,
                assignment=self.assignment,
            )
            session.add(attempt)
            session.add(_started_event(attempt, grant))
            session.flush()
            quiz_grants.use(grant, attempt.id)
            return attempt

    def submit(self, attempt: QuizAttempt, answers: Mapping[str, Any]) -> QuizAttempt:
        """Score and record ``answers`` once. After the deadline (and its grace) the answers
        are refused: the attempt is closed as it stood at the limit and QuizRefused raised."""
        now = self.clock()
        if attempt.deadline_at is not None and now > attempt.deadline_at + GRACE:
            self.close_expired(attempt.learner_id)
            raise QuizRefused(TIME_UP, 409)
        self._record(attempt.id, answers, now, expired=False)
        return attempt

    def close_expired(self, learner_id: str) -> int:
        """Close the learner's open attempts whose deadline (plus grace) has passed."""
        now = self.clock()
        with self.db.read() as session:
            stale = session.scalars(
                select(QuizAttempt).where(
                    QuizAttempt.learner_id == learner_id,
                    QuizAttempt.submitted_at.is_(None),
                    QuizAttempt.deadline_at.is_not(None),
                    self._mine(),
                )
            ).all()
        closed = 0
        for attempt in stale:
            assert attempt.deadline_at is not None
            if now > attempt.deadline_at + GRACE:
                closed += self._record(attempt.id, {}, attempt.deadline_at, expired=True)
        return closed

    def _record(
        self, attempt_id: int, answers: Mapping[str, Any], when: dt.datetime, *, expired: bool
    ) -> bool:
        with self.db.write() as session:
            attempt = session.scalar(
                select(QuizAttempt).where(QuizAttempt.id == attempt_id).with_for_update()
            )
            if attempt is None or attempt.submitted_at is not None:
                return False  # a parallel submit won: its result stands
            result = score_quiz(
                self.items(attempt.seed), answers, attempt.seed, self.policy.pass_mark
            )
            attempt.submitted_at = when
            attempt.expired = expired
            attempt.score = result.score
            attempt.max_score = result.max_score
            attempt.passed = result.passed
            attempt.result = result.to_dict()
            session.add(_recorded_event(attempt, expired))
            return True

    def release(self, actor: str = "instructor") -> None:
        """Show the correct answers and explanations to every learner from now on."""
        with self.db.write() as session:
            session.add(
                QuizRelease(actor=actor, released_at=self.clock(), assignment=self.assignment)
            )
            session.add(
                AuditEvent(
                    actor=actor, action="quiz_answers_released", detail=_named(self.assignment, {})
                )
            )


def _named(assignment: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An event's ``detail`` with the quiz's assignment, so that the event says whose quiz it
    was (each quiz numbers its own attempts)."""
    return {**detail, "assignment": assignment} if assignment else detail


def _started_event(attempt: QuizAttempt, grant: QuizGrant | None) -> AuditEvent:
    """The audit event of an attempt just started (with the instructor's grant it used)."""
    return AuditEvent(
        actor=attempt.learner_id,
        action="quiz_practice_started" if attempt.practice else "quiz_started",
        subject=str(attempt.number),
        detail=_named(attempt.assignment, {"granted_by": grant.actor} if grant else {}),
    )


def _recorded_event(attempt: QuizAttempt, expired: bool) -> AuditEvent:
    """The audit event of an attempt just scored: submitted by its learner, or closed by the
    server at its time limit."""
    return AuditEvent(
        actor=attempt.learner_id if not expired else "server",
        action="quiz_expired" if expired else "quiz_submitted",
        subject=attempt.learner_id,
        detail=_named(attempt.assignment, {"attempt": attempt.number, "score": attempt.score}),
    )
