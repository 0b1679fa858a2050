"""What a grading keeps for the learner's report besides the verdicts: :class:`Artifacts`.

Why a module of its own: the checks fill part of it while they run (``submission.artifacts``: the
trained model's predictions on hidden test images, its history, the callback's figure) and the
grading stage (``grader.grade``) adds the rest (problems, the code graded, captured output); the
report (``grader.results``) only reads it and draws its pictures into a separate mapping of PNGs.
Plain data, one meaning per field: nothing here is drawn or encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Predictions:
    """Hidden test images with the learner's trained model's predictions, as the report draws them
    (truth in green, prediction in red). Arrays of one row per image."""

    images: np.ndarray  # (n, side, side, 3) uint8
    true_boxes: np.ndarray  # (n, 2) normalised boxes, as grader.reference's examples
    pred_boxes: np.ndarray  # (n, 2) the model's box output, same convention
    true_classes: np.ndarray  # (n,) class ids
    pred_classes: np.ndarray  # (n,) class ids (argmax of the class output)


@dataclass
class TrainingRun:
    """How the training probe went, from the worker's report (None: not reported)."""

    steps: int | None = None  # optimiser steps run (the budget is epochs x steps per epoch)
    epochs: int | None = None
    train_seconds: float | None = None  # wall clock of fit() in the worker


@dataclass
class Artifacts:
    """Data for the learner's report; each field is empty until a check or the grading fills it."""

    predictions: Predictions | None = None  # set by the training check; dropped if not a verdict
    history: dict[str, list[float]] = field(default_factory=dict)  # Keras History.history
    training: TrainingRun | None = None
    callback_figure: np.ndarray | None = None  # (h, w, 3) the ShowTestImages figure, rendered
    problems: list[str] = field(default_factory=list)  # what the notebook reader found, shown
    code: dict[str, str] = field(default_factory=dict)  # graded part -> the source graded
    original_course: list[dict[str, Any]] = field(default_factory=list)  # original_course_rows()
    captured_output: str = ""  # the worker's stdout and stderr, capped
