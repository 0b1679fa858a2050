"""Generate the learner notebook from the solution notebook (the "assign" stage).

An assignment's solution notebook (its manifest's ``solution``) is the only source of truth; the
learner notebook (``learner``) is written from it. Solution regions are cut out here, so the learner
notebook never has to be edited by hand and a test can prove it is in sync:

- in code cells, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the marker's indentation;
- in markdown cells, text between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` becomes
  ``YOUR ANSWER HERE``;
- outputs and execution counts are cleared; cell ids, tags and the other cells are kept.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.files import write_atomically

CODE_BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
CODE_END = re.compile(r"^\s*### END SOLUTION\s*$")
MD_BEGIN = re.compile(r"^\s*<!--\s*BEGIN SOLUTION\s*-->\s*$")
MD_END = re.compile(r"^\s*<!--\s*END SOLUTION\s*-->\s*$")
ANY_MARKER = re.compile(r"(###|<!--)\s*(BEGIN|END) SOLUTION")


class AssignError(ValueError):
    """The solution notebook cannot be turned into a learner notebook; nothing was written."""


@dataclass(frozen=True)
class Difference:
    """The first cell where the checked-in learner notebook differs from a fresh generation."""

    cell: int  # 1-based, as shown to people
    reason: str


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise AssignError(f"{path}: no such file") from None
    except Exception as error:  # nbformat raises several unrelated types for bad files
        raise AssignError(
            f"{path}: not a valid Jupyter notebook ({error.__class__.__name__})"
        ) from None
    return nb


def _strip_region(
    lines: list[str], begin: re.Pattern, end: re.Pattern, stub, where: str
) -> list[str]:
    out: list[str] = []
    inside_since: int | None = None
    for number, line in enumerate(lines, start=1):
        if match := begin.match(line):
            if inside_since is not None:
                raise AssignError(f"{where}, line {number}: BEGIN SOLUTION inside another region")
            inside_since = number
            out.extend(stub(match.groups()[0] if match.groups() else ""))
        elif end.match(line):
            if inside_since is None:
                raise AssignError(f"{where}, line {number}: END SOLUTION without a BEGIN")
            inside_since = None
        elif ANY_MARKER.search(line):
            raise AssignError(f"{where}, line {number}: marker of the wrong kind for this cell")
        elif inside_since is None:
            out.append(line)
    if inside_since is not None:
        raise AssignError(f"{where}, line {inside_since}: BEGIN SOLUTION is never closed")
    return out


def _code_stub(indent: str) -> list[str]:
    return [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]


def _markdown_stub(_: str) -> list[str]:
    return ["YOUR ANSWER HERE"]


def make_learner_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the learner version of ``solution``; raise AssignError naming the cell on bad markers."""
    learner = copy.deepcopy(solution)
    for index, cell in enumerate(learner.cells, start=1):
        lines = cell.source.splitlines()
        where = f"cell {index} ({cell.cell_type})"
        if cell.cell_type == "code":
            lines = _strip_region(lines, CODE_BEGIN, CODE_END, _code_stub, where)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            lines = _strip_region(lines, MD_BEGIN, MD_END, _markdown_stub, where)
        elif any(ANY_MARKER.search(line) for line in lines):
            raise AssignError(
                f"{where}: solution markers are only allowed in code and markdown cells"
            )
        cell.source = "\n".join(lines)
    nbformat.validate(learner)
    return learner


def _cell_key(cell: nbformat.NotebookNode) -> tuple:
    return (cell.cell_type, cell.source, tuple(cell.metadata.get("tags", ())), cell.get("id"))


def first_difference(
    expected: nbformat.NotebookNode, actual: nbformat.NotebookNode
) -> Difference | None:
    """Compare what matters to learners: cell kinds, sources, tags, ids and that outputs are empty."""
    for index, (want, have) in enumerate(zip(expected.cells, actual.cells, strict=False), start=1):
        if _cell_key(want) != _cell_key(have):
            return Difference(
                index, "source, tags or id differ from the solution's learner version"
            )
        if have.cell_type == "code" and have.get("outputs"):
            return Difference(index, "has outputs; the learner notebook must ship without outputs")
    if len(expected.cells) != len(actual.cells):
        index = min(len(expected.cells), len(actual.cells)) + 1
        return Difference(index, f"{len(actual.cells)} cells, expected {len(expected.cells)}")
    return None


def generate(solution_path: Path, out_path: Path) -> None:
    """Write the learner notebook made from ``solution_path`` to ``out_path`` (atomically)."""
    text = nbformat.writes(make_learner_notebook(read_notebook(solution_path)))
    write_atomically(out_path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))


def check(solution_path: Path, out_path: Path) -> Difference | None:
    """None when ``out_path`` is what ``generate`` would write, else the first differing cell."""
    expected = make_learner_notebook(read_notebook(solution_path))
    if not out_path.exists():
        return Difference(1, f"{out_path} does not exist; run `grader generate`")
    return first_difference(expected, read_notebook(out_path))
