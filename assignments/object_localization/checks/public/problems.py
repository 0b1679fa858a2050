"""What a failed property says: the first wrong value, what was expected, and the mistake that
gives the learner's values when one does (``Submission.diagnose``). Public: the self-check says the
same, with the models of ``mistakes`` (grading also runs the solution's known mistakes).
"""

from __future__ import annotations

import numpy as np

from grader.checking import Incorrect

from .helpers import (
    MARGIN,
    as_array,
    as_float,
    as_uint8_image,
    box_matches,
    close,
    drawn_box,
    expected_box,
)
from .mistakes import (
    FACTOR,
    FLOOR,
    HOLD,
    box_models,
    iou_models,
    iou_range_hint,
    label_models,
    label_offset_hint,
    rule,
    same_box,
    schedule_models,
)


def label_problem(submission, part: str, places, rows, cols, labels, measure) -> str:
    """The message for labels that do not match the tiles at (rows, cols): the first wrong one
    (``places`` says where each example came from), and the mistake whose labels are these."""
    want = (np.stack([rows, cols], axis=1) + MARGIN) / 144
    wrong = np.flatnonzero(~np.all(np.abs(labels - want) <= 0.5 / 144, axis=1))
    i = wrong[0]
    text = (
        f"{places[i]}, the emoji's tile is at row {rows[i]}, col {cols[i]}, so the "
        f"label should be ({want[i, 0]:.4f}, {want[i, 1]:.4f}) = ((row + MARGIN) / 144, "
        f"(col + MARGIN) / 144); got ({labels[i, 0]:.4f}, {labels[i, 1]:.4f})"
    )
    if len(wrong) > 1:
        text += f" ({len(wrong)} of {len(labels)} examples are wrong)"
    same = lambda a, b: close(a, b, 0.5 / 144)  # noqa: E731
    hint = submission.diagnose(
        part, measure, labels, models=label_models(rows, cols), same=same
    ) or label_offset_hint(rows, cols, labels)
    return text + (f". Hint: {hint}" if hint else "")


def pixels_of(value, what: str) -> np.ndarray:
    """A returned picture (a PIL image comes back as an array) as uint8 RGB of 144x144."""
    picture = as_array(value, what)
    if picture.ndim != 3 or picture.shape[:2] != (144, 144) or picture.shape[2] < 3:
        raise Incorrect(f"{what} should be a 144x144 RGB picture", got=picture.shape)
    if picture.dtype.kind == "f" and not np.isfinite(picture).all():
        raise Incorrect(f"{what} holds NaN or infinity: a picture is numbers 0..255 (or 0..1)")
    return as_uint8_image(picture)


def box_problem(
    submission, picture, coords, colour, before, measure, *, swapped: bool = False
) -> str | None:
    """None when the ``colour`` box is drawn where ``coords`` say; else what was drawn, what was
    expected, and the mistake that draws it there when one does. ``swapped``: the caller saw the
    other colour where this box belongs in a picture with both boxes (the colours' mistake)."""
    want = expected_box(coords)
    found = drawn_box(picture, colour, before)
    if box_matches(found, want):
        return None
    other = drawn_box(picture, "red" if colour == "green" else "green", before)
    if found is None:
        hint = ""
        if box_matches(other, want):
            hint = (
                "the colours are swapped: the true box is green, the predicted one red"
                if swapped
                else f"a {'red' if colour == 'green' else 'green'} box was drawn where the "
                f"{colour} one belongs"
                + (
                    " (with pred_coords=None only the true box is drawn)"
                    if colour == "green"
                    else ""
                )
            )
        return f"no {colour} box was drawn" + (f". Hint: {hint}" if hint else "")
    hint = submission.diagnose(
        "plot_bounding_box", measure, found, models=box_models(coords), same=same_box
    )
    return (
        f"the {colour} box for (row, col) = ({coords[0]:.4f}, {coords[1]:.4f}) should span "
        f"{want.describe()}; it spans {found.describe()}" + (f". Hint: {hint}" if hint else "")
    )


def thickness_problem(picture, colour, before) -> str | None:
    """None when the ``colour`` box's line is 3 pixels thick, as the task asks (PIL's
    ``width=3`` draws exactly 3)."""
    found = drawn_box(picture, colour, before)
    if found is None or found.thickness == 3:
        return None
    return (
        f"the {colour} box is in the right place but its line is {found.thickness} pixels "
        "thick: draw it with width=3"
    )


def iou_problem(submission, what: str, y_true, y_pred, got, want, measure) -> str:
    """The message for per-example IoU values that differ from ``want``: the first wrong pair,
    and the mistake (or the kind of code) that gives these values."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    wrong = np.flatnonzero(~(np.abs(got - want) <= 2e-3))
    i = wrong[0]
    text = (
        f"{what}: for y_true {np.round(y_true[i], 4).tolist()} and y_pred "
        f"{np.round(y_pred[i], 4).tolist()} the IoU should be {want[i]:.4f}, got {got[i]:.4f}"
    )
    if len(wrong) > 1:
        text += f" ({len(wrong)} of {len(got)} pairs are wrong)"
    same = lambda a, b: close(a, b, 2e-3)  # noqa: E731
    hint = iou_range_hint(got) or submission.diagnose(
        "IoU", measure, got, models=iou_models(y_true, y_pred), same=same
    )
    return text + (f". Hint: {hint}" if hint else "")


def schedule_problem(submission, calls, got) -> str:
    want = [rule(e, lr) for e, lr in calls]
    wrong = [
        (e, lr, x, g)
        for (e, lr), x, g in zip(calls, want, got, strict=True)
        if not abs(g - x) <= 1e-4 * x
    ]
    text = "; ".join(
        f"lr_schedule({e}, {lr:g}) returned {g:g}, expected {x:g}" for e, lr, x, g in wrong[:3]
    )
    if len(wrong) > 3:
        text += f" (and {len(wrong) - 3} more)"

    def measure(other):
        return [as_float(other.call("lr_schedule", e, lr), "the rate") for e, lr in calls]

    same = lambda a, b: close(np.log(np.abs(a) + 1e-30), np.log(np.abs(b) + 1e-30), 1e-4)  # noqa: E731
    hint = submission.diagnose(
        "lr_schedule", measure, got, models=schedule_models(list(calls)), same=same
    ) or schedule_observation(calls, got)
    return text + (f". Hint: {hint}" if hint else "")


def schedule_observation(calls, got) -> str:
    """What the returned rates show when no known mistake gives them: a rate returned whatever
    lr is given, another factor, another floor."""
    pairs = [(e, lr, g) for (e, lr), g in zip(calls, got, strict=True) if np.isfinite(g)]
    values = {round(g, 12) for _, _, g in pairs}
    if len(pairs) > 1 and len(values) == 1 and len({lr for _, lr, _ in pairs}) > 1:
        return (
            f"the schedule returns {pairs[0][2]:g} whatever lr it is given: compute the new "
            "rate from lr, the rate Keras passes in"
        )
    halved = [(lr, g) for e, lr, g in pairs if e >= HOLD and lr * FACTOR > FLOOR * 1.01]
    factors = {round(g / lr, 6) for lr, g in halved}
    if len(factors) == 1 and factors != {FACTOR}:
        return f"from epoch 3 the rate should be lr * 0.5; yours multiplies lr by {factors.pop():g}"
    floored = {round(g, 12) for e, lr, g in pairs if e >= HOLD and lr * FACTOR < FLOOR}
    if len(floored) == 1 and floored != {FLOOR}:
        return f"the rate stops at {floored.pop():g}: the floor is MIN_LR = 1e-5"
    return ""


def schedule_values(submission, calls) -> list[float]:
    return [
        as_float(submission.call("lr_schedule", e, lr), f"lr_schedule({e}, {lr})")
        for e, lr in calls
    ]
