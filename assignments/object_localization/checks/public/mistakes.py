"""Typical mistakes as models: what code with a given mistake returns on a check's inputs.

A check that fails compares the learner's values with each model's on the same inputs and names the
mistake whose values match (``Submission.diagnose``): a hint names a cause only when the learner's
code behaves exactly like it. Public code (the self-check gives the same hints); the grader also
runs the solution with the assignment's catalogue of mistakes (``mistakes.yaml``) and the audit's
mutants, which need the solution and so only run when grading.

Values far out of range (an IoU above 1, NaN, a constant) always come with their likely cause
(:func:`iou_range_hint`): such a value says what kind of code made it.
"""

from __future__ import annotations

import numpy as np

from grader.checking import Model

from ... import course
from .helpers import MARGIN, SIDE, DrawnBox, expected_box

SIZE = course.IMAGE_SIZE

# -- labels: the box label of a tile drawn at pixel (row, col)

SWAPPED = "rows and columns are swapped: an image is indexed image[row, col], i.e. [y, x]"
NO_MARGIN = (
    "the margin is missing: the box starts MARGIN pixels inside the tile, so the label is "
    "(row + MARGIN) / 144"
)


def label_models(rows: np.ndarray, cols: np.ndarray) -> list[Model]:
    """Labels (row, col) that each typical mistake gives for tiles drawn at pixel rows/cols."""
    r, c = np.asarray(rows, float), np.asarray(cols, float)

    def pair(a, b):
        return np.stack([a, b], axis=1)

    return [
        Model(pair((c + MARGIN) / SIZE, (r + MARGIN) / SIZE), SWAPPED),
        Model(pair(r / SIZE, c / SIZE), NO_MARGIN),
        Model(pair(c / SIZE, r / SIZE), f"{SWAPPED}; and {NO_MARGIN}"),
        Model(
            pair(r + MARGIN, c + MARGIN),
            "row and col are in pixels: normalise them, (row + MARGIN) / 144",
        ),
        Model(pair(r, c), "the labels are the tile's position in pixels: use (row + MARGIN) / 144"),
        Model(
            pair((r + MARGIN) / course.TILE_SIZE, (c + MARGIN) / course.TILE_SIZE),
            "the labels are divided by the tile's size (72): normalise by the image's, 144",
        ),
        Model(
            pair((r + MARGIN) / (SIZE - 1), (c + MARGIN) / (SIZE - 1)),
            "the labels are divided by 143: normalise by the image's size, 144",
        ),
        Model(
            pair((r + MARGIN + SIDE / 2) / SIZE, (c + MARGIN + SIDE / 2) / SIZE),
            "the labels are the box's centre: the course labels its top-left corner, "
            "(row + MARGIN) / 144",
        ),
        Model(
            pair((r + SIDE) / SIZE, (c + SIDE) / SIZE),
            "the labels add BOX_SIDE: the box starts MARGIN pixels inside the tile",
        ),
    ]


def label_offset_hint(rows, cols, labels) -> str:
    """When every label is the same whole number of pixels off: that offset."""
    labels = np.asarray(labels, float)
    off = labels * SIZE - (np.stack([rows, cols], axis=1) + MARGIN)
    if not np.all(np.isfinite(off)) or not np.allclose(off, np.round(off), atol=0.02):
        return ""
    rounded = np.round(off).astype(int)
    if (rounded == rounded[0]).all() and rounded[0].any():
        dr, dc = rounded[0]
        return (
            f"every label is off by {dr:+d} rows and {dc:+d} columns (pixels): the label is "
            "(row + MARGIN) / 144 for the tile's own row and col"
        )
    return ""


# -- boxes drawn by plot_bounding_box


def box_models(coords) -> list[Model]:
    """Where each typical mistake draws the box for normalised ``coords`` (row, col)."""
    row, col = (float(v) for v in np.asarray(coords, float)[:2])

    def box(top: float, left: float, side: float = SIDE) -> DrawnBox:
        last = SIZE - 1
        return DrawnBox(
            round(max(top, 0)),
            round(max(left, 0)),
            round(min(top + side, last)),
            round(min(left + side, last)),
            3,
        )

    return [
        Model(
            expected_box((col, row)),
            "rows and columns are swapped: draw.rectangle takes (x0, y0, x1, y1) = (col, row, "
            "col + BOX_SIDE, row + BOX_SIDE)",
        ),
        Model(
            box(row, col),
            "the coordinates are normalised: multiply row and col by 144 before drawing",
        ),
        Model(
            box(row * SIZE, col * SIZE, course.TILE_SIZE),
            "the box is the tile's size (72): it is BOX_SIDE pixels wide",
        ),
        Model(
            box(row * SIZE - MARGIN, col * SIZE - MARGIN),
            "the box starts MARGIN pixels early: the label already includes the margin",
        ),
        Model(
            box(row * SIZE + MARGIN, col * SIZE + MARGIN),
            "the box adds MARGIN again: the label already includes the margin",
        ),
        Model(
            DrawnBox(
                round(row * SIZE),
                round(col * SIZE),
                round(row * SIZE + SIDE * SIZE),
                round(col * SIZE + SIDE * SIZE),
                3,
            ),
            "BOX_SIDE is already in pixels: do not multiply it by 144",
        ),
    ]


def same_box(a: DrawnBox | None, b: DrawnBox | None) -> bool:
    return (
        a is not None
        and b is not None
        and all(
            abs(getattr(a, e) - getattr(b, e)) <= 1.5 for e in ("top", "left", "bottom", "right")
        )
    )


# -- IoU per example, for (row, col) boxes of the course's side


def _gaps(y_true, y_pred, side: float, scale: float = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the overlap's height and width before clamping."""
    diff = np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)) * scale
    return side - diff[:, 0], side - diff[:, 1]


def _iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


UNCLAMPED_HINT = (
    "IoU not clamped: abs(x2 - x1) turns the gap between disjoint boxes into a positive "
    "'overlap'; use max(0, min(...) - max(...)) for each side of the intersection"
)


def iou_models(y_true, y_pred) -> list[Model]:
    """The per-example IoU each typical mistake gives on these pairs."""
    h, w = _gaps(y_true, y_pred, SIDE)
    area = float(SIDE * SIDE)
    clamped = np.clip(h, 0, None) * np.clip(w, 0, None)
    unclamped = np.abs(h) * np.abs(w)
    h1, w1 = _gaps(y_true, y_pred, SIDE + 1)
    plus_one = np.clip(h1, 0, None) * np.clip(w1, 0, None)
    hn, wn = _gaps(y_true, y_pred, SIDE, scale=1.0)
    unscaled = np.clip(hn, 0, None) * np.clip(wn, 0, None)
    crossed = _gaps(np.asarray(y_true, float)[:, ::-1], y_pred, SIDE)
    crossed_inter = np.clip(crossed[0], 0, None) * np.clip(crossed[1], 0, None)
    return [
        Model(_iou(unclamped, 2 * area - unclamped), UNCLAMPED_HINT),
        Model(
            _iou(h * w, 2 * area - h * w),
            "the overlap is not clamped at 0: when the boxes miss each other, the 'overlap' "
            "height or width is negative; use max(0, min(...) - max(...)) for each side",
        ),
        Model(
            _iou(clamped, np.full_like(clamped, 2 * area)),
            "the union does not subtract the intersection: union = area1 + area2 - intersection",
        ),
        Model(
            _iou(clamped, np.full_like(clamped, area)),
            "the IoU divides by one box's area, not by the union (area1 + area2 - intersection)",
        ),
        Model(
            _iou(plus_one, 2 * (SIDE + 1) ** 2 - plus_one),
            "the box is one pixel too large (inclusive pixel counting, side + 1): the box "
            "spans BOX_SIDE pixels, from top to top + BOX_SIDE",
        ),
        Model(
            _iou(unscaled, 2 * area - unscaled),
            "the boxes are normalised but BOX_SIDE is in pixels: multiply row and col by "
            "IMAGE_SIZE (144) before computing the corners",
        ),
        Model(
            _iou(crossed_inter, 2 * area - crossed_inter),
            "rows and columns are mixed up between y_true and y_pred",
        ),
    ]


def iou_range_hint(values) -> str:
    """The likely cause of IoU values no correct IoU gives: the same for every pair, above 1,
    below 0, NaN, infinite. An IoU lies in [0, 1]; it is 1 only for identical boxes."""
    v = np.asarray(values, float)
    finite = v[np.isfinite(v)]
    notes = []
    if len(finite) > 2 and np.ptp(finite) < 1e-9:
        notes.append(
            f"your IoU is {finite[0]:.4g} for every pair of boxes it gives a number for, "
            "whatever they are: the value does not depend on the boxes (e.g. a helper that "
            "reads other variables than the boxes it is given, or the same box used twice)"
        )
    elif (finite > 1 + 1e-6).any():
        notes.append(
            "an IoU can never exceed 1: the intersection is larger than the union, so the "
            "union is missing a term (area1 + area2 - intersection) or the values are not "
            "divided by the number of examples"
        )
    elif (finite < -1e-6).any():
        notes.append("an IoU can never be negative: clamp each side of the intersection at 0")
    if np.isnan(v).any():
        notes.append(
            "it is NaN for some boxes: a division 0 / 0 (or a log or square root of a negative "
            "number); the union of two boxes of side BOX_SIDE is never 0, so divide by the "
            "union, and clamp the overlap with max(0, ...)"
        )
    if np.isinf(v).any():
        notes.append("it is infinite for some boxes: something divides by a number that is 0")
    if not notes:
        return ""
    text = "; ".join(notes)
    return text if text.startswith(("your", "an IoU")) else "your IoU " + text.removeprefix("it ")


# -- accumulation: the metric's value after several batches, from its own per-example values


def accumulation_models(batches: list[np.ndarray]) -> list[Model]:
    """result() after these batches (each the learner's own per-example IoU values) under each
    typical accumulation mistake."""
    every = np.concatenate(batches)
    means = [float(np.mean(b)) for b in batches]
    return [
        Model(
            means[-1],
            "result() returns only the last batch: add each batch into state variables with "
            "assign_add, not assign",
        ),
        Model(
            float(every.sum()),
            "result() returns the sum of the IoUs: divide by the number of examples seen",
        ),
        Model(
            float(np.mean(means)),
            "result() averages the batches' means: batches of different sizes must count per "
            "example (sum the IoUs, count the examples)",
        ),
        Model(
            float(every.sum() / len(batches)),
            "result() divides by the number of batches (update_state calls), not by the number "
            "of examples: add ops.shape(iou)[0] to the count",
        ),
        Model(
            float(every.sum() / len(batches[-1])),
            "result() divides by the last batch's size: count every example since the reset "
            "with assign_add, not assign",
        ),
        Model(
            means[0],
            "result() keeps the first batch only: update_state must add every batch",
        ),
        Model(
            float(sum(means) / len(every)),
            "update_state adds each batch's mean IoU but counts its examples: add the batch's "
            "total, ops.sum(iou)",
        ),
    ]


# -- the learning-rate schedule

HOLD, FACTOR, FLOOR = 3, 0.5, 1e-5


def rule(epoch: int, lr: float, hold=HOLD, factor=FACTOR, floor=FLOOR, every=1) -> float:
    """The task's schedule (and, with other arguments, a mistaken one)."""
    if epoch < hold or (epoch + 1 - hold) % every:
        return max(lr, floor) if floor and epoch >= hold else lr
    return max(lr * factor, floor)


def schedule_models(calls: list[tuple[int, float]]) -> list[Model]:
    """What each typical mistake returns for these (epoch, lr) calls."""

    def values(**kwargs):
        return [rule(e, lr, **kwargs) for e, lr in calls]

    return [
        Model(values(floor=0), "the floor is missing: return max(new_lr, MIN_LR)"),
        Model(
            values(hold=HOLD - 1),
            "the halving starts one epoch early: keep lr while epoch < 3 (epochs 0, 1 and 2)",
        ),
        Model(
            values(hold=HOLD + 1),
            "the halving starts one epoch late: keep lr while epoch < 3, halve from epoch 3",
        ),
        Model(values(hold=0), "the rate is halved from epoch 0: keep lr while epoch < 3"),
        Model(
            values(factor=0.2, floor=3e-7, every=5, hold=0),
            "this is the original course's schedule (x0.2 every 5th epoch, floor 3e-7); this "
            "course asks for: keep lr while epoch < 3, then lr * 0.5 each epoch, never below "
            "MIN_LR = 1e-5",
        ),
        Model(
            [min(lr * FACTOR, FLOOR) if e >= HOLD else lr for e, lr in calls],
            "min() where max() belongs: the floor is the smallest rate allowed, max(new_lr, MIN_LR)",
        ),
    ]
