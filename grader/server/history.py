"""A learner's history in words: each audit event of the instructor's learner page as a sentence
("Graded: 6 / 10 (grading 12, attempt 1)") instead of the event's raw JSON.

Why a module: the audit log stores facts as data (an action and a detail mapping), which is what
the LMS score sync and the tests read; the page is read by a person. One table here says how each
action reads; an action it does not know reads as its name and its details, key by key, so a new
event never breaks the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from grader.server.models import AuditEvent


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _submission(event: AuditEvent, numbers: Mapping[str, int]) -> str:
    number = numbers.get(event.subject)
    return f"submission {number}" if number is not None else f"submission id {event.subject}"


def _score(detail: Mapping[str, Any]) -> str:
    return f"{_num(detail.get('score'))} / {_num(detail.get('max_score'))}"


def _extension(event: AuditEvent) -> str:
    """An extension granted (a later deadline, more submissions a day) or ended, and why."""
    detail = event.detail
    name, extra = detail["assignment"], detail.get("extra_per_day") or 0
    deadline = detail.get("deadline")
    why = f": {detail['comment']}" if detail.get("comment") else ""
    more = f"{extra} more submission{'s' if extra != 1 else ''} a day"
    if deadline:
        when = dt.datetime.fromisoformat(deadline).astimezone(dt.UTC)
        also = f", with {more}," if extra else ""
        return (
            f"Deadline of {name} extended to {when:%Y-%m-%d %H:%M} UTC{also} by {event.actor}{why}."
        )
    if extra:
        return f"{more.capitalize()} for {name}, granted by {event.actor}{why}."
    return f"Extension of {name} ended by {event.actor}{why}; the deadline and daily limit of the course apply."


def _quiz(event: AuditEvent) -> str:
    """Which quiz an event concerns: each assignment's quiz numbers its own attempts."""
    name = event.detail.get("assignment")
    return f"Quiz of {name}" if name else "Quiz"


Describe = Callable[[AuditEvent, Mapping[str, int]], str]

SENTENCES: dict[str, Describe] = {
    "signed_in": lambda e, n: "Signed in.",
    "submitted": lambda e, n: (
        f"Uploaded {_submission(e, n)}{' after the deadline' if e.detail.get('late') else ''}"
        f" ({_num(e.detail.get('bytes'))} bytes)."
    ),
    "imported": lambda e, n: f"{_submission(e, n).capitalize()} imported from an LMS export.",
    "grading_started": lambda e, n: (
        f"Grading of {_submission(e, n)} started (attempt {_num(e.detail.get('attempt'))})."
    ),
    "grading_requeued": lambda e, n: (
        f"Grading of {_submission(e, n)} queued again"
        + (f": {e.detail['reason']}" if e.detail.get("reason") else "")
        + "."
    ),
    "graded": lambda e, n: f"{_submission(e, n).capitalize()} graded: {_score(e.detail)}.",
    "score_overridden": lambda e, n: (
        f"Score of {_submission(e, n)}, {e.detail.get('check') or 'total'}, changed from "
        f"{_num(e.detail.get('original'))} to {_num(e.detail.get('score'))} by {e.actor}: "
        f"{e.detail.get('comment', '')}"
    ),
    "override_cleared": lambda e, n: (
        f"Override of {_submission(e, n)}, {e.detail.get('check') or 'total'}, removed by "
        f"{e.actor}."
    ),
    "quiz_started": lambda e, n: (
        f"{_quiz(e)}: attempt {e.subject} started"
        + (" (granted by the instructor)" if e.detail.get("granted_by") else "")
        + "."
    ),
    "quiz_submitted": lambda e, n: (
        f"{_quiz(e)}: attempt {_num(e.detail.get('attempt'))} submitted, "
        f"{_num(e.detail.get('score'))} points."
    ),
    "quiz_expired": lambda e, n: (
        f"{_quiz(e)}: attempt {_num(e.detail.get('attempt'))} closed when its time ran out, "
        f"{_num(e.detail.get('score'))} points."
    ),
    "quiz_attempt_granted": lambda e, n: (
        f"{_quiz(e)}: another attempt granted by {e.actor}"
        + (f": {e.detail['comment']}" if e.detail.get("comment") else "")
        + "."
    ),
    "extension_granted": lambda e, n: _extension(e),
    "learner_added": lambda e, n: "Added to the roster; a sign-in link was issued.",
    "link_reissued": lambda e, n: "A new sign-in link was issued (the old one no longer works).",
    "links_revoked": lambda e, n: "Sign-in links revoked.",
    "lti_learner_linked": lambda e, n: "Linked to their account in the LMS (first launch).",
}


def _plain(event: AuditEvent) -> str:
    """An action without a sentence: its name and its details, key by key."""
    words = event.action.replace("_", " ").capitalize()
    details = "; ".join(f"{key}: {value}" for key, value in sorted((event.detail or {}).items()))
    return f"{words}{' (' + details + ')' if details else ''}."


def describe_event(event: AuditEvent, numbers: Mapping[str, int] | None = None) -> str:
    """The event as a sentence; ``numbers`` maps submission ids to the learner's numbering."""
    sentence = SENTENCES.get(event.action)
    if sentence is None:
        return _plain(event)
    try:
        return sentence(event, numbers or {})
    except (
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
    ):  # an older event without a detail we read
        return _plain(event)
