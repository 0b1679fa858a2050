"""Another course's habits in a submission, as the learner reads them (report rows, summary text).

Why: many learners arrive from another course (an original guided project, an older framework)
and write its idioms, which fail here for reasons they cannot guess. An assignment's ``habits``
hook finds them (as :class:`~grader.ingest.model.Habit`, each with its row of the assignment's
table of differences); this module only presents them, the same way for any assignment.
"""

from __future__ import annotations

from typing import Any

from grader.ingest.model import Habit


def habit_rows(habits: tuple[Habit, ...]) -> list[dict[str, Any]]:
    """The table rows that apply to a submission, with where each idiom was found (JSON-ready,
    for the report)."""
    rows = []
    for habit in habits:
        where = f"cell {habit.cell_index + 1}, line {habit.line}" if habit.line else ""
        rows.append(
            {
                "difference": habit.kind,
                "found": habit.evidence,
                "where": where,
                "original": habit.original,
                "here": habit.here,
                "line": habit.line_to_write,
            }
        )
    return rows


def habits_text(intro: str, habits: tuple[Habit, ...]) -> str:
    """The summary's opening (plain text): ``intro``, then what differs and the line to write."""
    lines = [intro]
    for row in habit_rows(habits):
        where = f" ({row['where']})" if row["where"] else ""
        lines.append(f"- {row['found']}{where}: {row['here']}. Write: {row['line']}")
    return "\n".join(lines).replace("`", "")
