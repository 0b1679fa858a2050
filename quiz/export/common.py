"""What the export formats share: numbers written exactly, Moodle's percent grades, categories.

Each topic becomes a category ``$course$/top/<category>/<topic>`` (Moodle XML and GIFT), where
``category`` is the quiz's own name (its assignment's), so that an LMS quiz can draw from topic
pools and two courses' banks do not mix.
"""

from __future__ import annotations

from collections.abc import Sequence

from quiz.model import Question


def number(x: float) -> str:
    """Shortest exact text for a float (integers without '.0')."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def percent(fraction: float) -> str:
    """A Moodle grade fraction in percent with 5 decimals, as Moodle itself writes them."""
    s = f"{fraction * 100:.5f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def category_path(category: str, topic: str) -> str:
    """The LMS category of a topic's questions."""
    return f"$course$/top/{category}/{topic}"


def topics_in_order(questions: Sequence[Question]) -> list[str]:
    """The topics of ``questions``, in first-seen order (the categories' order)."""
    topics: list[str] = []
    for q in questions:
        if q.topic not in topics:
            topics.append(q.topic)
    return topics
