"""grader.checking.training: the budgeted training a course's training check calls, on a stand-in
submission whose train probe replies as the worker's does (the real probe: test_keras_course.py,
test_grade.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from grader.checking import Artifacts, Incorrect, PartialCredit
from grader.checking.training import banded, train_within_budget

TEST = np.zeros((6, 4, 4, 1), np.uint8)


class Replies:
    """A submission whose model costs ``mflops`` and whose training replies ``report``."""

    def __init__(self, report: dict[str, Any], mflops: float = 1.0) -> None:
        self.report, self.mflops = report, mflops
        self.artifacts = Artifacts()
        self.batches_asked: list[int] = []

    def model_audit(self) -> SimpleNamespace:
        return SimpleNamespace(flops_per_example=self.mflops * 1e6)

    def train(self, batches, test_images, **budget) -> dict[str, Any]:
        self.budget = budget
        self.batches_asked += [i for i in range(3) if batches(i) is not None]
        return self.report


def _batches(index: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((2, 4, 4, 1), np.uint8), np.array([index, index])


def _train(submission: Replies, **options: Any):
    return train_within_budget(
        submission, _batches, TEST, epochs=2, steps_per_epoch=3, seed=5, **options
    )


def _report(predictions: Any, steps: int = 6) -> dict[str, Any]:
    history = {"loss": [1.5, 0.25]}
    return {
        "predictions": predictions,
        "steps": steps,
        "epochs": 2,
        "history": history,
        "train_seconds": 1.5,
    }


def test_a_single_output_model_trains_its_budget_and_keeps_the_run_for_the_report() -> None:
    probabilities = np.full((6, 3), 1 / 3)
    submission = Replies(_report(probabilities))
    model = _train(submission, max_mflops_per_example=5.0)
    assert submission.budget == {"epochs": 2, "steps_per_epoch": 3, "seed": 5}
    assert submission.batches_asked == [0, 1, 2]  # the batches are streamed from here
    assert np.array_equal(model.output(width=3), probabilities)
    assert model.trend() == "loss went from 1.5 after epoch 1 to 0.25"
    assert submission.artifacts.history == {"loss": [1.5, 0.25]}
    assert submission.artifacts.training.steps == 6 and model.seconds == 1.5


def test_a_model_over_the_cost_limit_is_not_trained() -> None:
    submission = Replies(_report(np.zeros((6, 3))), mflops=7.5)
    with pytest.raises(Incorrect, match=r"not trained.*7\.5 million FLOPs.*at most 5 million"):
        _train(submission, max_mflops_per_example=5.0)
    assert submission.batches_asked == [] and submission.artifacts.training is None
    own = Replies(_report(np.zeros((6, 3))))
    with pytest.raises(Incorrect, match=r"too wide\. Pool earlier\.$"):
        _train(own, over_budget=lambda audit: "too wide", refused_advice="Pool earlier.")


def test_a_budget_cut_short_or_predictions_of_another_form_are_named() -> None:
    with pytest.raises(Incorrect, match="did not run its budget") as cut:
        _train(Replies(_report(np.zeros((6, 3)), steps=4)))
    assert "6 steps" in cut.value.message and "4 steps" in cut.value.message
    with pytest.raises(Incorrect, match="should be a dict with class_out and box_out"):
        _train(Replies(_report(np.zeros((6, 3)))), outputs=("class_out", "box_out"))
    with pytest.raises(Incorrect, match="one array"):
        _train(Replies(_report({"out": np.zeros((6, 3))})))


def test_an_output_is_checked_for_rows_width_and_finite_values() -> None:
    outputs = ("class_out", "box_out")
    model = _train(
        Replies(_report({"class_out": np.zeros((6, 4)), "box_out": np.zeros((5, 2))})),
        outputs=outputs,
    )
    assert model.output("class_out").shape == (6, 4)
    with pytest.raises(Incorrect, match="box_out should predict one row per test image"):
        model.output("box_out", 2)
    with pytest.raises(Incorrect, match="class_out predicts 4 numbers per image"):
        model.output("class_out", 3)
    diverged = _train(Replies(_report(np.array([[np.nan, 0, 0]] * 6))))
    with pytest.raises(Incorrect, match="NaN or infinity: the training diverged"):
        diverged.output()


def test_bands_give_full_partial_or_no_points() -> None:
    bands = ((1.0, 0.8), (0.5, 0.6))
    assert banded(0.85, bands, "accuracy") is None
    with pytest.raises(PartialCredit) as partial:
        banded(0.7, bands, "accuracy", "loss went down")
    assert partial.value.fraction == 0.5
    assert str(partial.value.message) == (
        "accuracy 0.700: full points from 0.8. Training: loss went down."
    )
    with pytest.raises(Incorrect, match="accuracy is too low"):
        banded(0.5, bands, "accuracy")
