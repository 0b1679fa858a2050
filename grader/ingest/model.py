"""The ingestion stage's data: what it returns, the problems it reports, its internal records.

Why this module exists: every other module of the stage speaks in these types (a `Problem` for the
learner, a `PartInfo` per graded part found, the `Stmt` records that cells are parsed into, the
`IngestRules` an assignment gives the stage), so they live below all of them and import nothing
from the stage. The result type, `IngestedNotebook`, is in `pipeline` next to the code that builds it, because it
carries the original-course findings.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from grader.assignment import Part

GRADED_TAG = "graded"
#: Cells the assignment provides (its given material): their assignments are kept even when they
#: call the notebook's own helper functions, since graded parts depend on them.
SETUP_TAG = "setup"
DEFAULT_MAX_BYTES = 20_000_000  # a notebook with cleared outputs is well under 1 MB

FoundBy = Literal["tag", "header", "name"]
ProblemKind = Literal[
    "bad_file",
    "invalid_notebook",
    "missing_part",
    "syntax_error",
    "duplicate_definition",
    "not_attempted",
    "dropped_dependency",
    "dropped_statement",
    "misspelt_method",
]


class NotebookError(Exception):
    """The file is not a usable notebook; `message` is meant for the learner, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_problem(self) -> Problem:
        """The same verdict as a `Problem`, for reports that list problems uniformly."""
        return Problem(kind="bad_file", message=self.message)


@dataclass(frozen=True)
class Problem:
    """Something the learner should know about; ``message`` is written for them."""

    kind: ProblemKind
    message: str
    part: str | None = None
    cell_index: int | None = None  # 0-based index into nb.cells
    line: int | None = None  # 1-based line within that cell


@dataclass(frozen=True)
class PartInfo:
    """Where a graded part was found and what it looks like, for the report."""

    name: str
    cell_index: int  # 0-based index into nb.cells
    line: int  # 1-based line of the definition (or its first decorator) within the cell
    found_by: FoundBy
    source: str  # the definition's text, decorators included
    attempted: bool  # False while the body is still the ``raise NotImplementedError()`` stub


# --------------------------------------------------------------------------- parsed cells

StmtKind = Literal["import", "def", "assign", "other"]


@dataclass(eq=False)
class Stmt:
    """One top-level statement of a code cell (or an import nested in a top-level try/if)."""

    order: int  # position in notebook order, over all kept-or-dropped statements
    cell_index: int
    line: int  # 1-based line in the original cell
    node: ast.stmt
    text: str
    kind: StmtKind
    binds: frozenset[str]
    early: frozenset[str] = frozenset()  # global names used when the statement runs
    late: frozenset[str] = frozenset()  # global names used when its functions are called
    call_roots: frozenset[str] = frozenset()  # for assignments: names at the root of calls
    simple: bool = False  # for assignments: passes the structural part of the constant rule


@dataclass
class Cell:
    """A code cell as parsed: its tag, its ``# GRADED`` header, its syntax error if any."""

    index: int
    tagged: bool
    header: str | None
    error: Problem | None = None
    raw: str = ""


@dataclass
class Parsed:
    """All code cells of a notebook and their statements, in notebook order."""

    cells: list[Cell] = field(default_factory=list)
    stmts: list[Stmt] = field(default_factory=list)
    imports: list[Stmt] = field(default_factory=list)


@dataclass(frozen=True)
class Habit:
    """An idiom of another course (the one an assignment's learners come from) found in a
    submission, with the assignment's row of what differs: where, what was found, what to write."""

    kind: str  # which row of the assignment's table of differences
    evidence: str  # what was found, for the learner
    original: str  # what the other course did
    here: str  # what this assignment asks
    line_to_write: str
    cell_index: int | None = None
    line: int | None = None


@dataclass(frozen=True)
class IngestRules:
    """What ingestion needs of an assignment: its graded parts (notebook order), their kinds and
    stubs (``specs``: near names and misspelt methods are judged by kind), and two optional
    advisers (``grader.assignment``'s hooks ``dropped_advice`` and ``habits``)."""

    parts: tuple[str, ...]
    specs: tuple[Part, ...] = ()
    #: (global name, statement text) -> what to write instead of top-level code not run, or None.
    dropped_advice: Callable[[str, str], str | None] | None = None
    #: (Parsed, Resolver) -> the other course's idioms found.
    habits: Callable[[Parsed, Any], tuple[Habit, ...]] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
