"""Read Moodle XML and GIFT back into bank questions (``quiz import``), e.g. to round-trip an LMS.

Questions of types the bank does not know (essay, matching, calculated, ...) are skipped with a
warning rather than guessed at. Ids and topics from other tools are made to fit the bank's patterns.
Formats are chosen by name from :data:`IMPORTERS` (``quiz import --format``), or by the file's
suffix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from quiz.importers.common import ImportResult
from quiz.importers.gift import read_gift
from quiz.importers.moodle import read_moodle


@dataclass(frozen=True)
class Importer:
    name: str
    suffixes: tuple[str, ...]  # file names this format usually has
    read: Callable[[Path], ImportResult]


IMPORTERS: dict[str, Importer] = {
    i.name: i
    for i in (
        Importer("moodle", (".xml",), read_moodle),
        Importer("gift", (".gift", ".txt"), read_gift),
    )
}


def importer_for(path: Path, fmt: str | None = None) -> Importer:
    """The importer named ``fmt``, else the one whose suffix ``path`` has (GIFT otherwise)."""
    if fmt is not None:
        return IMPORTERS[fmt]
    suffix = Path(path).suffix.lower()
    return next((i for i in IMPORTERS.values() if suffix in i.suffixes), IMPORTERS["gift"])


__all__ = ["IMPORTERS", "ImportResult", "Importer", "importer_for"]
