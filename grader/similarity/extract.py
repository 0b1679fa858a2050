"""What is compared: the code of each submission's graded cells, read the way grading reads it.

Why through ``grader.ingest``: it finds the graded parts by cell tag, ``# GRADED`` header or
definition name, so a learner who lost a tag, or a copier who pasted the parts into a fresh
notebook, is compared on the same code. A part found in its own (tagged or headed) cell is
compared as the whole cell, with the helpers the learner wrote beside it; a part found only by
its name is compared as its definition, not as the whole cell it sits in (that cell may hold a
training run). Nothing here runs learner code: ingestion only parses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignment import Assignment
from grader.batch.discovery import BatchItem
from grader.ingest import IngestRules, NotebookError, ingest_notebook
from grader.ingest.reading import check_size, parse_json_bytes, to_v4


@dataclass(frozen=True)
class GradedCode:
    """One notebook's graded code: ``cells`` maps a label (the parts it holds) to its code, in
    notebook order; ``problem`` says why nothing could be read (then ``cells`` is empty)."""

    id: str
    source: str  # shown to the instructor: a path, or "archive.zip!member"
    cells: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    sha256: str = ""  # of the notebook's bytes: which grading in a results folder is of it

    @property
    def document(self) -> str:
        """The code compared: the cells one after another, each under a comment naming its parts
        (comments are not compared, so the labels never match anything)."""
        return "".join(f"# {label}\n{code.rstrip()}\n\n" for label, code in self.cells.items())


def quick_rules(assignment: Assignment) -> IngestRules:
    """The assignment's ingestion rules without its advisers (they only word the learner's
    report, and cost time on every notebook)."""
    return dataclasses.replace(assignment.ingest_rules(), habits=None, dropped_advice=None)


def graded_cells(data: bytes, rules: IngestRules) -> dict[str, str]:
    """Label -> code of the cells holding the graded parts, in notebook order. Raises
    ``NotebookError`` (with the grader's own wording) when the bytes are no usable notebook."""
    notebook, _, _ = to_v4(parse_json_bytes(check_size(data, rules.max_bytes)))
    ingested = ingest_notebook(notebook, rules)
    found: dict[tuple[int, int], tuple[list[str], str]] = {}
    for name in rules.parts:
        info = ingested.parts.get(name)
        if info is None:
            continue
        if info.found_by == "name":
            key, code = (info.cell_index, info.line), info.source
        else:
            key, code = (info.cell_index, 0), notebook.cells[info.cell_index].source
        found.setdefault(key, ([], code))[0].append(name)
    return {", ".join(names): code for _, (names, code) in sorted(found.items())}


def read_item(item: BatchItem, rules: IngestRules) -> GradedCode:
    """The graded code of one discovered submission; its ``problem`` when it has none."""
    if item.rejected:
        return GradedCode(item.id, item.source, problem=item.rejected)
    try:
        data = item.read()
        cells = graded_cells(data, rules)
    except NotebookError as error:
        return GradedCode(item.id, item.source, problem=str(error))
    except OSError as error:
        return GradedCode(item.id, item.source, problem=f"could not be read: {error}")
    if not cells:
        return GradedCode(item.id, item.source, problem="no graded part found")
    return GradedCode(item.id, item.source, cells, sha256=hashlib.sha256(data).hexdigest())


def read_notebook(path: Path, rules: IngestRules, ident: str | None = None) -> GradedCode:
    """The graded code of a notebook file (the assignment's own notebooks, tests)."""
    return read_item(BatchItem(ident or path.stem, str(path), path.name, path=path), rules)


def read_all(
    items: list[BatchItem],
    assignment: Assignment,
    *,
    jobs: int | None = None,
    on_read: Callable[[GradedCode], None] | None = None,
) -> list[GradedCode]:
    """The graded code of every item, in order, ingested in ``jobs`` processes (default: one per
    core; 1: here). Ingestion is most of the time a cohort takes, and independent per notebook."""
    jobs = jobs or os.cpu_count() or 1
    done: list[GradedCode] = []
    for code in _read_many(items, assignment, min(jobs, max(1, len(items) // 8))):
        done.append(code)
        if on_read is not None:
            on_read(code)
    return done


def _read_many(items: list[BatchItem], assignment: Assignment, jobs: int) -> Iterator[GradedCode]:
    if jobs <= 1:
        rules = quick_rules(assignment)
        yield from (read_item(item, rules) for item in items)
        return
    chunk = max(1, min(16, len(items) // (jobs * 4)))
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(_read_in_worker, items, [assignment] * len(items), chunksize=chunk)


def _read_in_worker(item: BatchItem, assignment: Assignment) -> GradedCode:
    return read_item(item, _rules_of(assignment))


_RULES: dict[str, IngestRules] = {}


def _rules_of(assignment: Assignment) -> IngestRules:
    """A worker process's rules, built once per assignment (hooks import modules)."""
    key = str(assignment.folder)
    if key not in _RULES:
        _RULES[key] = quick_rules(assignment)
    return _RULES[key]


def given_code(assignment: Assignment) -> list[GradedCode]:
    """The code every learner was given or is expected to write: the learner notebook's stubs and
    the solution notebook's reference (whichever of the two the assignment declares)."""
    rules = quick_rules(assignment)
    given = []
    for label, path in (("stubs", assignment.learner), ("reference", assignment.solution)):
        if path is not None and Path(path).is_file():
            given.append(read_notebook(Path(path), rules, label))
    return given
