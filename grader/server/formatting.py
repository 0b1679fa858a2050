"""How the server's pages write times, waits and points, and their Jinja filters (one of each).

Why one module: a learner reads "wait 4 min 0 s" after an upload and "8 h 0 min" between quiz
attempts; both come from :func:`fmt_wait`, so the same wait reads the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask
from markupsafe import Markup, escape


def fmt_wait(seconds: float) -> str:
    """A wait as a learner reads it: ``45 s``, ``4 min 0 s``, ``8 h 0 min`` (at least 1 s)."""
    seconds = max(1, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def fmt_when(when: dt.datetime | None) -> str:
    """An instant in UTC to the minute; empty for None."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if when else ""


def points(value: float) -> str:
    """A score without trailing zeros: 10, 7.5, 0.25."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def inline_code(text: str) -> Markup:
    """Escape ``text``, then show `backticked` spans as <code>; safe because escaping is first."""
    escaped = str(escape(text))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def add_filters(app: Flask) -> None:
    """The pages' filters: ``points``, ``inline_code``, ``when`` (an instant), ``wait`` (s)."""
    app.jinja_env.filters.update(
        points=points, inline_code=inline_code, when=fmt_when, wait=fmt_wait
    )
