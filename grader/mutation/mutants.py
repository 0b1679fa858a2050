"""The mutants of an assignment: its solution with one small mistake in one graded part.

The solution notebook is ingested with the assignment's rules, as grading would (the graded
parts' cells and definitions found, the namespace source kept); each graded part's definition is
mutated by every operator of :mod:`grader.mutation.operators` (the formatting of a mutated
definition is ``ast.unparse``'s). A :class:`Mutant` carries a stable id (its part, its operator,
a digest of the changed line before and after, and which occurrence of that change it is: line
moves and edits elsewhere keep it), a description that quotes no code (learners may read it),
the changed line before and after (for the author), the mutated definition and the namespace
source grading would exec (the reference's kept source with that definition in its place).

:func:`mutants_of` is cheap (parsing only, no grading): the trusted process may call it at grading
time to run the known mistakes of a part on the learner's inputs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.assignment import Assignment, AssignmentError, Part, PartKind, resolve
from grader.ingest import IngestedNotebook, PartInfo, ingest_notebook
from grader.mutation import operators


@dataclass(frozen=True)
class Mutant:
    """The solution with one small mistake in one graded part."""

    id: str  # part/operator/digest[~occurrence]: stable across unrelated edits
    part: str
    operator: str  # one of grader.mutation.operators.OPERATORS
    description: str  # the mistake, quoting no code: "a `-` turned into `+` in update_state"
    original: str  # the changed line of the reference (for the author, never for learners)
    mutated: str  # the same line, mutated
    line: int  # the changed statement's line in its cell (1-based)
    cell_index: int  # 0-based index of the part's cell in the solution notebook
    definition: str  # the mutated definition's source
    source: str  # the namespace source: the reference's kept source with this definition

    def summary(self) -> dict[str, Any]:
        """Everything but the sources, for the audit's JSON."""
        return {k: v for k, v in asdict(self).items() if k not in ("definition", "source")}


@dataclass(frozen=True)
class Reference:
    """The solution notebook as grading sees it."""

    assignment: Assignment
    notebook: NotebookNode
    ingested: IngestedNotebook

    def info(self, part: str) -> PartInfo:
        info = self.ingested.parts.get(part)
        if info is None:
            raise AssignmentError(f"the solution notebook has no graded part {part!r}")
        return info

    def definition(self, part: str) -> ast.stmt:
        return ast.parse(self.info(part).source).body[0]

    def notebook_with(self, mutant: Mutant) -> NotebookNode:
        """The solution with the mutant's cell: its definition replaced, the rest as written."""
        info = self.info(mutant.part)
        nb = nbformat.from_dict(self.notebook)  # a copy
        cell = nb.cells[info.cell_index]
        lines = cell.source.split("\n")
        start, count = info.line - 1, len(info.source.split("\n"))
        if "\n".join(lines[start : start + count]) != info.source:
            raise AssignmentError(f"cannot find the definition of {mutant.part} in its cell")
        cell.source = "\n".join([*lines[:start], mutant.definition, *lines[start + count :]])
        return nb

    def ingest(self, mutant: Mutant) -> IngestedNotebook:
        """The mutated notebook, ingested as grading would."""
        return ingest_notebook(self.notebook_with(mutant), self.assignment.ingest_rules())


def load_reference(assignment: Assignment | str | Path | None) -> Reference:
    """The assignment's solution notebook, ingested with its rules."""
    assignment = resolve(assignment)
    if assignment.solution is None or not assignment.solution.is_file():
        raise AssignmentError(f"assignment {assignment.name!r} has no solution notebook to mutate")
    notebook = nbformat.read(assignment.solution, as_version=4)
    ingested = ingest_notebook(notebook, assignment.ingest_rules())
    missing = ingested.missing
    if missing:
        raise AssignmentError(f"the solution notebook lacks graded part(s) {', '.join(missing)}")
    return Reference(assignment, notebook, ingested)


def _statement_path(root: ast.AST, path: operators.Path) -> operators.Path:
    """The path of the innermost statement holding the node at ``path`` (``()``: the root)."""
    for end in range(len(path), 0, -1):
        if isinstance(operators.node_at(root, path[:end]), ast.stmt):
            return path[:end]
    return ()


def _changed_line(before: str, after: str) -> tuple[str, str]:
    """The first line where two unparsed statements differ (a compound statement's header, or
    its one line)."""
    old, new = before.split("\n"), after.split("\n")
    for a, b in zip(old, new, strict=False):
        if a != b:
            return a.strip(), b.strip()
    return old[min(len(new), len(old) - 1)].strip(), new[min(len(old), len(new) - 1)].strip()


def _place(part: Part, functions: tuple[str, ...]) -> str:
    if part.kind in (PartKind.FUNCTION, PartKind.MODEL, PartKind.SCHEDULE) or not functions:
        return part.name
    return f"{part.name}.{functions[0]}"


def _mutate_part(reference: Reference, part: Part) -> list[Mutant]:
    info = reference.info(part.name)
    root = reference.definition(part.name)
    baseline = ast.unparse(root)
    kept_source = reference.ingested.source
    if kept_source.count(f"\n{info.source}\n") != 1:
        raise AssignmentError(f"cannot find the definition of {part.name} in the kept source")
    seen = {baseline}
    occurrences: dict[tuple[str, str, str], int] = {}
    found: list[Mutant] = []
    for edit in operators.edits(root):
        mutated_root = operators.apply(root, edit)
        text = ast.unparse(mutated_root)
        if text in seen:
            continue  # no change, or the same program as an earlier mutant
        try:
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        seen.add(text)
        where = _statement_path(root, edit.path)
        original_stmt = operators.node_at(root, where)
        if isinstance(edit.replacement, list) and where == edit.path:
            after = "; ".join(ast.unparse(s) for s in edit.replacement)
        else:
            after = ast.unparse(operators.node_at(mutated_root, where))
        original, mutated = _changed_line(ast.unparse(original_stmt), after)
        key = (edit.operator, original, mutated)
        occurrence = occurrences[key] = occurrences.get(key, -1) + 1
        digest = hashlib.sha256(f"{original}\n{mutated}".encode()).hexdigest()[:10]
        found.append(
            Mutant(
                id=f"{part.name}/{edit.operator}/{digest}"
                + (f"~{occurrence}" if occurrence else ""),
                part=part.name,
                operator=edit.operator,
                description=f"{edit.what} in {_place(part, edit.functions)}",
                original=original,
                mutated=mutated,
                line=info.line - 1 + getattr(original_stmt, "lineno", 1),
                cell_index=info.cell_index,
                definition=text,
                source=kept_source.replace(f"\n{info.source}\n", f"\n{text}\n", 1),
            )
        )
    return found


def generate(reference: Reference, parts: Iterable[str] | None = None) -> list[Mutant]:
    """Every mutant of the graded ``parts`` (default: all), in notebook and source order."""
    wanted = set(parts) if parts is not None else None
    unknown = (wanted or set()) - set(reference.assignment.part_names)
    if unknown:
        raise AssignmentError(
            f"no graded part {', '.join(sorted(unknown))}; the parts are "
            + ", ".join(reference.assignment.part_names)
        )
    return [
        mutant
        for part in reference.assignment.parts
        if wanted is None or part.name in wanted
        for mutant in _mutate_part(reference, part)
    ]


@functools.lru_cache(maxsize=8)
def _cached_reference(folder: Path) -> Reference:
    return load_reference(folder)


def mutants_of(
    assignment: Assignment | str | Path | None, part: str, *, ids: Iterable[str] | None = None
) -> list[Mutant]:
    """The mutants of one graded part (those whose id is in ``ids``, e.g. the killed ones of an
    audit's JSON, :func:`grader.audit.report.killed_ids`). No grading: cheap enough to call in the
    trusted process at grading time (the solution is read and ingested once per process)."""
    reference = _cached_reference(resolve(assignment).folder)
    found = generate(reference, [part])
    if ids is not None:
        keep = set(ids)
        found = [m for m in found if m.id in keep]
    return found


def part_uses(reference: Reference) -> dict[str, set[str]]:
    """The other graded parts each part uses: by name in its code, and by probe (the callback
    probe fits the learner's model)."""
    names = set(reference.assignment.part_names)
    uses = {}
    for part in reference.assignment.parts:
        used = {
            node.id
            for node in ast.walk(reference.definition(part.name))
            if isinstance(node, ast.Name)
        }
        uses[part.name] = (used & names) - {part.name}
        if part.kind == PartKind.CALLBACK:
            uses[part.name] |= {
                p.name for p in reference.assignment.parts if p.kind == PartKind.MODEL
            }
    changed = True
    while changed:  # transitive closure
        changed = False
        for part, used in uses.items():
            more = set().union(*(uses[u] for u in used)) - used - {part}
            if more:
                used |= more
                changed = True
    return uses


def checked_parts(reference: Reference, part: str) -> list[str]:
    """The parts whose checks a mutant of ``part`` is graded by: its own, then those of every part
    that uses it (their failures are collateral), in the assignment's order."""
    uses = part_uses(reference)
    return [p for p in reference.assignment.part_names if p == part or part in uses[p]]


def trains(reference: Reference, part: str) -> bool:
    """Whether the training checks judge ``part``: the model, the schedule, and what the model
    uses (e.g. a metric compiled into it)."""
    assignment = reference.assignment
    kinds = {p.name: p.kind for p in assignment.parts}
    if kinds[part] in (PartKind.MODEL, PartKind.SCHEDULE):
        return True
    uses = part_uses(reference)
    return any(part in uses[p] for p, kind in kinds.items() if kind == PartKind.MODEL)
