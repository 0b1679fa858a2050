"""Diagnosis before a hint: a failed check names a cause only when that cause was observed.

Why: a hint written for one mistake and fired because a value was wrong names causes that are not
there. So when a check fails, the grader runs the known mistakes of the reference on the same
inputs as the learner's code, here in the trusted process, and names the one whose outputs match
the learner's. The known mistakes are:

- the check's own models of a mistake (what code with that mistake returns on these inputs,
  computed by the check: :class:`Model`), tried first;
- the assignment's catalogue of typical mistakes (``mistakes.yaml`` in its folder: each a small
  edit of the solution's definition of a part, with its hint: :class:`KnownMistake`);
- the audit's mutants of the solution (``grader.audit``), when the audit is installed, named by
  what was changed, never by the solution's code.

The catalogue and the mutants run the solution notebook's code with one definition changed: they
need the solution (grading has it; a learner's self-check has not, and then only the check's own
models are tried). Without a match the check says what was expected and what came back, and
suggests nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from grader.assignment import Assignment

if TYPE_CHECKING:
    from grader.checking.submission import Submission

#: The catalogue of typical mistakes, in an assignment's folder (see assignments/AUTHORING.md).
CATALOGUE = "mistakes.yaml"

log = logging.getLogger(__name__)

#: The submission a known mistake runs as: ``grader.checking.in_process`` registers its class here
#: when it is imported (the in-process submission is a Submission, which uses this module: a
#: registry instead of an import cycle).
IN_PROCESS: list[Callable[..., Submission]] = []


@dataclass(frozen=True)
class Model:
    """A mistake as the check models it: what code with that mistake returns on the check's
    inputs, and the hint naming it."""

    returns: Any
    hint: str


@dataclass(frozen=True)
class KnownMistake:
    """A typical mistake: the solution's definition of ``part`` with ``edits`` applied (each an
    exact text replacement), and the hint a learner gets when their code behaves like it."""

    ident: str
    part: str
    hint: str
    edits: tuple[tuple[str, str], ...] = ()
    definition: str | None = None  # or the whole changed definition (a mutant's)

    def changed(self, original: str) -> str:
        """The part's definition with this mistake in it."""
        if self.definition is not None:
            return self.definition
        text = original
        for old, new in self.edits:
            if old not in text:
                raise ValueError(f"mistake {self.ident!r}: {old!r} is not in {self.part}")
            text = text.replace(old, new)
        return text


class CatalogueError(ValueError):
    """A malformed ``mistakes.yaml``; the message says where."""


def load_catalogue(folder: Path) -> tuple[KnownMistake, ...]:
    """The typical mistakes listed in ``folder/mistakes.yaml`` (none when there is no file)."""
    path = folder / CATALOGUE
    if not path.is_file():
        return ()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise CatalogueError(f"{path}: expected a list of mistakes")
    mistakes = []
    for index, entry in enumerate(data):
        where = f"{path}, entry {index + 1}"
        if not isinstance(entry, dict) or not {"id", "part", "hint", "replace"} <= set(entry):
            raise CatalogueError(f"{where}: each mistake needs id, part, hint and replace")
        edits = entry["replace"]
        if not isinstance(edits, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(t, str) for t in e)
            for e in edits
        ):
            raise CatalogueError(f"{where}: replace is a list of [old, new] text pairs")
        mistakes.append(
            KnownMistake(
                ident=str(entry["id"]),
                part=str(entry["part"]),
                hint=" ".join(str(entry["hint"]).split()),
                edits=tuple((old, new) for old, new in edits),
            )
        )
    idents = [m.ident for m in mistakes]
    if len(set(idents)) != len(idents):
        raise CatalogueError(f"{path}: mistake ids must be unique")
    return tuple(mistakes)


def _mutants(assignment: Assignment, part: str) -> list[KnownMistake]:
    """The audit's mutants of ``part``, as known mistakes (none when the audit is not there),
    named by what was changed, never by the solution's code."""
    try:
        from grader.mutation import mutants_of
    except ImportError:
        return []
    return [
        KnownMistake(
            ident=m.id,
            part=part,
            hint=f"your {part} behaves exactly like a right one with {m.description}",
            definition=m.definition,
        )
        for m in mutants_of(assignment, part)
    ]


def agree(a: Any, b: Any, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Whether two results are the same data: numbers within tolerance, NaN never equal to
    anything (a NaN result matches no mistake), containers item by item."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(agree(a[k], b[k], rtol=rtol, atol=atol) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(
            agree(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b, strict=True)
        )
    try:
        x, y = np.asarray(a), np.asarray(b)
    except (TypeError, ValueError):
        return a == b
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        return bool(np.array_equal(x, y)) if x.shape == y.shape else False
    if x.shape != y.shape:
        return False
    x, y = x.astype(np.float64), y.astype(np.float64)
    return bool(np.all(np.isfinite(x)) and np.all(np.isfinite(y))) and bool(
        np.allclose(x, y, rtol=rtol, atol=atol)
    )


class Diagnoser:
    """Runs an assignment's known mistakes, in this trusted process, for the failed checks of
    one grading. Built lazily: the solution is read only when a check first fails."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self._base: dict[str, Any] | None = None
        self._definitions: dict[str, str] = {}
        self._submissions: dict[str, Submission | None] = {}
        self._catalogue: tuple[KnownMistake, ...] | None = None

    @property
    def catalogue(self) -> tuple[KnownMistake, ...]:
        if self._catalogue is None:
            self._catalogue = load_catalogue(self.assignment.folder)
        return self._catalogue

    def mistakes(self, part: str, *, mutants: bool = True) -> list[KnownMistake]:
        """The known mistakes of ``part``: the catalogue's first, then the audit's mutants."""
        listed = [m for m in self.catalogue if m.part == part]
        return listed + (_mutants(self.assignment, part) if mutants else [])

    def _solution(self) -> dict[str, Any] | None:
        """The solution notebook's kept code, run once in a namespace of its own."""
        if self._base is None:
            solution = self.assignment.solution
            if solution is None or not solution.is_file():
                return None
            from grader import worker
            from grader.ingest import ingest

            ingested = ingest(solution, self.assignment.ingest_rules())
            self._definitions = {name: info.source for name, info in ingested.parts.items()}
            namespace: dict[str, Any] = {"__name__": worker.LEARNER_MODULE}
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(ingested.source, "<solution>", "exec"), namespace)
            self._base = namespace
        return self._base

    def submission(self, mistake: KnownMistake) -> Submission | None:
        """The solution with ``mistake`` in it, as a submission the checks' probes can drive."""
        if mistake.ident in self._submissions:
            return self._submissions[mistake.ident]
        made: Submission | None = None
        base = self._solution()
        if base is not None and mistake.part in self._definitions and IN_PROCESS:
            namespace = dict(base)  # the other parts stay the solution's
            try:
                code = mistake.changed(self._definitions[mistake.part])
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(code, f"<{mistake.ident}>", "exec"), namespace)
                made = IN_PROCESS[0](namespace, None, self.assignment)
            except Exception as error:  # a catalogue entry that no longer applies: say so once
                log.warning("known mistake %s cannot run: %s", mistake.ident, error)
        self._submissions[mistake.ident] = made
        return made

    def explain(
        self,
        part: str,
        measure: Callable[[Submission], Any],
        got: Any,
        *,
        same: Callable[[Any, Any], bool] = agree,
        mutants: bool = True,
    ) -> str:
        """The hint of the first known mistake of ``part`` whose ``measure`` equals ``got`` (the
        learner's, measured the same way); "" when none does. ``mutants=False``: the catalogue
        only (for a measure that costs seconds, such as a fit)."""
        for mistake in self.mistakes(part, mutants=mutants):
            submission = self.submission(mistake)
            if submission is None:
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    theirs = measure(submission)
            except Exception:  # this mistake fails differently: not the learner's
                continue
            if same(theirs, got):
                return mistake.hint
        return ""


def first_model(models: Iterable[Model], got: Any, same: Callable[[Any, Any], bool]) -> str:
    """The hint of the check's own mistake models that return ``got``; "" when none does, or when
    models with different hints do (on these inputs the cause was not told apart)."""
    hints = {model.hint for model in models if same(model.returns, got)}
    return hints.pop() if len(hints) == 1 else ""
