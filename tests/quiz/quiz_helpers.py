"""Answer keys for tests: the right (or a wrong) answer to every item, in each delivery's format."""

from __future__ import annotations

from typing import Any

from quiz.answers import LETTERS
from quiz.model import Item


def right_letters(item: Item) -> Any:
    """The right answer as a learner types it (letters, a number, text)."""
    q = item.question
    if q.type == "multiple":
        return ",".join(LETTERS[i] for i, o in enumerate(q.options) if o.correct)
    if q.options:
        return next(LETTERS[i] for i, o in enumerate(q.options) if o.correct)
    if q.type == "numeric":
        return repr(q.answer)
    return q.accepted[0].upper()  # upper case: must still count (case-insensitive)


def wrong_letters(item: Item) -> Any:
    q = item.question
    if q.options:
        return next(LETTERS[i] for i, o in enumerate(q.options) if not o.correct)
    if q.type == "numeric":
        assert q.answer is not None
        return repr(q.answer + 10 * q.tolerance + 1)
    return "definitely not this"


def right_form(items: list[Item] | tuple[Item, ...]) -> dict[str, Any]:
    """Form fields (q1, q2, ...) with the right answers, as the web page posts them."""
    form: dict[str, Any] = {}
    for it in items:
        q = it.question
        name = f"q{it.number}"
        if q.type == "multiple":
            form[name] = [str(i) for i, o in enumerate(q.options) if o.correct]
        elif q.options:
            form[name] = str(next(i for i, o in enumerate(q.options) if o.correct))
        elif q.type == "numeric":
            form[name] = repr(q.answer)
        else:
            form[name] = q.accepted[0]
    return form
