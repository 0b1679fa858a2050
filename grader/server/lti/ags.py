"""Assignment and Grade Services: each LTI learner's score of each item goes to that item's line
item in every LMS course they launched from, in the background, retried with backoff.

How a score gets there, so that no request ever waits on a platform and no score is lost:

1. :func:`sync` reads the audit log past its cursor (``lti_cursors``) for the events that can
   change a score the LMS should show: ``graded`` (a grading ended), ``score_overridden`` and
   ``override_cleared``, ``feedback_released`` (manual release), ``quiz_submitted`` and
   ``quiz_expired``, an LTI sign-in or link, a roster sync. For each learner concerned it
   computes the item scores the gradebook shows (``items.score_of``: released, late penalty and
   overrides applied) and queues a post (``lti_score_posts``) when the score differs from the
   last one queued for that line item and user. The cursor advances only if no other process
   moved it meanwhile, so two servers on one database queue each score once.
2. :func:`post_due` claims due posts under a short lease, creates the line item when the launch
   named none (found by tag first, so a restart never makes a second column), and posts the
   score (``activityProgress: Completed``, ``gradingProgress: FullyGraded``). A failure is
   retried after ``BACKOFF[attempt]`` seconds, up to ``MAX_ATTEMPTS``, then left ``failed`` (on
   the LTI page, with the platform's answer). A newer score for the same pair supersedes an
   older one still waiting.

:class:`ScorePoster` runs both in a thread of ``grader serve``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from sqlalchemy import or_, select, update

from grader.server.lti import items, platforms
from grader.server.lti.services import ToolConnector
from grader.server.models import (
    AuditEvent,
    LtiContext,
    LtiCursor,
    LtiLineItem,
    LtiMember,
    LtiScorePost,
    LtiUser,
    Submission,
    utcnow,
)
from grader.server.state import EXTENSION, ServerState

log = logging.getLogger(__name__)

CURSOR = "ags"
SCORE_EVENTS = ("graded", "score_overridden", "override_cleared")  # subject: a submission
LEARNER_EVENTS = ("quiz_submitted", "quiz_expired", "lti_learner_linked")  # subject: a learner
SIGN_IN = "signed_in"  # actor: the learner
EVERYONE = ("feedback_released", "lti_roster_synced")  # every LTI learner
BATCH = 500  # audit events read per sync
BACKOFF = (5, 30, 120, 600, 1800, 3600, 3600, 3600)  # seconds before attempt n+1
MAX_ATTEMPTS = len(BACKOFF)
LEASE = dt.timedelta(seconds=120)  # a claimed post is someone's for this long
PENDING, POSTED, FAILED, SUPERSEDED = "pending", "posted", "failed", "superseded"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"


def _learners_of(server: ServerState, events: list[AuditEvent]) -> set[str]:
    """The learners whose item scores these events may have changed (LTI users only)."""
    with server.db.read() as session:
        linked = set(
            session.scalars(select(LtiUser.learner_id).where(LtiUser.learner_id.is_not(None)))
        )
        if not linked:
            return set()
        if any(e.action in EVERYONE for e in events):
            return linked
        found = {e.subject for e in events if e.action in LEARNER_EVENTS}
        found |= {e.actor for e in events if e.action == SIGN_IN}
        ids = [int(e.subject) for e in events if e.action in SCORE_EVENTS and e.subject.isdigit()]
        if ids:
            found |= set(
                session.scalars(select(Submission.learner_id).where(Submission.id.in_(ids)))
            )
    return found & linked


@dataclass(frozen=True)
class _Owed:
    context_pk: int
    user_pk: int
    item: str
    score: float
    maximum: float


def _owed(app: Flask, server: ServerState, learner_ids: set[str]) -> list[_Owed]:
    """Every (context, user, item) score these learners have now."""
    owed: list[_Owed] = []
    course = items.course_items(app, server)
    with server.db.read() as session:
        rows = session.execute(
            select(LtiUser.id, LtiUser.learner_id, LtiMember.context_pk)
            .join(LtiMember, LtiMember.user_pk == LtiUser.id)
            .where(LtiUser.learner_id.in_(sorted(learner_ids)))
        ).all()
    scores: dict[tuple[str, str], items.Score | None] = {}
    for user_pk, learner_id, context_pk in rows:
        for item in course:
            key = (learner_id, item.key)
            if key not in scores:
                scores[key] = items.score_of(app, server, item, learner_id)
            found = scores[key]
            if found is not None:
                owed.append(_Owed(context_pk, user_pk, item.key, found.score, found.maximum))
    return owed


def _queue(session: Any, owed: _Owed, now: dt.datetime) -> bool:
    """Queue one post unless the same score is the last one queued for its pair."""
    context = session.get(LtiContext, owed.context_pk)
    line = session.scalar(
        select(LtiLineItem).where(
            LtiLineItem.context_pk == owed.context_pk, LtiLineItem.item == owed.item
        )
    )
    if line is None:
        if not context.lineitems_url or LINEITEM_SCOPE not in (context.ags_scopes or []):
            return False  # no column for this item and none can be made: nothing to post to
        line = LtiLineItem(context_pk=owed.context_pk, item=owed.item)
        session.add(line)
        session.flush()
    last = session.scalars(
        select(LtiScorePost)
        .where(LtiScorePost.line_item_pk == line.id, LtiScorePost.user_pk == owed.user_pk)
        .where(LtiScorePost.status != SUPERSEDED)
        .order_by(LtiScorePost.id.desc())
        .limit(1)
    ).first()
    if last is not None and (last.score, last.max_score) == (owed.score, owed.maximum):
        return False
    session.execute(
        update(LtiScorePost)
        .where(LtiScorePost.line_item_pk == line.id, LtiScorePost.user_pk == owed.user_pk)
        .where(LtiScorePost.status == PENDING)
        .values(status=SUPERSEDED)
    )
    session.add(
        LtiScorePost(
            line_item_pk=line.id,
            user_pk=owed.user_pk,
            score=owed.score,
            max_score=owed.maximum,
            status=PENDING,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


def sync(app: Flask) -> int:
    """Queue the posts the audit log's new events call for; how many were queued."""
    server: ServerState = app.extensions[EXTENSION]
    with server.db.read() as session:
        cursor = session.get(LtiCursor, CURSOR)
        start = cursor.position if cursor else 0
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > start)
            .where(
                or_(
                    AuditEvent.action.in_((*SCORE_EVENTS, *LEARNER_EVENTS, *EVERYONE)),
                    AuditEvent.action == SIGN_IN,
                )
            )
            .order_by(AuditEvent.id)
            .limit(BATCH)
        ).all()
        if len(events) < BATCH:  # up to the log's end, so the cursor skips other events too
            end = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        else:
            end = events[-1].id
    end = max(end or 0, start)
    if end == start:
        return 0  # nothing new in the log: no write (this runs every second)
    owed = _owed(app, server, _learners_of(server, list(events))) if events else []
    queued = 0
    now = utcnow()
    with server.db.write() as session:
        cursor = session.get(LtiCursor, CURSOR)
        if (cursor.position if cursor else 0) != start:
            return 0  # another process read these events and queued their posts
        if cursor is None:
            session.add(LtiCursor(name=CURSOR, position=end))
        else:
            cursor.position = end
        for item in owed:
            queued += _queue(session, item, now)
    return queued


@dataclass(frozen=True)
class _Claimed:
    post_id: int
    attempt: int
    score: float
    maximum: float
    line_pk: int
    line_url: str
    item: str
    resource_link_id: str
    lineitems_url: str
    scopes: tuple[str, ...]
    platform_id: int
    sub: str


def _claim(server: ServerState, limit: int) -> list[_Claimed]:
    now = utcnow()
    claimed: list[_Claimed] = []
    with server.db.read() as session:  # the common case, nothing due, costs no write
        due = session.scalar(
            select(LtiScorePost.id)
            .where(LtiScorePost.status == PENDING, LtiScorePost.next_attempt_at <= now)
            .limit(1)
        )
    if due is None:
        return claimed
    with server.db.write() as session:
        query = (
            select(LtiScorePost, LtiLineItem, LtiContext, LtiUser)
            .join(LtiLineItem, LtiLineItem.id == LtiScorePost.line_item_pk)
            .join(LtiContext, LtiContext.id == LtiLineItem.context_pk)
            .join(LtiUser, LtiUser.id == LtiScorePost.user_pk)
            .where(LtiScorePost.status == PENDING, LtiScorePost.next_attempt_at <= now)
            .order_by(LtiScorePost.id)
            .limit(limit)
        )
        if not server.db.is_sqlite:
            query = query.with_for_update(of=LtiScorePost, skip_locked=True)
        for post, line, context, user in session.execute(query).all():
            post.attempts += 1
            post.next_attempt_at = now + LEASE
            claimed.append(
                _Claimed(
                    post.id,
                    post.attempts,
                    post.score,
                    post.max_score,
                    line.id,
                    line.url,
                    line.item,
                    line.resource_link_id,
                    context.lineitems_url,
                    tuple(context.ags_scopes or ()),
                    context.platform_id,
                    user.sub,
                )
            )
    return claimed


def _line_item_url(
    app: Flask, server: ServerState, post: _Claimed, ags: AssignmentsGradesService
) -> str:
    """The line item's URL, found by tag or created (its maximum: the score's) when unknown."""
    if post.line_url:
        return post.line_url
    item = items.find_item(app, server, post.item)
    title = item.title if item else post.item
    wanted = LineItem().set_tag(post.item).set_resource_id(post.item).set_label(title)
    wanted.set_score_maximum(post.maximum)
    if post.resource_link_id:
        wanted.set_resource_link_id(post.resource_link_id)
    found = ags.find_or_create_lineitem(wanted, find_by="tag")
    url = str(found.get_id() or "")
    with server.db.write() as session:
        session.execute(update(LtiLineItem).where(LtiLineItem.id == post.line_pk).values(url=url))
    return url


def _send(app: Flask, server: ServerState, http: Any, post: _Claimed) -> None:
    platform = platforms.by_id(server.db, post.platform_id)
    if platform is None:
        raise RuntimeError("the platform is no longer registered")
    connector = ToolConnector(platforms.registration(server.db, platform), http)
    scopes = list(post.scopes) or [SCORE_SCOPE]
    ags = AssignmentsGradesService(
        connector, {"scope": scopes, "lineitems": post.lineitems_url, "lineitem": post.line_url}
    )
    url = _line_item_url(app, server, post, ags)
    grade = (
        Grade()
        .set_score_given(post.score)
        .set_score_maximum(post.maximum)
        .set_timestamp(utcnow().isoformat(timespec="milliseconds"))
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_user_id(post.sub)
    )
    ags.put_grade(grade, LineItem({"id": url}))


def _settle(server: ServerState, post: _Claimed, error: str | None) -> None:
    now = utcnow()
    with server.db.write() as session:
        row = session.get(LtiScorePost, post.post_id)
        if row is None or row.status != PENDING:
            return
        if error is None:
            row.status, row.posted_at, row.error = POSTED, now, ""
            return
        row.error = error[:2000]
        if post.attempt >= MAX_ATTEMPTS:
            row.status = FAILED
            session.add(
                AuditEvent(
                    actor="server",
                    action="lti_score_failed",
                    subject=str(row.id),
                    detail={"error": error[:500], "attempts": post.attempt},
                )
            )
        else:
            row.next_attempt_at = now + dt.timedelta(seconds=BACKOFF[post.attempt - 1])


def post_due(app: Flask, http: Any, limit: int = 20) -> int:
    """Post the scores that are due; how many the platforms accepted."""
    server: ServerState = app.extensions[EXTENSION]
    accepted = 0
    for post in _claim(server, limit):
        try:
            _send(app, server, http, post)
        except Exception as error:  # the platform refused or is unreachable: retried later
            log.warning("posting a score to the LMS failed (attempt %d): %s", post.attempt, error)
            _settle(server, post, f"{type(error).__name__}: {error}")
        else:
            _settle(server, post, None)
            accepted += 1
    return accepted


class ScorePoster:
    """A thread that syncs and posts every ``poll_seconds`` (a daemon: the outbox is in the
    database, so stopping mid-way loses nothing)."""

    def __init__(self, app: Flask, http: Any, poll_seconds: float = 1.0) -> None:
        self.app = app
        self.http = http
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        sync(self.app)
        return post_due(self.app, self.http)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    self.step()
            except Exception:  # the database was briefly unreachable, ...: next round
                log.exception("LTI score poster step failed")
            self._stop.wait(self.poll_seconds)

    def start(self) -> ScorePoster:
        self._thread = threading.Thread(target=self._loop, name="lti-score-poster", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
