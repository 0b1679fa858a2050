"""Another graded quiz attempt for one learner, granted by the instructor: their next start
ignores the cooldown and the attempt limit, once.

Why rows of their own (``quiz_grants``) and not a changed limit: a grant is one learner's, it is
used up by the attempt it lets them start (``attempt_id``), and the table with the audit event
written beside it says who allowed what, when and why, as overrides do.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.server.db import Database
from grader.server.models import AuditEvent, Learner, QuizGrant


class GrantRefused(ValueError):
    """No grant stored; the message says why."""


def waiting(session: Session, learner_id: str, names: tuple[str, ...] = ("",)) -> QuizGrant | None:
    """The learner's oldest grant not used yet of the quiz whose rows carry ``names``
    (``assignments.stored_names``; the caller's transaction uses it up)."""
    return session.scalars(
        select(QuizGrant)
        .where(
            QuizGrant.learner_id == learner_id,
            QuizGrant.attempt_id.is_(None),
            QuizGrant.assignment.in_(names),
        )
        .order_by(QuizGrant.id)
        .limit(1)
    ).first()


def use(grant: QuizGrant | None, attempt_id: int) -> None:
    """Mark ``grant`` (when there is one) used by the attempt it let the learner start."""
    if grant is not None:
        grant.attempt_id = attempt_id


def grants_of(db: Database, learner_id: str, names: tuple[str, ...] = ("",)) -> list[QuizGrant]:
    """Every grant of the learner of the quiz whose rows carry ``names``, oldest first."""
    with db.read() as session:
        return list(
            session.scalars(
                select(QuizGrant)
                .where(QuizGrant.learner_id == learner_id, QuizGrant.assignment.in_(names))
                .order_by(QuizGrant.id)
            )
        )


def grant(
    db: Database,
    learner_id: str,
    comment: str,
    now: dt.datetime,
    actor: str = "instructor",
    names: tuple[str, ...] = ("",),
) -> QuizGrant:
    """Store a grant of another attempt at the quiz whose rows carry ``names`` (the first is
    written) and its audit event in one transaction. A grant not used yet is not doubled (a
    second click): GrantRefused; an unknown learner: LookupError."""
    comment = (comment or "").strip()[:2000]
    with db.write() as session:
        learner = session.scalar(select(Learner).where(Learner.id == learner_id).with_for_update())
        if learner is None:
            raise LookupError(learner_id)
        if waiting(session, learner_id, names) is not None:
            raise GrantRefused("this learner already has another attempt granted, not started yet")
        row = QuizGrant(
            learner_id=learner_id, granted_at=now, actor=actor, comment=comment, assignment=names[0]
        )
        session.add(row)
        session.add(
            AuditEvent(
                actor=actor,
                action="quiz_attempt_granted",
                subject=learner_id,
                detail={"comment": comment, "assignment": names[0]},
            )
        )
        session.flush()
        return row
