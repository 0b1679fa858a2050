"""Names and Role Provisioning Services: the instructor's "sync the roster" action reads the LMS
course's members and makes each active learner a learner here (as their first launch would:
``identities``), a member of that course, so that scores go to them before they ever launch.

Why only on the instructor's action, and only learners: a roster is the instructor's decision
(who appears in the gradebook); instructors sign in by launching, and a member who is neither
(a mentor, an observer) has nothing to do here. Learners who left the LMS course stay on the
roster with their work; the sync never deletes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pylti1p3.names_roles import NamesRolesProvisioningService
from sqlalchemy import select

from grader.server.db import Database
from grader.server.lti import identities, platforms
from grader.server.lti.services import ToolConnector
from grader.server.models import AuditEvent, LtiContext, LtiMember, LtiUser, TokenKind, utcnow


class SyncError(RuntimeError):
    """The roster could not be read; the message says why in plain words."""


def _member_person(member: dict[str, Any]) -> identities.Person:
    name = member.get("name") or " ".join(
        p for p in (member.get("given_name"), member.get("family_name")) if p
    )
    return identities.Person(
        sub=str(member.get("user_id") or ""),
        name=str(name or "")[:200],
        email=str(member.get("email") or "")[:320],
        sourced_id=str(member.get("lis_person_sourcedid") or ""),
    )


def sync_roster(db: Database, http: Any, context_pk: int, actor: str = "instructor") -> Counter:
    """Read the members of an LMS course and add its learners; counts by outcome (``added``:
    new here, ``known``: already linked, ``skipped``: not an active learner)."""
    with db.read() as session:
        context = session.get(LtiContext, context_pk)
        if context is None:
            raise SyncError("there is no such LMS course")
        url, platform_id = context.memberships_url, context.platform_id
        before = set(
            session.scalars(
                select(LtiUser.sub).where(
                    LtiUser.platform_id == platform_id, LtiUser.learner_id.is_not(None)
                )
            )
        )
    if not url:
        raise SyncError(
            "this LMS course offers no Names and Roles service (enable it in the tool's "
            "settings in the LMS, then launch once as an instructor)"
        )
    platform = platforms.by_id(db, platform_id)
    if platform is None:
        raise SyncError("the LMS of this course is no longer registered")
    service = NamesRolesProvisioningService(
        ToolConnector(platforms.registration(db, platform), http),
        {"context_memberships_url": url, "service_versions": ["2.0"]},
    )
    try:
        members = service.get_members()
    except Exception as error:  # the platform refused, or is unreachable
        raise SyncError(f"the LMS did not give its roster: {error}") from error
    counts: Counter = Counter()
    for member in members:
        person = _member_person(member)
        active = str(member.get("status") or "Active") == "Active"
        try:
            learner = identities.kind_of(member.get("roles") or []) == TokenKind.LEARNER
        except identities.NotAllowed:
            learner = False
        if not (active and learner and person.sub):
            counts["skipped"] += 1
            continue
        _, user_pk = identities.identify(db, platform_id, person, TokenKind.LEARNER, launch=False)
        with db.write() as session:
            joined = session.scalar(
                select(LtiMember).where(
                    LtiMember.context_pk == context_pk, LtiMember.user_pk == user_pk
                )
            )
            if joined is None:
                session.add(LtiMember(context_pk=context_pk, user_pk=user_pk))
        counts["known" if person.sub in before else "added"] += 1
    with db.write() as session:
        row = session.get(LtiContext, context_pk)
        if row is not None:
            row.synced_at = utcnow()
        session.add(
            AuditEvent(
                actor=actor,
                action="lti_roster_synced",
                subject=str(context_pk),
                detail=dict(counts),
            )
        )
    return counts
