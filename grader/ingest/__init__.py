"""Ingestion: turn a submitted notebook into a Python module that only *defines* things.

Why this stage exists: a learner's notebook also trains models, plots, installs packages and
may loop forever. The grader must load the learner's definitions without running any of that,
and must give every file a verdict, however broken (DESIGN.md, invariants 1 and 2). So:

* the file is read defensively and anything that is not a usable notebook raises `NotebookError`
  with a message written for the learner (`reading`);
* code cells become top-level statements, IPython syntax (``%magic``, ``%%cell_magic``,
  ``!shell``) rewritten by IPython's own `TransformerManager` into ``get_ipython()...`` calls
  (`parsing`), and names resolve as running the notebook top to bottom would (`resolving`);
* the assignment's graded parts (`IngestRules.parts`) are found by cell tag, ``# GRADED: <name>`` header or plain
  definition name (`locating`), and only what they need is kept: imports, definitions and
  constants (`keeping`, which states the keep rule);
* near names of missing parts (``SCORE`` for ``Score``) are looked for in every cell, among
  definitions of the part's kind, and misspelt methods of graded classes named (`names`);
* another course's idioms are looked for by the assignment's adviser and presented as the rows of
  its table of differences that apply (`habits`).

`pipeline` runs these in order. Cell numbers in messages count from 1 over all cells, markdown
included; the ``cell_index`` fields are the 0-based index into ``nb.cells``. Line numbers are
1-based within the cell.
"""

from grader.ingest.habits import habit_rows, habits_text
from grader.ingest.model import (
    DEFAULT_MAX_BYTES,
    Habit,
    IngestRules,
    NotebookError,
    Parsed,
    PartInfo,
    Problem,
    Stmt,
)
from grader.ingest.names import Definition, NearName
from grader.ingest.pipeline import IngestedNotebook, ingest, ingest_bytes, ingest_notebook
from grader.ingest.reading import submission_hash
from grader.ingest.resolving import Resolver

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Definition",
    "Habit",
    "IngestRules",
    "IngestedNotebook",
    "NearName",
    "NotebookError",
    "Parsed",
    "PartInfo",
    "Problem",
    "Resolver",
    "Stmt",
    "habit_rows",
    "habits_text",
    "ingest",
    "ingest_bytes",
    "ingest_notebook",
    "submission_hash",
]
