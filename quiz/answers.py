"""Reading answers: the one set of rules for every way an answer arrives.

An answer reaches the quiz typed in a terminal (a letter, ``A,C``, a number, text), posted by the
web page (option numbers and text fields) or given in an offline ``responses.json`` (letters,
``true``/``false``, numbers, text). Each way is read here, so a value one delivery refuses is
refused by every other. Choices are read strictly: a letter as displayed, or an option number in
ASCII digits (``int('١')`` is 1 in Python, so ``str.isdigit`` is not enough); a form field the
page never sends is an error, never a silent blank.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from quiz.model import Item, Question

LETTERS = "ABCDEFGHIJ"
MAX_TEXT_ANSWER = 200  # characters of a text answer (the page's maxlength)
OPTION_NUMBER = re.compile(r"[0-9]{1,2}", re.ASCII)
FORM_FIELDS = frozenset({"csrf_token", "submit"})  # what an attempt form sends besides answers


class BadAnswer(ValueError):
    """A submitted form that no page of ours sends: refused with this message."""


def letter(i: int) -> str:
    return LETTERS[i]


def parse_choice(q: Question, raw: Any) -> int:
    """Option index from an int (0-based), a letter as displayed, or the option's exact text."""
    if isinstance(raw, bool) and q.type == "truefalse":
        raw = "True" if raw else "False"
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw < len(q.options):
            return raw
        raise ValueError(f"no option number {raw}")
    if isinstance(raw, str):
        s = raw.strip()
        if q.type == "truefalse" and s.lower() in ("t", "true", "f", "false"):
            return 0 if s.lower().startswith("t") == (q.options[0].text == "True") else 1
        if len(s) == 1 and s.upper() in LETTERS[: len(q.options)]:
            return LETTERS.index(s.upper())
        for i, o in enumerate(q.options):
            if s == o.text:
                return i
        raise ValueError(f"{raw!r} is not one of {', '.join(LETTERS[: len(q.options)])}")
    raise ValueError(f"cannot read {raw!r} as a choice")


def parse_choices(q: Question, raw: Any) -> list[int]:
    """Indexes for a multiple answer: a list of choices, or a string like "A, C" / "AC"."""
    if isinstance(raw, str):
        s = raw.strip()
        parts = [p for p in re.split(r"[\s,;]+", s) if p]
        if (
            len(parts) == 1
            and len(s) > 1
            and all(c.upper() in LETTERS[: len(q.options)] for c in s)
        ):
            parts = list(s)
        raw = parts
    if not isinstance(raw, list | tuple):
        raw = [raw]
    return sorted({parse_choice(q, r) for r in raw})


def parse_number(raw: Any) -> float:
    """A number from a JSON number or text; a decimal comma is accepted."""
    if isinstance(raw, bool):
        raise ValueError("not a number")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        s = str(raw).strip().replace(" ", "")
        if s.count(",") == 1 and "." not in s:
            s = s.replace(",", ".")
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def read_typed(item: Item, line: str) -> Any:
    """One typed line (the terminal) as scoring expects it; ValueError when it cannot be read."""
    q = item.question
    s = line.strip()
    if not s:
        return None
    if q.type in ("single", "code", "truefalse"):
        return parse_choice(q, s)
    if q.type == "multiple":
        return parse_choices(q, s)
    if q.type == "numeric":
        parse_number(s)
    return s


def read_form(items: Sequence[Item], form: Mapping[str, Any]) -> dict[str, Any]:
    """The answers of a submitted attempt form (a MultiDict: ``getlist``), keyed by question id;
    BadAnswer for anything the page does not send. An unanswered radio or checkbox question
    sends nothing, which is a blank answer."""
    names = {f"q{item.number}": item for item in items}
    unknown = sorted(set(form.keys()) - set(names) - FORM_FIELDS)
    if unknown:
        raise BadAnswer(f"the form names question(s) not in this attempt: {', '.join(unknown)}")
    answers: dict[str, Any] = {}
    for name, item in names.items():
        q = item.question
        values = form.getlist(name)  # type: ignore[attr-defined]
        if q.options:
            picked = []
            for value in values:
                if not OPTION_NUMBER.fullmatch(value) or int(value) >= len(q.options):
                    raise BadAnswer(
                        f"question {item.number}: {value[:20]!r} is not one of its options"
                    )
                picked.append(int(value))
            if q.type != "multiple" and len(picked) > 1:
                raise BadAnswer(f"question {item.number} takes one choice, got {len(picked)}")
            if q.type == "multiple":
                answers[item.qid] = sorted(set(picked))
            else:
                answers[item.qid] = picked[0] if picked else None
        else:
            if len(values) != 1:
                raise BadAnswer(
                    f"question {item.number}: the answer field is missing; reload the page"
                )
            if len(values[0]) > MAX_TEXT_ANSWER:
                raise BadAnswer(f"question {item.number}: at most {MAX_TEXT_ANSWER} characters")
            answers[item.qid] = values[0]
    return answers
