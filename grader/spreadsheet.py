"""CSV files a spreadsheet opens safely: the engine's one guard against formula injection.

Why: gradebooks, LMS import files, roster links and quiz statistics hold text learners control
(ids, names, emails, roster columns). A spreadsheet runs a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula (OWASP "CSV injection"), so every such cell
is written with a leading ``'``, which spreadsheets show as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_text(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], *, lineterminator: str = "\n"
) -> str:
    """A CSV document (header first), every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
