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
values here are the real budget. The gate, the streaming, the predictions' form and the run's
figures are the engine's (``grader.checking.training``); the bands and the pictures are this
course's.
"""

import numpy as np

from grader.checking import check
from grader.checking.training import TrainedModel, banded, train_within_budget
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
OUTPUTS = ("class_out", "box_out")
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


def training_data(data_seed: int):
    """The hidden test set and the seeded reference batches (index -> (images, targets))."""
    test = hidden_batch(TEST_IMAGES, 99)

    def batch(index):
        made = ref.make_batch(BATCH_SIZE, np.random.default_rng([data_seed, 7, index]))
        return made.images, {"class_out": ref.one_hot(made.class_ids), "box_out": made.boxes}

    return test, batch


def run_training(submission, data_seed: int, train_seed: int) -> tuple[ref.Batch, dict]:
    """The budgeted training's test set and report, with no gate: what
    ``benchmarks/bench_grading.py`` (which sets the bands) measures."""
    test, batch = training_data(data_seed)
    report = submission.train(
        batch, test.images, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, seed=train_seed
    )
    return test, report


def trained(submission) -> tuple[ref.Batch, TrainedModel]:
    """The budgeted training (refused above the cost limit, the same measure and limit as the
    model's cost check in ``..public.cost``, which is where its points are lost): the hidden test
    set and the trained model; what went wrong inside it is said by the check of the output it
    concerns."""
    data_seed, train_seed = training_seeds(hidden_seed())
    test, batch = training_data(data_seed)
    model = train_within_budget(
        submission,
        batch,
        test.images,
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        seed=train_seed,
        over_budget=over_budget,
        refused_advice="The create_model cost check says the same; bring the cost under the limit.",
        outputs=OUTPUTS,
    )
    boxes, probs = model.predictions.get("box_out"), model.predictions.get("class_out")
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
    return test, model


def facts(model: TrainedModel, key: str) -> str:
    """What the training's history shows of one loss (measured, not guessed), and what the
    grader had to leave out of it."""
    notes = [model.trend(key)] if model.trend(key) else []
    if model.metric_dropped:
        notes.append(
            "your model was trained without your metric, which failed inside fit (the IoU "
            "checks say why); metrics do not change what a model learns"
        )
    return "; ".join(notes)


@check("training", 7)
def test_trained_model_localizes_hidden_images(submission):
    """after training within the budget, IoU on hidden test images"""
    test, model = trained(submission)
    boxes = model.output("box_out", 2)
    value = submission.measured("mean IoU", float(ref.iou(test.boxes, boxes).mean()))
    if model.seconds is not None:
        submission.measured("training seconds", model.seconds)
    banded(value, IOU_BANDS, "mean IoU on 256 hidden test images", facts(model, "box_out_loss"))


@check("training", 3)
def test_trained_model_classifies_hidden_images(submission):
    """after training within the budget, class accuracy on hidden test images"""
    test, model = trained(submission)
    probs = model.output("class_out", None)
    value = submission.measured("class accuracy", float((probs.argmax(1) == test.class_ids).mean()))
    banded(
        value,
        ACCURACY_BANDS,
        "class accuracy on 256 hidden test images",
        facts(model, "class_out_loss"),
    )
