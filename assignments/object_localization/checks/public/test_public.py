"""Public checks: the learner's self-check runs these; grading runs them too."""

import numpy as np
import pytest

from grader.checking import Incorrect, PartialCredit, check

from .helpers import (
    CALLBACK_EPOCHS,
    as_array,
    as_float,
    box_drawn,
    callback_report,
    diagnose_label,
    example,
    generated,
    iou_value_hint,
    metric_value,
    working_model,
    zero_iou_hint,
)


@check("create_example", 3, public=True)
def test_create_example_returns_an_image_and_labels(submission):
    """create_example returns a 144x144x3 uint8 image, a class id and a normalised box"""
    image, class_id, row, col = example(submission, 1)
    if image.shape != (144, 144, 3):
        raise Incorrect("the image has the wrong shape", expected=(144, 144, 3), got=image.shape)
    if image.dtype != np.uint8:
        raise Incorrect(
            "the image should be uint8 (0..255)",
            got=image.dtype,
            hint="build it with dtype=np.uint8",
        )
    if not 0 <= class_id < 9:
        raise Incorrect("class_id is out of range", expected="0..8", got=class_id)
    if not (0 <= row <= 1 and 0 <= col <= 1):
        raise Incorrect(
            "row and col should be normalised to [0, 1]", got=(row, col), hint="divide by 144"
        )


@check("create_example", 5, public=True)
def test_create_example_labels_match_the_pixels(submission):
    """the box and class describe the emoji actually drawn"""
    for seed in range(100, 112):
        problem = diagnose_label(*example(submission, seed))
        if problem:
            raise Incorrect(f"For rng seed {seed}, {problem}")


@check("plot_bounding_box", 5, public=True)
def test_plot_bounding_box_draws_both_boxes(submission):
    """the true box is green and the predicted box red, where the coordinates say"""
    image = np.full((144, 144, 3), 255, np.uint8)
    true_box, pred_box = (20 / 144, 60 / 144), (70 / 144, 15 / 144)
    out = as_array(
        submission.call("plot_bounding_box", image, list(true_box), list(pred_box)),
        "the returned image",
    )
    if out.ndim != 3 or out.shape[:2] != (144, 144):
        raise Incorrect("the returned image should be 144x144 RGB", got=out.shape)
    for box, colour in ((true_box, "green"), (pred_box, "red")):
        problem = box_drawn(out[..., :3], np.array(box), colour)
        if problem:
            raise Incorrect(problem)


@check("data_generator", 5, public=True)
def test_data_generator_yields_dicts_of_the_right_shapes(submission):
    """batches are ({'image': x}, {'class_out': y, 'box_out': box}) with the right shapes, x in [0, 1]"""
    for batch_size in (1, 4, 16):
        (batch,) = generated(submission, batch_size)
        if batch.container:
            raise Incorrect("; ".join(batch.container))
        x, y, box = batch.x, batch.class_out, batch.box_out
        expected = {
            "x": (batch_size, 144, 144, 3),
            "class_out": (batch_size, 9),
            "box_out": (batch_size, 2),
        }
        for name, array in (("x", x), ("class_out", y), ("box_out", box)):
            if array.shape != expected[name]:
                raise Incorrect(
                    f"for batch_size={batch_size}, {name} has the wrong shape",
                    expected=expected[name],
                    got=array.shape,
                )
        if x.dtype.kind != "f":
            raise Incorrect(
                "images should be floats", got=x.dtype, hint="divide the uint8 image by 255"
            )
        if x.max() > 1.0 + 1e-6 or x.min() < 0:
            raise Incorrect(
                "images should lie in [0, 1]",
                got=f"{x.min():.1f}..{x.max():.1f}",
                hint="divide by 255",
            )


@check("IoU", 3, public=True)
def test_iou_of_identical_boxes_is_one(submission):
    """identical boxes: IoU 1"""
    got = metric_value(submission, [[0.3, 0.4], [0.1, 0.1]], [[0.3, 0.4], [0.1, 0.1]])
    if got != pytest.approx(1.0, abs=1e-4):
        raise Incorrect(
            "identical boxes should have IoU 1",
            expected=1.0,
            got=round(got, 4),
            hint=iou_value_hint(got, 1.0, 2),
        )


@check("IoU", 4, public=True)
def test_iou_of_disjoint_boxes_is_zero(submission):
    """disjoint boxes: IoU 0 (the original course's metric said ~0.74)"""
    got = metric_value(submission, [[0.0, 0.0]], [[0.6, 0.6]])
    if got != pytest.approx(0.0, abs=1e-4):
        raise Incorrect(
            "boxes that do not overlap should have IoU 0",
            expected=0.0,
            got=round(got, 4),
            hint=zero_iou_hint(got, [[0.0, 0.0]], [[0.6, 0.6]]),
        )


@check("create_model", 2, public=True)
def test_model_takes_a_144x144_rgb_image(submission):
    """one input of shape (None, 144, 144, 3)"""
    shape = working_model(submission).input_shape
    if shape != (144, 144, 3):
        raise Incorrect(
            "the model should have one input of shape (None, 144, 144, 3)",
            got=f"(None, {', '.join(map(str, shape))})" if shape else "several inputs",
        )


@check("create_model", 4, public=True)
def test_model_has_named_outputs_of_the_right_shapes(submission):
    """outputs named class_out (None, 9) and box_out (None, 2)"""
    found = working_model(submission).outputs
    if set(found) != {"class_out", "box_out"}:
        raise Incorrect(
            "the model's outputs have the wrong names",
            expected="class_out and box_out",
            got=sorted(found),
            hint="wrong output names: name the output layers, Dense(..., name='class_out'); targets are matched to outputs by these names",
        )
    for name, shape in (("class_out", (9,)), ("box_out", (2,))):
        if tuple(found[name]) != shape:
            raise Incorrect(
                f"{name} has the wrong shape",
                expected=(None, *shape),
                got=(None, *found[name]),
            )


@check("ShowTestImages", 5, public=True)
def test_callback_draws_one_figure_per_epoch(submission):
    """inside model.fit, one figure per epoch"""
    report = callback_report(submission)
    if report.get("figures_created") != CALLBACK_EPOCHS:
        raise Incorrect(
            f"during a {CALLBACK_EPOCHS}-epoch fit the callback should create one figure per epoch",
            expected=CALLBACK_EPOCHS,
            got=report.get("figures_created"),
            hint="draw in on_epoch_end, once per call",
        )


HOLD, FACTOR, FLOOR = 3, 0.5, 1e-5
SCHEDULE = [  # (epoch, incoming lr, expected): hold 3 epochs, then halve, never below 1e-5
    (0, 1e-3, 1e-3),
    (2, 1e-3, 1e-3),
    (3, 1e-3, 5e-4),
    (4, 5e-4, 2.5e-4),
    (6, 4e-4, 2e-4),
    (8, 1.5e-5, 1e-5),
    (9, 1e-5, 1e-5),
    (20, 3e-6, 1e-5),
]


def _schedule(hold=HOLD, factor=FACTOR, floor=FLOOR, every=1):
    def rule(epoch, lr):
        if epoch < hold or (epoch + 1 - hold) % every:
            return max(lr, floor) if floor and epoch >= hold else lr
        return max(lr * factor, floor)

    return rule


#: Schedules of another shape than asked, each with what to change. The first that reproduces
#: every value the learner's function returned names the mistake.
SCHEDULE_MISTAKES = (
    (_schedule(floor=0), "the floor is missing: return max(new_lr, MIN_LR)"),
    (
        _schedule(hold=HOLD - 1),
        "the halving starts one epoch early: keep lr while epoch < 3 (epochs 0, 1 and 2)",
    ),
    (
        _schedule(hold=HOLD + 1),
        "the halving starts one epoch late: keep lr while epoch < 3, halve from epoch 3",
    ),
    (_schedule(hold=0), "the rate is halved from epoch 0: keep lr while epoch < 3"),
    (
        _schedule(factor=0.2, floor=3e-7, every=5, hold=0),
        "this is the original course's schedule (x0.2 every 5th epoch, floor 3e-7); this course "
        "asks for: keep lr while epoch < 3, then lr * 0.5 each epoch, never below MIN_LR = 1e-5",
    ),
)


def diagnose_schedule(got: list[float]) -> str:
    """Why the returned rates differ from the table: a known mistake, or what the values show."""
    for rule, hint in SCHEDULE_MISTAKES:
        if all(
            g == pytest.approx(rule(e, lr), rel=1e-4)
            for (e, lr, _), g in zip(SCHEDULE, got, strict=True)
        ):
            return hint
    findings = []
    held = [
        g == pytest.approx(lr, rel=1e-4)
        for (e, lr, _), g in zip(SCHEDULE, got, strict=True)
        if e < HOLD
    ]
    if not all(held):
        findings.append("epochs 0..2 should return the incoming lr unchanged")
    factors = {
        round(g / lr, 4)
        for (e, lr, x), g in zip(SCHEDULE, got, strict=True)
        if e >= HOLD and x > FLOOR
    }
    if factors and factors != {FACTOR}:
        findings.append(
            f"from epoch 3 the rate should be lr * 0.5; yours multiplied lr by {sorted(factors)}"
        )
    if any(g < FLOOR * (1 - 1e-4) for g in got):
        findings.append("a rate went below MIN_LR = 1e-5: return max(new_lr, MIN_LR)")
    elif any(
        x == FLOOR and g > FLOOR * (1 + 1e-4) for (_, _, x), g in zip(SCHEDULE, got, strict=True)
    ):
        findings.append("at the floor the rate should be MIN_LR = 1e-5 exactly")
    return "; ".join(findings) or (
        "keep lr while epoch < 3, then halve it each epoch, never below MIN_LR; the schedule gets the "
        "current rate as lr and returns the next one"
    )


@check("lr_schedule", 5, public=True)
def test_lr_schedule_table(submission):
    """hold for 3 epochs, then halve each epoch, never below 1e-5"""
    got = [
        as_float(submission.call("lr_schedule", epoch, lr), f"lr_schedule({epoch}, {lr})")
        for epoch, lr, _ in SCHEDULE
    ]
    wrong = [
        (epoch, lr, expected, g)
        for (epoch, lr, expected), g in zip(SCHEDULE, got, strict=True)
        if g != pytest.approx(expected, rel=1e-4)
    ]
    if not wrong:
        return
    text = "; ".join(
        f"lr_schedule({e}, {lr:g}) returned {g:g}, expected {x:g}" for e, lr, x, g in wrong[:3]
    )
    if len(wrong) > 3:
        text += f" (and {len(wrong) - 3} more)"
    text += ". Hint: " + diagnose_schedule(got)
    right = len(SCHEDULE) - len(wrong)
    if right == 0:
        raise Incorrect(text)
    raise PartialCredit(right / len(SCHEDULE), text)
