"""Budgeted training for a check: the learner's model trained a fixed number of steps, here judged.

Why a helper: every Keras course's training check does the same before its course-specific bands:
refuse a model the step budget cannot afford (before training: its cost, from the model rebuilt in
the trusted process), stream seeded batches into the worker for exactly ``epochs x
steps_per_epoch`` steps (``Submission.train``: no time cut-off, so a score never depends on the
machine's load), check that the budget ran and that the predictions have the outputs' form, and
keep the history and the run's figures for the report. :func:`train_within_budget` does that and
returns a :class:`TrainedModel`; :meth:`TrainedModel.output` gives one output's predictions,
checked; :func:`banded` scores a figure against the course's bands. See assignments/AUTHORING.md,
"A training check".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checking.artifacts import TrainingRun
from grader.checking.check_api import Incorrect, PartialCredit
from grader.checking.model_audit import ModelAudit

#: (fraction of the points, the least value that earns it), best first: ((1.0, 0.8), (0.5, 0.6)).
Bands = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class TrainedModel:
    """What a budgeted training gave: the predictions on the test images (one array, or one per
    output name), Keras's history, and the run's figures from the worker's report."""

    predictions: np.ndarray | dict[str, np.ndarray]
    history: dict[str, list[float]]
    steps: int
    epochs: int | None
    seconds: float | None  # wall clock of fit() in the worker
    metric_dropped: bool  # trained without the learner's metric, which failed inside fit
    test_images: int  # how many rows each output should have
    report: dict[str, Any] = field(repr=False)  # the train probe's whole reply

    def output(self, name: str | None = None, width: int | None = None) -> np.ndarray:
        """The predictions of output ``name`` (None: a single-output model's), finite, one row
        per test image, ``width`` numbers per row when given; else Incorrect saying which."""
        if name is None:
            values = self.predictions if isinstance(self.predictions, np.ndarray) else None
        elif isinstance(self.predictions, dict):
            values = self.predictions.get(name)
        else:
            values = None
        what = name or "the model"
        if values is None or values.ndim != 2 or len(values) != self.test_images:
            raise Incorrect(
                f"after training, {what} should predict one row per test image",
                expected=f"({self.test_images}, {width or 'classes'})",
                got=None if values is None else values.shape,
            )
        if width is not None and values.shape[1] != width:
            raise Incorrect(f"{what} predicts {values.shape[1]} numbers per image", expected=width)
        if not np.isfinite(values).all():
            raise Incorrect(
                "the trained model predicts NaN or infinity"
                + (f" for {name}" if name else "")
                + ": the training diverged"
            )
        return values

    def trend(self, key: str = "loss") -> str:
        """What the history shows of one loss ("loss went from A after epoch 1 to B"), or ""."""
        values = self.history.get(key) or []
        if len(values) < 2:
            return ""
        return f"{key} went from {values[0]:.4g} after epoch 1 to {values[-1]:.4g}"


def train_within_budget(
    submission: Any,
    batches: Callable[[int], tuple[np.ndarray, Any]],
    test_images: np.ndarray,
    *,
    epochs: int,
    steps_per_epoch: int,
    seed: int,
    max_mflops_per_example: float | None = None,
    over_budget: Callable[[ModelAudit], str | None] | None = None,
    refused_advice: str = "",
    outputs: tuple[str, ...] | None = None,
) -> TrainedModel:
    """Train the learner's model within the budget and return what it predicts on
    ``test_images`` (their labels stay with the caller).

    The cost gate, before training: ``over_budget(audit)`` (the course's own rule, returning the
    problem in words, or None) or ``max_mflops_per_example``; a model over it is not trained
    (Incorrect, ending with ``refused_advice``). ``batches(index)`` returns (images, targets), the
    targets as the model's outputs take them. ``outputs``: the output names of a model whose
    predictions come as a dict (None: one array). Incorrect when the budget did not run or the
    predictions have another form. The report's history and run figures are kept in
    ``submission.artifacts`` (the first training's, when several checks train)."""
    audit = submission.model_audit()
    problem = over_budget(audit) if over_budget else None
    if problem is None and max_mflops_per_example is not None:
        cost = audit.flops_per_example / 1e6
        if cost > max_mflops_per_example:
            problem = (
                f"your model costs {cost:.1f} million FLOPs per example; the grader trains "
                f"models of at most {max_mflops_per_example:g} million within its budget"
            )
    if problem:
        raise Incorrect(
            "your model was not trained, so this could not be measured: "
            + problem
            + (f". {refused_advice}" if refused_advice else "")
        )
    report = submission.train(
        batches, test_images, epochs=epochs, steps_per_epoch=steps_per_epoch, seed=seed
    )
    predictions = _predictions(report.get("predictions"), outputs)
    steps = report.get("steps", 0)
    if steps != epochs * steps_per_epoch:
        raise Incorrect(
            "the training did not run its budget: something in your model stopped it",
            expected=f"{epochs * steps_per_epoch} steps",
            got=f"{steps} steps",
        )
    trained = TrainedModel(
        predictions=predictions,
        history=dict(report.get("history") or {}),
        steps=steps,
        epochs=report.get("epochs"),
        seconds=report.get("train_seconds"),
        metric_dropped=bool(report.get("metric_dropped")),
        test_images=len(test_images),
        report=report,
    )
    if submission.artifacts.training is None:
        submission.artifacts.history = trained.history
        submission.artifacts.training = TrainingRun(
            steps=trained.steps, epochs=trained.epochs, train_seconds=trained.seconds
        )
    return trained


def _predictions(
    predictions: Any, outputs: tuple[str, ...] | None
) -> np.ndarray | dict[str, np.ndarray]:
    """The reply's predictions as floats, in the form the model's outputs give; else Incorrect."""
    if outputs is not None:
        if not isinstance(predictions, Mapping):
            raise Incorrect(
                "after training, the model's predictions should be a dict with "
                + " and ".join(outputs),
                got=type(predictions).__name__,
            )
        return {name: np.asarray(value, float) for name, value in predictions.items()}
    if isinstance(predictions, Mapping) or predictions is None:
        raise Incorrect(
            "after training, the model should predict one array (it has one output)",
            got=type(predictions).__name__,
        )
    return np.asarray(predictions, float)


def banded(value: float, bands: Bands, what: str, observed: str = "") -> None:
    """Score ``value`` (higher is better) against the course's ``bands``: full points from the
    first band's minimum, PartialCredit for a lower band, Incorrect below the last;
    ``observed`` (what the training showed, e.g. :meth:`TrainedModel.trend`) goes in the message."""
    for fraction, minimum in bands:
        if value >= minimum:
            if fraction == 1.0:
                return
            raise PartialCredit(
                fraction,
                f"{what} {value:.3f}: full points from {bands[0][1]}."
                + (f" Training: {observed}." if observed else ""),
            )
    raise Incorrect(
        f"{what} is too low" + (f" (training: {observed})" if observed else ""),
        expected=f"at least {bands[-1][1]} for partial credit, {bands[0][1]} for full points",
        got=round(value, 3),
    )
