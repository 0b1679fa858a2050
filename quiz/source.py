"""Where a quiz comes from: an assignment's ``quiz/`` folder and its ``quiz_generators`` hook.

Why: the quiz names no course. An assignment (``grader.assignment``) that has a quiz keeps its
bank files and ``quiz.yaml`` in ``quiz/`` beside its manifest, and gives the generators of its
parameterised questions through the manifest's ``quiz_generators`` hook; ``quiz`` (the command),
the course server and the exports all start from :func:`quiz_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.assignment import Assignment, resolve
from quiz.bank import DEFINITION_NAME, Bank, QuizDefinition, load_bank, load_definition
from quiz.generators import NO_GENERATORS, Generators

QUIZ_FOLDER = "quiz"


@dataclass(frozen=True)
class QuizSource:
    """One assignment's quiz: its name (the LMS category of its exports), the bank folder (the
    question files and ``quiz.yaml``) and the generators its templates name."""

    name: str
    folder: Path
    generators: Generators

    @property
    def definition_path(self) -> Path:
        return self.folder / DEFINITION_NAME

    def load(
        self, extra: Iterable[Path] = (), *, own: bool = True, definition: Path | None = None
    ) -> tuple[Bank, QuizDefinition]:
        """The validated bank (this folder unless ``own`` is False, plus ``extra`` files or
        folders) and the definition (``definition``, else this folder's quiz.yaml)."""
        bank = load_bank([*([self.folder] if own else []), *extra], self.generators)
        return bank, load_definition(definition or self.definition_path, bank)


def quiz_of(assignment: Assignment | str | Path | None = None) -> QuizSource | None:
    """The quiz of ``assignment`` (a name, a folder, or None: the only one installed), None when
    it has none; AssignmentError when there is no such assignment."""
    chosen = resolve(assignment)
    folder = chosen.folder / QUIZ_FOLDER
    if not (folder / DEFINITION_NAME).is_file():
        return None
    return QuizSource(chosen.name, folder, chosen.hook("quiz_generators", NO_GENERATORS))
