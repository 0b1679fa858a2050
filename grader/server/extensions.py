"""Per-learner extensions: the instructor gives one learner a later deadline and/or more
submissions a day for one assignment.

Why rows that are never updated (``models.Extension``): the latest row of a learner and an
assignment is in force, older ones are its history, and each is written with its audit event in
one transaction, as the instructor's overrides and quiz grants are. The upload policy
(``submissions``) reads the one in force inside its own write transaction, so an extension
granted a second before an upload counts for it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.server.assignments import of_assignment
from grader.server.db import Database
from grader.server.models import AuditEvent, Extension, Learner
from grader.server.settings import AssignmentPolicy, Settings

MAX_EXTRA_PER_DAY = 100  # more is a typo: the policy's purpose is to bound gradings a day


class ExtensionRefused(ValueError):
    """No extension stored; the message says why."""


def read_deadline(text: str) -> dt.datetime | None:
    """The new deadline as the instructor's form sends it (``2027-02-01T23:59``, UTC unless it
    names a zone); None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ExtensionRefused(
            f"{text!r} is not a date and time (write it as 2027-02-01T23:59, in UTC)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def read_count(text: str) -> int:
    """Extra submissions a day as the form sends them ("" : none)."""
    text = (text or "").strip()
    try:
        return int(text) if text else 0
    except ValueError:
        raise ExtensionRefused(f"{text!r} is not a whole number of submissions") from None


def in_force(
    session: Session, settings: Settings, learner_id: str, assignment: str
) -> Extension | None:
    """The learner's extension of ``assignment`` in force (the latest), None without one."""
    return session.scalars(
        select(Extension)
        .where(
            Extension.learner_id == learner_id,
            of_assignment(Extension.assignment, settings, assignment),
        )
        .order_by(Extension.id.desc())
        .limit(1)
    ).first()


def extensions_of(db: Database, settings: Settings, learner_id: str) -> dict[str, Extension]:
    """The learner's extensions in force, by assignment name (only those that change anything)."""
    found: dict[str, Extension] = {}
    with db.read() as session:
        for policy in settings.course_assignments():
            row = in_force(session, settings, learner_id, policy.name)
            if row is not None and (row.deadline is not None or row.extra_per_day):
                found[policy.name] = row
    return found


def grant(
    db: Database,
    settings: Settings,
    learner_id: str,
    policy: AssignmentPolicy,
    deadline: dt.datetime | None,
    extra_per_day: int,
    comment: str = "",
    actor: str = "instructor",
) -> Extension:
    """Store the extension in force from now on (deadline None and 0 extra: none any more)
    with its audit event. An unknown learner: LookupError; a deadline before the assignment's
    own or a count out of range: ExtensionRefused."""
    comment = (comment or "").strip()[:2000]
    if deadline is not None and deadline.tzinfo is None:
        raise ExtensionRefused("the new deadline needs a time zone")
    if policy.deadline is not None and deadline is not None and deadline <= policy.deadline:
        raise ExtensionRefused(
            f"the new deadline must be after the assignment's own, {policy.deadline:%Y-%m-%d %H:%M} UTC"
        )
    if not 0 <= extra_per_day <= MAX_EXTRA_PER_DAY:
        raise ExtensionRefused(f"extra submissions a day must be between 0 and {MAX_EXTRA_PER_DAY}")
    with db.write() as session:
        learner = session.scalar(select(Learner).where(Learner.id == learner_id).with_for_update())
        if learner is None:
            raise LookupError(learner_id)
        row = Extension(
            learner_id=learner_id,
            assignment=policy.name,
            deadline=deadline,
            extra_per_day=extra_per_day,
            actor=actor,
            comment=comment,
        )
        session.add(row)
        session.add(
            AuditEvent(
                actor=actor,
                action="extension_granted",
                subject=learner_id,
                detail={
                    "assignment": policy.name,
                    "deadline": deadline.isoformat() if deadline else None,
                    "extra_per_day": extra_per_day,
                    "comment": comment,
                },
            )
        )
        session.flush()
        return row
