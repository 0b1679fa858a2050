"""Finding the graded parts: which definition is each part, how it was found, is it attempted.

Why this module exists: a learner may tag a cell, write a ``# GRADED: <name>`` header, or just
define the function; a part may be defined twice, renamed, lost to a syntax error or still be the
stub. Each graded part (`IngestRules.parts`) resolves to its last ``def``/``class`` in the notebook, as
running the notebook top to bottom would; it is reported as found by cell tag, then by header, then
by plain definition name. A part that cannot be found gets a ``missing_part`` problem as precise
as the notebook allows; a notebook with none of the graded parts raises `NotebookError`.
"""

from __future__ import annotations

import ast
import re

from grader.ingest.model import (
    Cell,
    FoundBy,
    NotebookError,
    Parsed,
    PartInfo,
    Problem,
    Stmt,
)
from grader.ingest.names import describe_cell
from grader.ingest.resolving import Resolver


def locate_parts(
    parsed: Parsed, resolver: Resolver, graded: tuple[str, ...]
) -> tuple[dict[str, PartInfo], list[tuple[Stmt, str]], list[Problem]]:
    """The graded parts found, each winning definition with its part's name, and the problems
    found on the way, in ``graded`` order. Raises `NotebookError` when no part is there."""
    cells = {c.index: c for c in parsed.cells}
    parts: dict[str, PartInfo] = {}
    winners: list[tuple[Stmt, str]] = []
    problems: list[Problem] = []
    for name in graded:
        defs = resolver.definitions(name)
        if not defs:
            problems.append(missing_problem(name, parsed.cells))
            continue
        winner = defs[-1]
        cell = cells[winner.cell_index]
        parts[name] = PartInfo(
            name=name,
            cell_index=winner.cell_index,
            line=winner.line,
            found_by=found_by(name, cell),
            source=winner.text,
            attempted=is_attempted(winner.node),
        )
        if len(defs) > 1:
            problems.append(duplicate_problem(name, defs, name))
        if not parts[name].attempted:
            problems.append(
                Problem(
                    kind="not_attempted",
                    message=f"`{name}` has not been attempted yet: it still raises "
                    "NotImplementedError.",
                    part=name,
                    cell_index=winner.cell_index,
                    line=winner.line,
                )
            )
        winners.append((winner, name))

    if not parts and not any(p.kind == "missing_part" and p.line for p in problems):
        raise NotebookError(
            "This notebook contains none of the graded parts ("
            + ", ".join(graded)
            + "). Submit the course notebook with your solutions filled in."
        )
    return parts, winners, problems


def found_by(name: str, cell: Cell) -> FoundBy:
    if cell.tagged and cell.header in (None, name):
        return "tag"
    if cell.header == name:
        return "header"
    return "name"


def duplicate_problem(name: str, defs: list[Stmt], part: str) -> Problem:
    where = ", ".join(f"cell {d.cell_index + 1}" for d in defs)
    last = defs[-1]
    return Problem(
        kind="duplicate_definition",
        message=(
            f"`{name}` is defined {len(defs)} times ({where}); the grader uses the last one, in "
            f"cell {last.cell_index + 1}, as running the notebook from top to bottom would."
        ),
        part=part,
        cell_index=last.cell_index,
        line=last.line,
    )


def missing_problem(name: str, cells: list[Cell]) -> Problem:
    """Explain a missing part as precisely as the notebook allows."""
    definition = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", re.MULTILINE)
    for cell in reversed(cells):
        if cell.error is None:
            continue
        if cell.header == name or definition.search(cell.raw):
            return Problem(
                kind="missing_part",
                message=(
                    f"`{name}` is missing (syntax error at cell {cell.index + 1} line "
                    f"{cell.error.line}): fix the syntax error so the grader can read it."
                ),
                part=name,
                cell_index=cell.index,
                line=cell.error.line,
            )
    for cell in cells:
        if cell.header == name:
            return Problem(
                kind="missing_part",
                message=(
                    f"`{name}` is missing: {describe_cell(cell)} defines no function or class "
                    f"called `{name}` (was it renamed?)."
                ),
                part=name,
                cell_index=cell.index,
            )
    return Problem(
        kind="missing_part",
        message=f"`{name}` is missing: no function or class called `{name}` was found.",
        part=name,
    )


# --------------------------------------------------------------------------- stubs


def _raises_not_implemented(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def is_attempted(node: ast.stmt) -> bool:
    """Unattempted while the stub's ``raise NotImplementedError`` is still anywhere in the function
    (the course's stubs keep given lines such as ``rng = np.random.default_rng(rng)`` before it),
    or, for a class, in any of its methods."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return not any(
            isinstance(inner, ast.stmt) and _raises_not_implemented(inner)
            for inner in ast.walk(node)
        )
    return True
