"""The shipped course as the tests use it: its assignment, its notebooks and ingestion bound to
its rules (the engine itself takes the assignment as an argument)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from grader import ingest as _ingest
from grader.assignment import resolve

COURSE = resolve("object_localization")
GRADED_PARTS = COURSE.part_names
SOLUTION_NOTEBOOK: Path = COURSE.solution
LEARNER_NOTEBOOK: Path = COURSE.learner
STUB_SIGNATURES = {part.name: part.stub for part in COURSE.parts}
RULES = COURSE.ingest_rules()


def ingest(path: Path | str, **rules: Any) -> _ingest.IngestedNotebook:
    """``grader.ingest.ingest`` with the course's rules (``rules`` overrides, e.g. max_bytes)."""
    return _ingest.ingest(path, dataclasses.replace(RULES, **rules))


def ingest_notebook(nb: Any) -> _ingest.IngestedNotebook:
    return _ingest.ingest_notebook(nb, RULES)


#: The course's known causes of learner errors (its ``known_causes`` hook).
CAUSES = tuple(COURSE.hook("known_causes"))
