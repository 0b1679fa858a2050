"""What a grading keeps for the learner's report besides the verdicts: :class:`Artifacts`.

Why a module of its own: the checks fill part of it while they run (``submission.artifacts``: the
trained model's predictions on hidden inputs, its history, the callback's figure) and the
grading stage (``grader.grade``) adds the rest (problems, the code graded, captured output); the
report (``grader.results``) only reads it and draws its pictures into a separate mapping of PNGs.
Plain data, one meaning per field: nothing here is drawn or encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainingRun:
    """How the training probe went, from the worker's report (None: not reported)."""

    steps: int | None = None  # optimiser steps run (the budget is epochs x steps per epoch)
    epochs: int | None = None
    train_seconds: float | None = None  # wall clock of fit() in the worker


@dataclass
class HabitsFound:
    """Another course's idioms found in the notebook, as the report's table shows them."""

    heading: str  # the report's heading over the table (the ``habits_heading`` hook)
    intro: str  # the assignment's opening line (its ``habits_intro`` hook)
    rows: list[dict[str, Any]]  # grader.ingest.habit_rows(): found, where, original, here, line


@dataclass
class Artifacts:
    """Data for the learner's report; each field is empty until a check or the grading fills it."""

    #: The trained model's outputs on hidden inputs, in the assignment's own type (its training
    #: check sets it, its ``pictures`` hook draws it); dropped when the grading is not a verdict.
    predictions: Any = None
    history: dict[str, list[float]] = field(default_factory=dict)  # Keras History.history
    training: TrainingRun | None = None
    callback_figure: np.ndarray | None = None  # (h, w, 3) the learner callback's figure, rendered
    problems: list[str] = field(default_factory=list)  # what the notebook reader found, shown
    code: dict[str, str] = field(default_factory=dict)  # graded part -> the source graded
    habits: HabitsFound | None = None  # another course's idioms in the notebook (2 kinds or more)
    captured_output: str = ""  # the worker's stdout and stderr, capped
