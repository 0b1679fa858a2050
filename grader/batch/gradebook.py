"""The class outputs: ``gradebook.csv`` (one row per submission, one column per check, with
learner text made spreadsheet-safe) and ``index.html`` (the class summary: score histogram, pass
rate per check, the commonest hints, the slowest gradings). Apart from the journal because they
are derived data, never a source of truth: :func:`rebuild` writes both again, atomically, from
the journal file alone (latest line per id wins), never from a run's memory.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import markupsafe

from grader import __version__
from grader.batch.common import GRADEBOOK, INDEX, JOURNAL, SIMILARITY_SECTION
from grader.batch.journal import JournalEntry, read_journal
from grader.files import write_atomically
from grader.job import first_line
from grader.spreadsheet import safe_cell as _cell

# --------------------------------------------------------------------------------------------
# Derived outputs: gradebook.csv and index.html


def _check_columns(entries: Iterable[JournalEntry]) -> list[tuple[str, str]]:
    """(check name, column label) ordered by check number."""
    numbers: dict[str, str] = {}
    for entry in entries:
        for check in entry.checks:
            numbers.setdefault(check.name, check.number)

    def order(name: str) -> tuple:
        number = numbers[name]
        return tuple(int(p) if p.isdigit() else 999 for p in number.split(".")), name

    return [(name, f"{numbers[name]} {name}".strip()) for name in sorted(numbers, key=order)]


def gradebook_csv(entries: list[JournalEntry]) -> str:
    columns = _check_columns(entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "id",
            "score",
            "max_score",
            *(label for _, label in columns),
            "status",
            "error",
            "content_hash",
            "grader_version",
            "source",
            "note",
        ]
    )
    for entry in sorted(entries, key=lambda e: e.id):
        scores = {check.name: check.score for check in entry.checks}
        writer.writerow(
            [
                _cell(entry.id),
                entry.score,  # None (no verdict) is an empty cell
                entry.max_score,
                *(scores.get(name, "") for name, _ in columns),
                entry.status,
                _cell(entry.error),
                entry.content_hash,
                entry.grader_version,
                _cell(entry.source),
                _cell(entry.note),
            ]
        )
    return buffer.getvalue()


def _histogram(percents: list[float], bins: int = 10) -> list[dict[str, Any]]:
    counts = [0] * bins
    for value in percents:
        counts[min(bins - 1, max(0, int(value // (100 / bins))))] += 1
    top = max(counts) or 1
    width = 100 // bins
    return [
        {
            "label": f"{i * width}–{(i + 1) * width}%",
            "count": count,
            "height": round(120 * count / top, 1),
        }
        for i, count in enumerate(counts)
    ]


def summary_context(entries: list[JournalEntry], out_dir: Path) -> dict[str, Any]:
    """What index.html shows, as plain data (the template only lays it out and escapes it)."""
    rows = sorted(entries, key=lambda e: e.id)
    graded = [e for e in rows if e.max_score]
    percents = [100.0 * e.score / e.max_score for e in graded]
    checks = []
    for name, label in _check_columns(rows):
        verdicts = [c for e in graded for c in e.checks if c.name == name]
        passed = sum(1 for c in verdicts if c.score >= c.max_score)
        checks.append(
            {
                "label": label,
                "passed": passed,
                "total": len(verdicts),
                "rate": round(100.0 * passed / len(verdicts), 1) if verdicts else 0.0,
            }
        )
    hints: Counter[tuple[str, str]] = Counter()
    for entry in graded:
        for check in entry.checks:
            if check.score < check.max_score and check.message:
                hints[(check.name, first_line(check.message, 240))] += 1
    statuses = Counter(e.status or "?" for e in rows)
    median = sorted(percents)[len(percents) // 2] if percents else 0.0
    return {
        "title": f"Class summary: {out_dir.name or out_dir}",
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "count": len(rows),
        "statuses": sorted(statuses.items()),
        "mean": round(sum(percents) / len(percents), 1) if percents else 0.0,
        "median": round(median, 1),
        "histogram": _histogram(percents),
        "checks": checks,
        "hints": [
            {"check": check, "message": message, "count": count}
            for (check, message), count in hints.most_common(12)
        ],
        "slowest": sorted(rows, key=lambda e: -float(e.execution_time or 0.0))[:10],
        "rows": rows,
        "version": __version__,
        "similarity": "",  # the similarity section, when grader grade wrote one
    }


def render_index(
    entries: list[JournalEntry], out_dir: Path, title: str | None = None, similarity: str = ""
) -> str:
    """The class summary page; ``title`` replaces the default naming ``out_dir``; ``similarity``
    is the similarity section's HTML (``grader.similarity.report``), shown as it is."""
    from grader.results.report import _ENV

    context = summary_context(entries, out_dir)
    if title is not None:
        context["title"] = title
    context["similarity"] = markupsafe.Markup(similarity)
    return _ENV.get_template("index.html.j2").render(**context)


def write_class_files(out_dir: Path, entries: list[JournalEntry]) -> None:
    """gradebook.csv and index.html from journal entries, each written atomically; index.html
    embeds the similarity section ``grader grade`` left in ``out_dir``, if any."""
    try:
        similarity = (out_dir / SIMILARITY_SECTION).read_text(encoding="utf-8")
    except OSError:
        similarity = ""
    write_atomically(out_dir / GRADEBOOK, gradebook_csv(entries).encode("utf-8"))
    page = render_index(entries, out_dir, similarity=similarity)
    write_atomically(out_dir / INDEX, page.encode("utf-8"))


def rebuild(out_dir: Path) -> int:
    """Rebuild the class outputs from the journal file; returns the number of rows. The caller
    holds the folder's lock (:func:`run_batch` does)."""
    entries = list(read_journal(out_dir / JOURNAL).values())
    write_class_files(out_dir, entries)
    return len(entries)
