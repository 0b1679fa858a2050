"""create_model: named inputs and outputs, softmax head, size, compile settings."""

import numpy as np

from grader.check_api import Incorrect, check
from grader.checks.helpers import hidden_batch

MAX_PARAMS = 5_000_000  # above this the model cannot train within the grading budget on 2 cores
MIN_PARAMS = 5_000


def summary(submission):
    return submission.model(images=hidden_batch(8, 50).images)


def outputs(info):
    return {o["name"]: o for o in info.get("outputs", [])}


@check("create_model", 2, public=True)
def test_model_takes_a_144x144_rgb_image(submission):
    """one input of shape (None, 144, 144, 3)"""
    inputs = summary(submission).get("inputs", [])
    shapes = [tuple(i["shape"]) for i in inputs]
    if shapes != [(None, 144, 144, 3)]:
        raise Incorrect("the model should have one input of shape (None, 144, 144, 3)", got=shapes)


@check("create_model", 4, public=True)
def test_model_has_named_outputs_of_the_right_shapes(submission):
    """outputs named class_out (None, 9) and box_out (None, 2)"""
    found = outputs(summary(submission))
    if set(found) != {"class_out", "box_out"}:
        raise Incorrect(
            "the model's outputs have the wrong names",
            expected="class_out and box_out",
            got=sorted(found),
            hint="name the output layers: Dense(..., name='class_out'); targets are matched to outputs by these names",
        )
    for name, shape in (("class_out", (None, 9)), ("box_out", (None, 2))):
        if tuple(found[name]["shape"]) != shape:
            raise Incorrect(
                f"{name} has the wrong shape", expected=shape, got=tuple(found[name]["shape"])
            )


@check("create_model", 3)
def test_class_head_outputs_probabilities(submission):
    """class_out is a softmax: each prediction sums to 1"""
    info = summary(submission)
    predictions = info.get("predictions")
    probs = predictions.get("class_out") if isinstance(predictions, dict) else None
    if not isinstance(probs, np.ndarray) or probs.shape != (8, 9):
        raise Incorrect("could not read class_out predictions", got=type(probs).__name__)
    sums = probs.sum(axis=1)
    if not (np.all(probs >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3)):
        raise Incorrect(
            "class probabilities should be non-negative and sum to 1",
            got=f"sums {np.round(sums[:3], 3).tolist()}",
            hint="softmax missing: use activation='softmax' on the class head",
        )


@check("create_model", 2)
def test_model_size_trains_within_the_budget(submission):
    """parameter count in the range that trains within the grading budget"""
    params = summary(submission).get("params")
    if not isinstance(params, int) or not MIN_PARAMS <= params <= MAX_PARAMS:
        raise Incorrect(
            "the model's size is outside what trains in the grading budget",
            expected=f"{MIN_PARAMS:,}..{MAX_PARAMS:,} parameters",
            got=params,
            hint="pool the input down (e.g. AveragePooling2D) and keep the dense layer small",
        )


@check("create_model", 4)
def test_model_is_compiled_with_both_losses_and_the_iou_metric(submission):
    """compiled with a loss for each output and the IoU metric on box_out"""
    info = summary(submission)
    if not info.get("compiled"):
        raise Incorrect(
            "create_model() should return a compiled model",
            hint="call model.compile(...) before returning it",
        )
    losses = info.get("loss") or {}
    missing = [
        name for name in ("class_out", "box_out") if not losses.get(name) and not losses.get("*")
    ]
    if missing:
        raise Incorrect(
            "a loss is missing for some outputs",
            expected="a loss for class_out and for box_out",
            got=losses,
        )
    class_loss = str(losses.get("class_out", "")).lower()
    if "sparse" in class_loss:
        raise Incorrect(
            "class_out's targets are one-hot",
            got=class_loss,
            hint="use categorical_crossentropy, not the sparse version",
        )
    metrics = (info.get("metrics") or {}).get("box_out") or []
    if not any("iou" in str(m).lower() for m in metrics):
        raise Incorrect(
            "the IoU metric should be attached to box_out",
            got=info.get("metrics"),
            hint="metrics={'class_out': 'accuracy', 'box_out': IoU(name='iou')}",
        )
