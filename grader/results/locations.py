"""Where in the notebook: a cell named the way the learner sees it, never by its number.

Why: Jupyter shows no cell numbers, so "cell 28" sends a learner counting cells. A graded cell has
a name they wrote themselves (its ``# GRADED: <name>`` first line); any other cell is named from
the nearest graded cell above it ("the 2nd cell after `# GRADED: a_part`"), else below it, else by
its first line (a heading adds how a cell that is not graded starts). The data comes from ingestion (a problem's 0-based cell index, the cell each
graded part was found in and how) and the notebook's cells' first lines; this module only names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: "cell 28" / "Cell 28" in a message of ingestion or of the worker's tracebacks (1-based).
_CELL_NUMBER = re.compile(r"\b([Cc])ell (\d+)\b")
_QUOTE_CHARS = 60


@dataclass(frozen=True)
class GradedCell:
    """The cell a graded part was found in (0-based index) and whether it carries the part's
    ``# GRADED:`` line (found by tag or header) or only defines it (found by name)."""

    part: str
    index: int
    marked: bool = True


@dataclass(frozen=True)
class LocatedProblem:
    """A problem found in the notebook, for the top of the report: the graded part it concerns
    (if any), the cell it is in as the learner sees it ("" when it is in no cell) and the
    message, with every cell number in it replaced by such a name."""

    message: str
    part: str | None = None
    where: str = ""


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _quoted(head: str) -> str:
    text = head.strip().replace("`", "'")
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


class CellNames:
    """Names for the cells of one notebook: ``graded`` cells, and each cell's first line
    (``heads``, by 0-based index; may be shorter than the notebook when unknown)."""

    def __init__(self, graded: Sequence[GradedCell], heads: Sequence[str] = ()) -> None:
        self.graded = sorted(graded, key=lambda cell: cell.index)
        self.heads = list(heads)

    def _head(self, index: int) -> str:
        return _quoted(self.heads[index]) if 0 <= index < len(self.heads) else ""

    def short(self, index: int) -> str:
        """The cell at ``index`` in a few words, for use inside a sentence ("the cell after
        `# GRADED: a_part`")."""
        here = [cell for cell in self.graded if cell.index == index]
        if here:
            if here[0].marked:
                return f"the `# GRADED: {here[0].part}` cell"
            return f"the cell that defines `{here[0].part}`"
        above = [cell for cell in self.graded if cell.index < index]
        below = [cell for cell in self.graded if cell.index > index]
        if above or below:  # counted from the nearest graded cell above, else below
            cell = above[-1] if above else below[0]
            side = "after" if above else "before"
            graded = (
                f"`# GRADED: {cell.part}`" if cell.marked else f"the cell defining `{cell.part}`"
            )
            steps = abs(index - cell.index)
            if steps == 1:
                return f"the cell {side} {graded}"
            return f"the {_ordinal(steps)} cell {side} {graded}"
        head = self._head(index)
        return f"the cell that starts `{head}`" if head else f"the {_ordinal(index + 1)} cell"

    def full(self, index: int) -> str:
        """The cell at ``index`` for a heading: :meth:`short`, and how it starts when it is not
        a graded cell (the name alone may leave a doubt)."""
        name = self.short(index)
        head = self._head(index)
        if any(cell.index == index for cell in self.graded) or not head or head in name:
            return name
        return f"{name} (it starts `{head}`)"

    def in_text(self, text: str) -> str:
        """``text`` with every "cell N" (1-based) of this notebook named as :meth:`short` does."""

        def named(match: re.Match[str]) -> str:
            index = int(match.group(2)) - 1
            if self.heads and not 0 <= index < len(self.heads):
                return match.group(0)  # not a cell of this notebook: leave it
            name = self.short(index)
            return name[0].upper() + name[1:] if match.group(1) == "C" else name

        return _CELL_NUMBER.sub(named, text)


def locate(names: CellNames, message: str, part: str | None, index: int | None) -> LocatedProblem:
    """A problem of ingestion's (its message, graded part and cell index) as the report shows it;
    no separate ``where`` when the message itself names that cell."""
    text = names.in_text(message)
    if index is None or names.short(index).lower() in text.lower():
        return LocatedProblem(text, part)
    return LocatedProblem(text, part, names.full(index))
