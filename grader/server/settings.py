"""The course server's settings: one dataclass, each default declared once with why, loaded from
``DIR/settings.yaml`` when present.

Why one place: the policy a learner meets (deadline, limits, cooldown, when feedback shows) and
what the machine may spend (grading jobs, upload size) are the instructor's decisions, and they
must be readable and changeable without reading code. Unknown keys are refused with the list of
known ones: a typo (``submision_limit``) silently falling back to a default would change a
course's policy without anyone noticing. The file is checked against :data:`SETTINGS_SCHEMA`
(jsonschema), beside the dataclass it fills.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader.assignment import Assignment, resolve
from grader.batch.common import DEFAULT_TIMEOUT
from grader.sandbox.isolation import MODES as SANDBOX_MODES
from grader.validation import problems

SETTINGS_FILE = "settings.yaml"
FEEDBACK_MODES = ("immediate", "manual")


class SettingsError(ValueError):
    """``settings.yaml`` is malformed, names an unknown key or holds a value out of range."""


@dataclass(frozen=True)
class AssignmentPolicy:
    """One assignment of the course (an entry of ``assignments:``, or the top-level keys of a
    one-assignment course) and its own policy: each notebook has its deadline and late rule, and
    counts for its points in the course total."""

    assignment: str = ""  # a name among those installed, or a folder (as `assignment`)
    deadline: dt.datetime | None = None
    late_penalty: float = 0.0
    submissions_per_day: int = 5
    points: float | None = None  # in the course total; None: the notebook's own maximum
    # its quiz's points in the course total; None: the top-level quiz_points
    quiz_points: float | None = None

    def chosen(self) -> Assignment:
        """The assignment itself (AssignmentError when there is no such one)."""
        return _resolved(self.assignment)

    @property
    def name(self) -> str:
        """The assignment's name: the key its submissions, quiz attempts and line items carry."""
        return self.chosen().name

    def deadline_for(self, extended: dt.datetime | None) -> dt.datetime | None:
        """The deadline of one learner: an extension's when it is later (an extension never
        shortens the time a learner has)."""
        if extended is None or (self.deadline is not None and extended < self.deadline):
            return self.deadline
        return extended

    def is_late(self, when: dt.datetime, extended: dt.datetime | None = None) -> bool:
        deadline = self.deadline_for(extended) if self.deadline is not None else None
        return deadline is not None and when > deadline


@dataclass(frozen=True)
class Settings:
    """Everything an instructor may change about a course server (``DIR/settings.yaml``)."""

    # The assignment the server grades and hands out: a name among those installed, or a folder
    # holding assignment.yaml (as `grader grade --assignment`). Empty: the only one installed.
    assignment: str = ""
    # Several assignments on one server, each a mapping with `assignment` (as above) and its own
    # deadline, late_penalty, submissions_per_day (default: the top-level ones), points (in the
    # course total; default: the notebook's own maximum) and quiz_points (its quiz's, default: the
    # top-level quiz_points). Empty: the one of `assignment`, with the
    # top-level deadline, late_penalty and notebook_points. The first one is the default of
    # uploads and clients that name none; each one whose folder has a quiz bank has its quiz.
    assignments: tuple[AssignmentPolicy, ...] = ()
    # Shown in every page's header and title. Empty: the assignment's own title.
    course_title: str = ""
    # Links printed by `grader roster` are <base_url>/signin/<token>. localhost:8000 is where
    # `grader serve` listens by default, so links work out of the box on the instructor's machine;
    # an https:// URL (behind a TLS reverse proxy) also makes session cookies Secure.
    base_url: str = "http://127.0.0.1:8000"
    # No deadline unless the course sets one (ISO 8601 with a time zone, e.g.
    # 2027-01-31T23:59:00+00:00): a course without one must not mark submissions late.
    deadline: dt.datetime | None = None
    # Fraction of the score taken off a late submission. 0 by default: late work is flagged, and
    # the instructor decides whether it costs anything.
    late_penalty: float = 0.0
    # Gradings per learner per UTC day. One grading costs minutes of CPU (training), so a course of
    # a few hundred on one 2-core machine affords a handful per learner per day.
    submissions_per_day: int = 5
    # Seconds between two submissions of one learner: stops a learner from using the grader as a
    # debugger (the public self-check is for that) and from double-clicking an upload.
    cooldown_seconds: int = 300
    # A course notebook is a few hundred KB; 10 MB leaves room for embedded output images while
    # keeping a single upload from filling the disk or the memory of a request thread.
    max_upload_mb: float = 10.0
    # immediate: the report shows as soon as the grading ends (most courses want quick feedback);
    # manual: scores and reports stay hidden until the instructor releases them.
    feedback_release: str = "immediate"
    # Concurrent gradings on the local Dask cluster (-j). 1 by default: one grading already keeps
    # 2 TensorFlow threads busy, and the web server needs the rest of a small machine.
    jobs: int = 1
    # Isolation of learner code, as `grader grade --sandbox`: auto refuses to grade without
    # isolation (fail closed), so a server never silently runs learner code unconfined.
    sandbox: str = "auto"
    # Wall-clock seconds of one grading before it ends as `timeout` (then retried): the batch
    # grader's own limit (grader.batch.common.DEFAULT_TIMEOUT), so both grade alike.
    grading_timeout: float = DEFAULT_TIMEOUT
    # Gradings of one job that end in a retried status (timeout, error, killed) before the last
    # one is kept: a machine hiccup is retried, a grading that always fails is not retried forever.
    max_attempts: int = 3
    # A claimed job's lease; the dispatcher renews it every third of this while grading. A server
    # killed with kill -9 stops renewing, and another (or the restarted one) takes the job over
    # once it expires. 120 s keeps renewals rare and a crashed server's job waiting at most 2 min.
    lease_seconds: float = 120.0
    # Sign-in attempts per client address per minute (a per-process window in memory): enough for
    # a class behind one NAT, far too few to guess a 256-bit token anyway.
    signin_per_minute: int = 30
    # Upload requests per learner per minute (per process, in memory), on top of the policy above:
    # a cheap guard in front of the database transaction that enforces the policy.
    uploads_per_minute: int = 6
    # Open connections of one client address (an IPv6 client: its /64). A browser opens up to 6,
    # so 100 fits a classroom behind one NAT; one machine cannot hold every connection slot. The
    # trusted reverse proxy (--trusted-proxy) is exempt. Raise it when a bigger class shares one
    # address without a reverse proxy.
    connections_per_address: int = 100
    # Minutes a learner has for one quiz attempt, enforced on the server: answers arriving after
    # the limit plus a minute's grace are refused and the attempt is closed at the limit with
    # score 0 (the page sends all answers at once, so the server has none before). None: no
    # limit, as in the original course. Attempts, cooldown and pass mark come from quiz.yaml.
    quiz_time_limit_minutes: float | None = None
    # Points the notebook counts for in the course total (the gradebook page, gradebook.csv, the
    # Canvas and Moodle files, the learner's home page, the scores posted to an LMS), its score
    # scaled to them. None: the notebook's own maximum, so by default the total is the
    # notebook's 100 points plus the quiz's points, as the course was designed.
    notebook_points: float | None = None
    # Points each quiz counts for in the course total, its best attempt's score scaled to them; a
    # learner without a submitted attempt counts 0 of them, so every total has one maximum.
    # None: the quiz's own points. 0 leaves the quiz out of the total. An entry of `assignments:`
    # may give its own quiz_points.
    quiz_points: float | None = None
    # SameSite of the session cookie. auto: None (with Secure and Partitioned) when base_url is
    # https, so that the pages work inside an LMS's iframe (LTI launches), else Lax; lax: always
    # Lax (a course never shown in an iframe); none: always None, which browsers accept only on
    # https (or localhost). Every form carries a CSRF token, whatever this is.
    cookie_samesite: str = "auto"
    # Where these settings came from, for error messages; not a setting.
    _source: str = field(default="defaults", repr=False, compare=False)

    def chosen_assignment(self) -> Assignment:
        """The course's first (default) assignment (AssignmentError when there is no such one)."""
        return self.course_assignments()[0].chosen()

    def course_assignments(self) -> tuple[AssignmentPolicy, ...]:
        """The course's assignments, the default first: ``assignments``, else the one of the
        top-level keys."""
        if self.assignments:
            return self.assignments
        return (
            AssignmentPolicy(
                self.assignment,
                self.deadline,
                self.late_penalty,
                self.submissions_per_day,
                self.notebook_points,
            ),
        )

    def policy_of(self, name: str | None) -> AssignmentPolicy | None:
        """The assignment named ``name`` (empty or None: the default one); None when the
        course has no such assignment (any more)."""
        every = self.course_assignments()
        if not name:
            return every[0]
        return next((policy for policy in every if policy.name == name), None)

    @property
    def title(self) -> str:
        """The course's title on every page: ``course_title``, else the assignment's."""
        return self.course_title or self.chosen_assignment().title

    @property
    def secure_cookies(self) -> bool:
        """Session cookies are Secure when the course is served over TLS (an https base URL),
        and whenever they are SameSite=None (browsers require it)."""
        return self.base_url.lower().startswith("https://") or self.cookie_samesite == "none"

    @property
    def session_samesite(self) -> str:
        """The session cookie's SameSite attribute (``cookie_samesite`` resolved)."""
        if self.cookie_samesite == "none" or (
            self.cookie_samesite == "auto" and self.secure_cookies
        ):
            return "None"
        return "Lax"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def is_late(self, when: dt.datetime) -> bool:
        """Late for the default assignment, without any extension."""
        return self.course_assignments()[0].is_late(when)


@functools.cache
def _resolved(choice: str) -> Assignment:
    return resolve(choice or None)


def known_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings) if not f.name.startswith("_")]


def _deadline(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        raise SettingsError("deadline needs a time and a time zone, e.g. 2027-01-31T23:59:00+00:00")
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise SettingsError(
                f"deadline {value!r} is not an ISO 8601 date-time (2027-01-31T23:59:00+00:00)"
            ) from None
    if not isinstance(value, dt.datetime):
        raise SettingsError(f"deadline {value!r} is not a date-time")
    if value.tzinfo is None:
        raise SettingsError("deadline needs a time zone, e.g. +00:00, so that it means one instant")
    return value.astimezone(dt.UTC)


def _count(least: int, **messages: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": least, "messages": messages}


_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_FRACTION = "is a fraction between 0 and 1"
_POINTS = {
    "type": ["number", "null"],
    "minimum": 0,
    "messages": {"type": "should be a number of points", "minimum": "must not be negative"},
}

_LATE_PENALTY = {
    "type": "number",
    "minimum": 0,
    "maximum": 1,
    "messages": {"minimum": _FRACTION, "maximum": _FRACTION},
}
#: The keys of one entry of ``assignments:`` (:class:`AssignmentPolicy`).
_ASSIGNMENT_ENTRY = {
    "type": "object",
    "noun": "key of an assignment",
    "messages": {"type": "should be a mapping with at least `assignment: NAME or FOLDER`"},
    "additionalProperties": False,
    "required": ["assignment"],
    "properties": {
        "assignment": {
            "type": "string",
            "minLength": 1,
            "messages": {"minLength": "should name an assignment or a folder"},
        },
        "deadline": {},  # read by _deadline, as the top-level one
        "late_penalty": _LATE_PENALTY,
        "submissions_per_day": _count(1),
        "points": _POINTS,
        "quiz_points": _POINTS,
    },
}
#: Top-level keys that an ``assignments:`` list replaces (each entry has its own).
_PER_ASSIGNMENT = {"assignment": "assignment", "deadline": "deadline", "notebook_points": "points"}

#: What ``settings.yaml`` may hold (jsonschema; messages by grader.validation). Each key is a
#: field of :class:`Settings`, whose comments say why its default is what it is.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "messages": {"type": "should be a mapping of setting: value"},
    "additionalProperties": False,
    "properties": {
        "assignment": {"type": "string"},
        "assignments": {
            "type": "array",
            "minItems": 1,
            "items": _ASSIGNMENT_ENTRY,
            "messages": {"type": "should be a list of assignments (`- assignment: NAME`)"},
        },
        "course_title": {"type": "string"},
        "base_url": {
            "type": "string",
            "pattern": "^https?://",
            "messages": {"pattern": "must start with http:// or https://"},
        },
        "deadline": {},  # a YAML timestamp or its text: read by _deadline, which says what is wrong
        "late_penalty": _LATE_PENALTY,
        "submissions_per_day": _count(1),
        "cooldown_seconds": _count(0, minimum="must not be negative"),
        "max_upload_mb": _POSITIVE,
        "feedback_release": {"enum": list(FEEDBACK_MODES)},
        "jobs": _count(1),
        "sandbox": {"enum": list(SANDBOX_MODES)},
        "grading_timeout": _POSITIVE,
        "max_attempts": _count(1),
        "lease_seconds": _POSITIVE,
        "signin_per_minute": _count(1),
        "uploads_per_minute": _count(0, minimum="must not be negative"),
        "connections_per_address": _count(1),
        "quiz_time_limit_minutes": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "messages": {
                "type": "should be a positive number of minutes",
                "exclusiveMinimum": "should be a positive number of minutes",
            },
        },
        "notebook_points": _POINTS,
        "quiz_points": _POINTS,
        "cookie_samesite": {"enum": ["auto", "lax", "none"]},
    },
}


def from_mapping(values: Any, source: str = "settings") -> Settings:
    """Settings from a mapping (the parsed YAML): unknown keys, wrong types and values out of
    range are refused, every one of them named."""
    found = problems(SETTINGS_SCHEMA, values)
    if found:
        raise SettingsError(f"{source}: " + "; ".join(found))
    defaults = Settings()
    converted: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if name == "assignments":
            converted[name] = _assignments(values, source)
        elif name == "deadline":
            converted[name] = _deadline(value)
        elif (isinstance(default, float) or name.endswith("_points")) and value is not None:
            converted[name] = float(value)
        elif isinstance(default, int) and not isinstance(default, bool):
            converted[name] = int(value)
        else:
            converted[name] = value
    converted["base_url"] = str(converted.get("base_url", defaults.base_url)).rstrip("/")
    return dataclasses.replace(defaults, _source=source, **converted)


def _assignments(values: dict[str, Any], source: str) -> tuple[AssignmentPolicy, ...]:
    """The ``assignments:`` list: each entry's own keys, the top-level late_penalty and
    submissions_per_day as defaults; top-level keys that each entry must give refused."""
    clashing = [
        f"{key} (give each assignment its {_PER_ASSIGNMENT[key]})"
        for key in _PER_ASSIGNMENT
        if key in values
    ]
    if clashing:
        what = "is not used; remove it" if len(clashing) == 1 else "are not used; remove them"
        raise SettingsError(
            f"{source}: with `assignments:` the top-level {', '.join(clashing)} {what}"
        )
    defaults = Settings()
    penalty = float(values.get("late_penalty", defaults.late_penalty))
    per_day = int(values.get("submissions_per_day", defaults.submissions_per_day))
    policies = []
    for index, entry in enumerate(values["assignments"]):
        try:
            deadline = _deadline(entry.get("deadline"))
        except SettingsError as error:
            raise SettingsError(f"{source}: assignments[{index}].{error}") from None
        points, quiz_points = entry.get("points"), entry.get("quiz_points")
        policies.append(
            AssignmentPolicy(
                entry["assignment"],
                deadline,
                float(entry.get("late_penalty", penalty)),
                int(entry.get("submissions_per_day", per_day)),
                None if points is None else float(points),
                None if quiz_points is None else float(quiz_points),
            )
        )
    choices = [policy.assignment for policy in policies]
    repeated = sorted({choice for choice in choices if choices.count(choice) > 1})
    if repeated:
        raise SettingsError(f"{source}: assignments lists {', '.join(repeated)} more than once")
    return tuple(policies)


def load_settings(data_dir: Path) -> Settings:
    """``DIR/settings.yaml`` when present, else the defaults."""
    path = Path(data_dir) / SETTINGS_FILE
    if not path.is_file():
        return Settings()
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from None
    return from_mapping({} if values is None else values, str(path))


def describe() -> list[tuple[str, str, str]]:
    """(name, default, why) for every setting, from the comments above: the README's table."""
    import inspect

    source = inspect.getsource(Settings).splitlines()
    rows, why = [], []
    for line in source:
        text = line.strip()
        if text.startswith("# "):
            why.append(text[2:])
            continue
        name = text.split(":", 1)[0]
        if name in known_keys():
            rows.append((name, repr(getattr(Settings(), name)), " ".join(why)))
        why = []
    return rows
