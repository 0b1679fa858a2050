"""The IoU metric: exact on edge cases, accumulates, resets, runs in graph mode."""

import numpy as np
import pytest

from grader import reference as ref
from grader.check_api import Incorrect, check
from grader.checks.helpers import HIDDEN_SEED, as_float

SIDE = ref.measure_box_geometry().side / ref.IMAGE_SIZE


def single(submission, y_true, y_pred):
    reply = submission.metric([("update", y_true, y_pred), ("result",)])
    if not reply.get("is_metric"):
        raise Incorrect("IoU should subclass keras.metrics.Metric")
    return as_float(reply["results"][0], "IoU().result()")


def random_boxes(n, offset):
    rng = np.random.default_rng([HIDDEN_SEED, offset])
    a = rng.uniform(0.05, 0.55, (n, 2))
    return a, np.clip(a + rng.normal(0, 0.08, (n, 2)), 0, 0.65)


@check("IoU", 3, public=True)
def test_iou_of_identical_boxes_is_one(submission):
    """identical boxes: IoU 1"""
    got = single(submission, [[0.3, 0.4], [0.1, 0.1]], [[0.3, 0.4], [0.1, 0.1]])
    if got != pytest.approx(1.0, abs=1e-4):
        raise Incorrect("identical boxes should have IoU 1", expected=1.0, got=round(got, 4))


@check("IoU", 4, public=True)
def test_iou_of_disjoint_boxes_is_zero(submission):
    """disjoint boxes: IoU 0 (the original course's metric said ~0.74)"""
    got = single(submission, [[0.0, 0.0]], [[0.6, 0.6]])
    if got != pytest.approx(0.0, abs=1e-4):
        hint = (
            "the intersection is not clamped at zero: abs(x2 - x1) turns the gap between disjoint "
            "boxes into a positive 'overlap'; use max(0, min(...) - max(...)) for each side"
        )
        raise Incorrect(
            "boxes that do not overlap should have IoU 0",
            expected=0.0,
            got=round(got, 4),
            hint=hint,
        )


@check("IoU", 2)
def test_iou_of_touching_boxes_is_zero(submission):
    """boxes that share an edge or a corner: IoU 0"""
    for pred in ([0.1 + SIDE, 0.1], [0.1, 0.1 + SIDE], [0.1 + SIDE, 0.1 + SIDE]):
        got = single(submission, [[0.1, 0.1]], [pred])
        if got != pytest.approx(0.0, abs=1e-3):
            raise Incorrect(
                "boxes that only touch should have IoU 0", expected=0.0, got=round(got, 4)
            )


@check("IoU", 4)
def test_iou_matches_the_reference_on_random_boxes(submission):
    """partial overlaps: equals the reference IoU"""
    y_true, y_pred = random_boxes(64, 1)
    expected = float(ref.iou(y_true, y_pred).mean())
    got = single(submission, y_true, y_pred)
    if got != pytest.approx(expected, abs=2e-3):
        hint = ""
        swapped = float(ref.iou(y_true[:, ::-1], y_pred).mean())
        if got == pytest.approx(swapped, abs=2e-3):
            hint = "rows and columns are mixed up between y_true and y_pred"
        raise Incorrect(
            "mean IoU over 64 random box pairs differs from the reference",
            expected=round(expected, 4),
            got=round(got, 4),
            hint=hint,
        )


@check("IoU", 3)
def test_iou_accumulates_over_batches(submission):
    """result() is the mean over every example since the last reset"""
    (a, b), (c, d) = random_boxes(16, 2), random_boxes(16, 3)
    reply = submission.metric([("update", a, b), ("update", c, d), ("result",)])
    got = as_float(reply["results"][0], "result()")
    expected = float(np.concatenate([ref.iou(a, b), ref.iou(c, d)]).mean())
    if got != pytest.approx(expected, abs=2e-3):
        last = float(ref.iou(c, d).mean())
        hint = (
            "result() returns only the last batch: add each batch into state variables with assign_add"
            if got == pytest.approx(last, abs=2e-3)
            else ""
        )
        raise Incorrect(
            "after two batches, result() should be the mean IoU of all 32 examples",
            expected=round(expected, 4),
            got=round(got, 4),
            hint=hint,
        )


@check("IoU", 2)
def test_iou_reset_state_really_resets(submission):
    """after reset_state(), only new batches count"""
    (a, b), (c, d) = random_boxes(16, 4), random_boxes(16, 5)
    reply = submission.metric([("update", a, b), ("reset",), ("update", c, d), ("result",)])
    got = as_float(reply["results"][0], "result() after reset_state()")
    expected = float(ref.iou(c, d).mean())
    if got != pytest.approx(expected, abs=2e-3):
        raise Incorrect(
            "after reset_state() the metric still remembers earlier batches",
            expected=round(expected, 4),
            got=round(got, 4),
            hint="state not reset: assign 0 to every state variable in reset_state (do not create new variables)",
        )


@check("IoU", 2)
def test_iou_works_in_graph_mode(submission):
    """the metric runs inside a compiled tf.function, as in model.fit"""
    y_true, y_pred = random_boxes(16, 6)
    reply = submission.metric([("update", y_true, y_pred), ("result",)], graph=True)
    got = as_float(reply["results"][0], "result() in graph mode")
    expected = float(ref.iou(y_true, y_pred).mean())
    if got != pytest.approx(expected, abs=2e-3):
        raise Incorrect(
            "in graph mode the metric gives a different value",
            expected=round(expected, 4),
            got=round(got, 4),
            hint="use keras.ops / tensor operations, not numpy or Python ifs on tensors",
        )
