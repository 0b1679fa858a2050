"""The ingestion pipeline: a submitted notebook in, an `IngestedNotebook` out.

Why this module exists: it is the one place that runs the stages in order (read and validate,
parse the cells, resolve names, locate the graded parts, keep what they need, look for the original
course's idioms) and assembles their result: the learner source that, exec'd in a fresh namespace,
defines the parts, plus every problem found, in the order the learner reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from grader.ingest.keeping import assemble, dropped_statements, keep_needed
from grader.ingest.locating import locate_parts
from grader.ingest.model import (
    DEFAULT_MAX_BYTES,
    GRADED_PARTS,
    SETUP_TAG,
    NotebookError,
    PartInfo,
    Problem,
)
from grader.ingest.original_course import CourseFinding, find_original_course
from grader.ingest.parsing import cell_tags, parse_cells
from grader.ingest.reading import parse_json_bytes, read_submission, to_v4
from grader.ingest.resolving import Resolver


@dataclass(frozen=True)
class IngestedNotebook:
    """The result of ingestion: ``source``, exec'd in a fresh namespace, defines the parts."""

    source: str
    parts: dict[str, PartInfo]
    problems: list[Problem]
    nbformat_version: tuple[int, int]  # as submitted, before any upgrade
    sha256: str  # of the submitted bytes (of canonical JSON for `ingest_notebook`)
    #: Signs that the notebook was written for the original guided project (see `Difference`).
    original_course: tuple[CourseFinding, ...] = ()

    @property
    def looks_original(self) -> bool:
        """Two or more kinds of original-course idiom: the report opens with their rows."""
        return len({f.difference for f in self.original_course}) >= 2

    @property
    def missing(self) -> tuple[str, ...]:
        """Graded parts that could not be found, in `GRADED_PARTS` order."""
        return tuple(name for name in GRADED_PARTS if name not in self.parts)


def ingest(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> IngestedNotebook:
    """Read, validate and ingest a submitted notebook file.

    Raises `NotebookError` when the file is not a usable notebook (too big, empty, not JSON,
    not nbformat 4, no graded part at all); everything else is reported in ``problems``.
    """
    data = read_submission(Path(path), max_bytes)
    nbdict = parse_json_bytes(data)
    result = _ingest_dict(nbdict)
    return replace(result, sha256=hashlib.sha256(data).hexdigest())


def ingest_notebook(nb: NotebookNode | Mapping[str, Any]) -> IngestedNotebook:
    """Ingest an in-memory notebook (any nbformat 4 minor); the caller's object is not modified."""
    if not isinstance(nb, Mapping):
        raise NotebookError("This is not a Jupyter notebook (expected a JSON object).")
    return _ingest_dict(nb)


def _ingest_dict(nbdict: Any) -> IngestedNotebook:
    nb, version, problems = to_v4(nbdict)
    parsed = parse_cells(nb)
    problems.extend(c.error for c in parsed.cells if c.error is not None)
    setup_cells = frozenset(
        index for index, cell in enumerate(nb.cells) if SETUP_TAG in cell_tags(cell)
    )
    resolver = Resolver(parsed.stmts, parsed.imports, setup_cells)
    parts, winners, located = locate_parts(parsed, resolver)
    problems += located
    keep, used, kept_problems = keep_needed(resolver, winners)
    problems += kept_problems
    problems += dropped_statements(parsed, resolver, keep, used)
    source = assemble(parsed, sorted(keep.values(), key=lambda s: s.order))
    return IngestedNotebook(
        source=source,
        parts=parts,
        problems=problems,
        nbformat_version=version,
        sha256=hashlib.sha256(
            json.dumps(nbdict, sort_keys=True, default=str).encode("utf-8", "replace")
        ).hexdigest(),
        original_course=find_original_course(parsed, resolver),
    )
