"""LMS exports of the bank, chosen by name: Moodle XML (lossless), GIFT and Canvas QTI 1.2.

An LMS cannot run our generators, so exports take concrete questions
(``variants.concrete_bank``): each parameterised question becomes one or more seeded copies.
Questions are grouped by topic (Moodle/GIFT categories) so an LMS quiz can draw from topic pools.

Why a registry: ``quiz export --format``, its help and :func:`export` read :data:`EXPORTERS`; a
new format is one entry here and one module beside this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from quiz.export.gift import write_gift
from quiz.export.moodle import write_moodle_xml
from quiz.export.qti import write_qti_zip
from quiz.model import Question


@dataclass(frozen=True)
class Exporter:
    """One export format: what it is, its usual file name, and the function that writes it
    (questions, out, title, category)."""

    name: str
    description: str
    suffix: str
    write: Callable[[Sequence[Question], Path, str, str], None]


EXPORTERS: dict[str, Exporter] = {
    e.name: e
    for e in (
        Exporter(
            "moodle",
            "Moodle XML, lossless (feedback, tolerances, fractions)",
            ".xml",
            write_moodle_xml,
        ),
        Exporter("gift", "GIFT, Moodle's plain-text format", ".gift.txt", write_gift),
        Exporter("qti", "a Canvas QTI 1.2 zip", ".zip", write_qti_zip),
    )
}
FORMATS = tuple(EXPORTERS)


def export(
    questions: Sequence[Question],
    fmt: str,
    out: Path,
    *,
    title: str = "Quiz",
    category: str = "quiz",
) -> Path:
    """Write ``questions`` to ``out`` in the format named ``fmt`` (one of :data:`FORMATS`)."""
    exporter = EXPORTERS.get(fmt)
    if exporter is None:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter.write(questions, out, title, category)
    return out
