"""The ingestion pipeline: a submitted notebook in, an `IngestedNotebook` out.

Why this module exists: it is the one place that runs the stages in order (read and validate,
parse the cells, resolve names, locate the graded parts, keep what they need, look for another
course's idioms with the assignment's ``habits`` adviser, look for near names of missing parts
and misspelt methods in every cell) and assembles their result: the learner source that, exec'd in a fresh namespace,
defines the parts, plus every problem found, in the order the learner reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from grader.ingest.keeping import assemble, dropped_statements, keep_needed
from grader.ingest.locating import locate_parts
from grader.ingest.model import (
    SETUP_TAG,
    Habit,
    IngestRules,
    NotebookError,
    PartInfo,
    Problem,
)
from grader.ingest.names import NearName, collect_definitions, misspelt_methods, near_names
from grader.ingest.parsing import cell_tags, parse_cells
from grader.ingest.reading import check_size, parse_json_bytes, read_submission, to_v4
from grader.ingest.resolving import Resolver


@dataclass(frozen=True)
class IngestedNotebook:
    """The result of ingestion: ``source``, exec'd in a fresh namespace, defines the parts."""

    source: str
    parts: dict[str, PartInfo]
    problems: list[Problem]
    nbformat_version: tuple[int, int]  # as submitted, before any upgrade
    sha256: str  # of the submitted bytes (of canonical JSON for `ingest_notebook`)
    graded: tuple[str, ...] = ()  # the assignment's graded parts, in notebook order
    #: Signs that the notebook was written for another course (the assignment's ``habits``).
    habits: tuple[Habit, ...] = ()
    #: Missing part -> definitions of its kind under a near name, in every cell (`names`).
    near_names: Mapping[str, tuple[NearName, ...]] = field(default_factory=dict)

    @property
    def shows_habits(self) -> bool:
        """Two or more kinds of the other course's idiom: the report opens with their rows."""
        return len({h.kind for h in self.habits}) >= 2

    @property
    def missing(self) -> tuple[str, ...]:
        """Graded parts that could not be found, in notebook order."""
        return tuple(name for name in self.graded if name not in self.parts)


def ingest(path: Path | str, rules: IngestRules) -> IngestedNotebook:
    """Read, validate and ingest a submitted notebook file, for the assignment's ``rules``.

    Raises `NotebookError` when the file is not a usable notebook (too big, empty, not JSON,
    not nbformat 4, no graded part at all); everything else is reported in ``problems``.
    """
    return ingest_bytes(read_submission(Path(path), rules.max_bytes), rules)


def ingest_bytes(data: bytes, rules: IngestRules, *, sha256: str = "") -> IngestedNotebook:
    """:func:`ingest` of a submitted file's bytes (a grading holds them in memory). ``sha256``:
    their digest when the caller took it already (a grading hashes its notebook once)."""
    check_size(data, rules.max_bytes)
    nbdict = parse_json_bytes(data)
    return _ingest_dict(nbdict, rules, sha256 or hashlib.sha256(data).hexdigest())


def ingest_notebook(nb: NotebookNode | Mapping[str, Any], rules: IngestRules) -> IngestedNotebook:
    """Ingest an in-memory notebook (any nbformat 4 minor); the caller's object is not modified."""
    if not isinstance(nb, Mapping):
        raise NotebookError("This is not a Jupyter notebook (expected a JSON object).")
    canonical = json.dumps(nb, sort_keys=True, default=str).encode("utf-8", "replace")
    return _ingest_dict(nb, rules, hashlib.sha256(canonical).hexdigest())


def _ingest_dict(nbdict: Any, rules: IngestRules, sha256: str) -> IngestedNotebook:
    nb, version, problems = to_v4(nbdict)
    parsed = parse_cells(nb)
    problems.extend(c.error for c in parsed.cells if c.error is not None)
    setup_cells = frozenset(
        index for index, cell in enumerate(nb.cells) if SETUP_TAG in cell_tags(cell)
    )
    resolver = Resolver(parsed.stmts, parsed.imports, setup_cells, rules.parts)
    parts, winners, located = locate_parts(parsed, resolver, rules.parts)
    problems += located
    specs = {spec.name: spec for spec in rules.specs}
    for winner, name in winners:
        if name in specs:
            problems += misspelt_methods(specs[name], winner)
    definitions = collect_definitions(parsed)
    near = {
        name: near_names(specs[name], definitions, rules.parts)
        for name in rules.parts
        if name not in parts and name in specs
    }
    keep, used, kept_problems = keep_needed(resolver, winners, rules.parts, rules.dropped_advice)
    problems += kept_problems
    problems += dropped_statements(parsed, resolver, keep, used, rules.dropped_advice)
    source = assemble(parsed, sorted(keep.values(), key=lambda s: s.order))
    return IngestedNotebook(
        source=source,
        parts=parts,
        problems=problems,
        nbformat_version=version,
        sha256=sha256,
        graded=rules.parts,
        habits=rules.habits(parsed, resolver) if rules.habits else (),
        near_names={name: found for name, found in near.items() if found},
    )
