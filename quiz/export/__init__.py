"""LMS exports of the bank: Moodle XML (lossless), GIFT and Canvas QTI 1.2.

An LMS cannot run our generators, so exports take concrete questions
(`variants.concrete_bank`): each parameterised question becomes one or more seeded copies.
Questions are grouped by topic (Moodle/GIFT categories) so an LMS quiz can draw from topic pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from quiz.model import Question

FORMATS = ("moodle", "gift", "qti")
CATEGORY_ROOT = "objloc"


def export(questions: Sequence[Question], fmt: str, out: Path, title: str = "Quiz") -> Path:
    """Write `questions` to `out` in `fmt` ("moodle", "gift" or "qti")."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "moodle":
        from quiz.export.moodle import to_moodle_xml

        out.write_bytes(to_moodle_xml(questions))
    elif fmt == "gift":
        from quiz.export.gift import to_gift

        out.write_text(to_gift(questions), encoding="utf-8")
    elif fmt == "qti":
        from quiz.export.qti import write_qti_zip

        write_qti_zip(questions, out, title=title)
    else:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return out


def number(x: float) -> str:
    """Shortest exact text for a float (integers without '.0')."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def percent(fraction: float) -> str:
    """A Moodle grade fraction in percent with 5 decimals, as Moodle itself writes them."""
    s = f"{fraction * 100:.5f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s
