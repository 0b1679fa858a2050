"""After training: the grader trains the learner's model (their architecture, compile settings and
schedule) on the trusted data pipeline, predicts hidden test images whose labels never leave this
process, and scores the predictions itself."""

import numpy as np

from grader import reference as ref
from grader.check_api import Incorrect, LearnerError, PartialCredit, check
from grader.checks.hidden.helpers import HIDDEN_SEED, hidden_batch

# The budget: fixed steps (so the same submission gets the same score), with a wall-clock cap.
EPOCHS = 5
STEPS_PER_EPOCH = 200
BATCH_SIZE = 16
SECONDS = 150.0  # a safety cap only: 1000 steps take ~35 s on 2 cores, ~70 s with one thread
TEST_IMAGES = 256
# Bands (fraction of points, minimum): set from the reference solution's figures in this budget
# on the grading machine (median of 3 seeds), with a margin. See benchmarks/bench_grading.py.
IOU_BANDS = ((1.0, 0.80), (0.5, 0.60), (0.25, 0.40))
ACCURACY_BANDS = ((1.0, 0.95), (0.5, 0.80))


def run_training(submission, data_seed: int, train_seed: int) -> tuple[ref.Batch, dict]:
    """The budgeted training on seeded reference batches; the hidden test set and the report.

    The grading check and ``benchmarks/bench_grading.py`` (which sets the bands) both use this.
    """
    test = hidden_batch(TEST_IMAGES, 99)

    def batch(index):
        made = ref.make_batch(BATCH_SIZE, np.random.default_rng([data_seed, 7, index]))
        return made.images, {"class_out": ref.one_hot(made.class_ids), "box_out": made.boxes}

    report = submission.train(
        batch,
        test.images,
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        seconds=SECONDS,
        seed=train_seed,
    )
    return test, report


def trained(submission):
    test, report = run_training(submission, HIDDEN_SEED, HIDDEN_SEED % 1000)
    predictions = report.get("predictions")
    if not isinstance(predictions, dict) or not {"class_out", "box_out"} <= set(predictions):
        raise Incorrect(
            "after training, the model's predictions should be a dict with class_out and box_out"
        )
    boxes, probs = (
        np.asarray(predictions["box_out"], float),
        np.asarray(predictions["class_out"], float),
    )
    if boxes.shape != (TEST_IMAGES, 2) or probs.shape != (TEST_IMAGES, 9):
        raise Incorrect(
            "the predictions have the wrong shapes",
            expected=f"({TEST_IMAGES}, 2) and ({TEST_IMAGES}, 9)",
            got=f"{boxes.shape} and {probs.shape}",
        )
    if not np.isfinite(boxes).all() or not np.isfinite(probs).all():
        raise Incorrect(
            "the trained model predicts NaN or infinity",
            hint="the training diverged: lower the learning rate or check the loss weights",
        )
    if "pictures" not in submission.artifacts:
        chosen = np.arange(8)
        submission.artifacts["pictures"] = {
            "test_images": test.images[chosen],
            "true_boxes": test.boxes[chosen],
            "pred_boxes": boxes[chosen],
            "true_classes": test.class_ids[chosen],
            "pred_classes": probs[chosen].argmax(1),
        }
        submission.artifacts["history"] = report.get("history", {})
        submission.artifacts["training"] = {
            k: report.get(k) for k in ("steps", "epochs", "train_seconds")
        }
    steps = report.get("steps", 0)
    if steps < EPOCHS * STEPS_PER_EPOCH:
        submission.artifacts["budget_note"] = (
            f"training stopped after {steps} of {EPOCHS * STEPS_PER_EPOCH} steps: the {SECONDS:.0f} s budget ran out"
        )
    return test, boxes, probs


def banded(value, bands, what, hint):
    note = ""
    for fraction, minimum in bands:
        if value >= minimum:
            if fraction == 1.0:
                return
            raise PartialCredit(
                fraction, f"{what} {value:.3f}: full points from {bands[0][1]}. {hint}"
            )
    raise Incorrect(
        f"{what} is too low",
        expected=f"at least {bands[-1][1]} for partial credit, {bands[0][1]} for full points",
        got=round(value, 3),
        hint=hint + note,
    )


@check("training", 7)
def test_trained_model_localizes_hidden_images(submission):
    """after training within the budget, IoU on hidden test images"""
    try:
        test, boxes, _ = trained(submission)
    except LearnerError:
        raise
    value = float(ref.iou(test.boxes, boxes).mean())
    note = submission.artifacts.get("budget_note", "")
    banded(
        value,
        IOU_BANDS,
        "mean IoU on 256 hidden test images",
        ("(" + note + ") " if note else "")
        + "check the box loss weight, the box head's initialisation and the schedule",
    )


@check("training", 3)
def test_trained_model_classifies_hidden_images(submission):
    """after training within the budget, class accuracy on hidden test images"""
    test, _, probs = trained(submission)
    value = float((probs.argmax(1) == test.class_ids).mean())
    banded(
        value,
        ACCURACY_BANDS,
        "class accuracy on 256 hidden test images",
        "check the class head (softmax, categorical cross-entropy)",
    )
