"""After training: the grader trains the learner's model (their architecture, compile settings and
schedule) on the trusted data pipeline, predicts hidden test images whose labels never leave this
process, and scores the predictions itself.

The budget is work, not time: every grading trains exactly ``EPOCHS x STEPS_PER_EPOCH`` steps of
``BATCH_SIZE`` examples, so a score never depends on the machine's speed or load. A wall-clock limit
still exists (``grader.checking.probes.TRAIN_TIMEOUT``, far above what the budget needs) but only ends a
grading with status ``timeout``, which is retried, never with fewer points. What keeps a model
within that limit is a cost check *before* training: the model is rebuilt from its Keras config in
the trusted process (``grader.checking.model_audit``) and refused above ``MAX_MFLOPS_PER_EXAMPLE``.

Tests may lower ``EPOCHS`` / ``STEPS_PER_EPOCH`` (module attributes read at each grading); the
values here are the real budget.
"""

import numpy as np

from grader.checking import Incorrect, PartialCredit, TrainingRun, check
from grader.secret import hidden_seed

from ... import reference as ref
from ...pictures import Predictions
from ..public.cost import MAX_MFLOPS_PER_EXAMPLE, over_budget
from .helpers import hidden_batch

__all__ = ["MAX_MFLOPS_PER_EXAMPLE"]  # the limit, declared once in ..public.cost

EPOCHS = 5
STEPS_PER_EPOCH = 200
BATCH_SIZE = 16
TEST_IMAGES = 256
# Bands (fraction of points, minimum): set from the reference solution's figures in this budget
# on the grading machine, with a margin. The hidden seed is a random per-course secret, so the
# reference must reach full marks for any seed: on 3 random seeds (benchmarks/bench_grading.py,
# deterministic ops) it reached IoU 0.932 / 0.908 / 0.920 and accuracy 1.0 / 1.0 / 1.0, so full
# IoU points from 0.80 leave 1.13x under the worst seed, and full accuracy points from 0.95.
IOU_BANDS = ((1.0, 0.80), (0.5, 0.60), (0.25, 0.40))
ACCURACY_BANDS = ((1.0, 0.95), (0.5, 0.80))


def training_seeds(seed: int) -> tuple[int, int]:
    """(data seed, Keras seed) of a course's hidden seed: fixed per course, so regrading agrees."""
    return seed, seed % 2**31


def run_training(submission, data_seed: int, train_seed: int) -> tuple[ref.Batch, dict]:
    """The budgeted training on seeded reference batches; the hidden test set and the report.

    The grading check and ``benchmarks/bench_grading.py`` (which sets the bands) both use this.
    """
    test = hidden_batch(TEST_IMAGES, 99)

    def batch(index):
        made = ref.make_batch(BATCH_SIZE, np.random.default_rng([data_seed, 7, index]))
        return made.images, {"class_out": ref.one_hot(made.class_ids), "box_out": made.boxes}

    report = submission.train(
        batch, test.images, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, seed=train_seed
    )
    return test, report


def affordable(submission) -> None:
    """Refuse, before training, a model the step budget cannot afford: the same measure and
    limit as the model's cost check (``..public.cost``), which is where its points are lost."""
    problem = over_budget(submission.model_audit())
    if problem:
        raise Incorrect(
            "your model was not trained, so this could not be measured: " + problem + ". The "
            "create_model cost check says the same; bring the cost under the limit."
        )


def trained(submission) -> tuple[ref.Batch, dict, dict]:
    """The budgeted training's hidden test set, its report and its predictions (by output);
    what went wrong inside it is said by the check of the output it concerns."""
    affordable(submission)
    test, report = run_training(submission, *training_seeds(hidden_seed()))
    predictions = report.get("predictions")
    if not isinstance(predictions, dict):
        raise Incorrect(
            "after training, the model's predictions should be a dict with class_out and box_out",
            got=type(predictions).__name__,
        )
    steps = report.get("steps", 0)
    if steps != EPOCHS * STEPS_PER_EPOCH:
        raise Incorrect(
            "the training did not run its budget: something in your model stopped it",
            expected=f"{EPOCHS * STEPS_PER_EPOCH} steps",
            got=f"{steps} steps",
        )
    outputs = {name: np.asarray(v, float) for name, v in predictions.items()}
    boxes, probs = outputs.get("box_out"), outputs.get("class_out")
    if (
        submission.artifacts.predictions is None
        and boxes is not None
        and boxes.shape == (TEST_IMAGES, 2)
        and probs is not None
        and probs.ndim == 2
        and len(probs) == TEST_IMAGES
    ):
        chosen = np.arange(8)
        submission.artifacts.predictions = Predictions(
            images=test.images[chosen],
            true_boxes=test.boxes[chosen],
            pred_boxes=boxes[chosen],
            true_classes=test.class_ids[chosen],
            pred_classes=probs[chosen].argmax(1),
        )
        submission.artifacts.history = report.get("history", {})
        submission.artifacts.training = TrainingRun(
            steps=report.get("steps"),
            epochs=report.get("epochs"),
            train_seconds=report.get("train_seconds"),
        )
    return test, report, outputs


def output(outputs: dict, name: str, width: int | None) -> np.ndarray:
    """One output's predictions on the test images, finite and of the right length."""
    values = outputs.get(name)
    if values is None or values.ndim != 2 or len(values) != TEST_IMAGES:
        raise Incorrect(
            f"after training, {name} should predict one row per test image",
            expected=f"({TEST_IMAGES}, {width or 'classes'})",
            got=None if values is None else values.shape,
        )
    if width is not None and values.shape[1] != width:
        raise Incorrect(f"{name} predicts {values.shape[1]} numbers per image", expected=width)
    if not np.isfinite(values).all():
        raise Incorrect(
            f"the trained model predicts NaN or infinity for {name}: the training diverged"
        )
    return values


def facts(report: dict, key: str) -> str:
    """What the training's history shows of one loss (measured, not guessed), and what the
    grader had to leave out of it."""
    notes = []
    history = report.get("history") or {}
    values = history.get(key) or []
    if len(values) >= 2:
        notes.append(f"{key} went from {values[0]:.4g} after epoch 1 to {values[-1]:.4g}")
    if report.get("metric_dropped"):
        notes.append(
            "your model was trained without your metric, which failed inside fit (the IoU "
            "checks say why); metrics do not change what a model learns"
        )
    return "; ".join(notes)


def banded(value, bands, what, observed=""):
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


@check("training", 7)
def test_trained_model_localizes_hidden_images(submission):
    """after training within the budget, IoU on hidden test images"""
    test, report, outputs = trained(submission)
    boxes = output(outputs, "box_out", 2)
    value = submission.measured("mean IoU", float(ref.iou(test.boxes, boxes).mean()))
    if report.get("train_seconds") is not None:
        submission.measured("training seconds", report["train_seconds"])
    banded(value, IOU_BANDS, "mean IoU on 256 hidden test images", facts(report, "box_out_loss"))


@check("training", 3)
def test_trained_model_classifies_hidden_images(submission):
    """after training within the budget, class accuracy on hidden test images"""
    test, report, outputs = trained(submission)
    probs = output(outputs, "class_out", None)
    value = submission.measured("class accuracy", float((probs.argmax(1) == test.class_ids).mean()))
    banded(
        value,
        ACCURACY_BANDS,
        "class accuracy on 256 hidden test images",
        facts(report, "class_out_loss"),
    )
