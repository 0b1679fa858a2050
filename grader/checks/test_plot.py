"""plot_bounding_box: both boxes drawn where they belong; the input is left alone."""

import numpy as np

from grader import reference as ref
from grader.check_api import Incorrect, check
from grader.checks.helpers import as_array


def colour_mask(image: np.ndarray, colour: str) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    if colour == "green":
        return (g > 90) & (r < 90) & (b < 90)
    return (r > 150) & (g < 90) & (b < 90)


def perimeter(box) -> np.ndarray:
    top, left, bottom, right = np.round(ref.boxes_to_corners(np.asarray(box))).astype(int)
    mask = np.zeros((144, 144), bool)
    mask[max(top, 0) : bottom + 1, max(left, 0) : right + 1] = True
    inner = np.zeros_like(mask)
    inner[top + 4 : bottom - 3, left + 4 : right - 3] = True
    outer = np.zeros_like(mask)
    outer[max(top - 3, 0) : bottom + 4, max(left - 3, 0) : right + 4] = True
    return outer & ~inner, mask


def box_drawn(image, box, colour) -> str | None:
    drawn = colour_mask(image, colour)
    if not drawn.any():
        return f"no {colour} box was drawn"
    band, _ = perimeter(box)
    outside = (drawn & ~band).sum() / drawn.sum()
    top, left, _, _ = ref.boxes_to_corners(np.asarray(box))
    if outside > 0.1:
        swapped_band, _ = perimeter(box[::-1])
        hint = ""
        if (drawn & ~swapped_band).sum() / drawn.sum() < 0.1:
            hint = " Hint: rows and columns are swapped; draw.rectangle takes (x0, y0, x1, y1) = (col, row, ...)."
        rows, cols = np.nonzero(drawn)
        return (
            f"the {colour} box is not where the coordinates say: expected its top-left corner at "
            f"row {top:.0f}, col {left:.0f}, got ink from row {rows.min()}, col {cols.min()}.{hint}"
        )
    return None


@check("plot_bounding_box", 5, public=True)
def test_plot_bounding_box_draws_both_boxes(submission):
    """the true box is green and the predicted box red, where the coordinates say"""
    image = np.full((144, 144, 3), 255, np.uint8)
    true_box, pred_box = (20 / 144, 60 / 144), (70 / 144, 15 / 144)
    out = as_array(
        submission.call("plot_bounding_box", image, list(true_box), list(pred_box)),
        "the returned image",
    )
    if out.shape[:2] != (144, 144) or out.ndim != 3:
        raise Incorrect("the returned image should be 144x144 RGB", got=out.shape)
    for box, colour in ((true_box, "green"), (pred_box, "red")):
        problem = box_drawn(out[..., :3], np.array(box), colour)
        if problem:
            raise Incorrect(problem)


@check("plot_bounding_box", 3)
def test_plot_bounding_box_does_not_modify_its_input(submission):
    """the caller's image is not changed, with norm=True or not"""
    batch = ref.make_batch(1, 3)
    floats = batch.images[0].astype(np.float32) / 255.0
    for image, norm in ((batch.images[0], False), (floats, True)):
        after = submission.call_returning_args(
            "plot_bounding_box", image, batch.boxes[0].tolist(), None, norm
        )
        changed = as_array(after[0], "the image argument after the call")
        if changed.shape != image.shape or not np.array_equal(changed, image):
            hint = (
                "`image *= 255` scales the caller's array in place; compute a new array instead"
                if norm
                else "draw on a copy of the image"
            )
            raise Incorrect(
                f"plot_bounding_box changed the image it was given (norm={norm})", hint=hint
            )


@check("plot_bounding_box", 2)
def test_plot_bounding_box_handles_normalised_images(submission):
    """with norm=True a [0, 1] image comes back as a visible 0..255 picture with the box"""
    batch = ref.make_batch(1, 4)
    floats = batch.images[0].astype(np.float32) / 255.0
    out = as_array(
        submission.call("plot_bounding_box", floats, batch.boxes[0].tolist(), None, True),
        "the returned image",
    )
    if out[..., :3].astype(float).mean() < 100:
        raise Incorrect(
            "the picture is nearly black: the [0, 1] image was not scaled back to 0..255",
            hint="multiply by 255 when norm=True",
        )
    problem = box_drawn(out[..., :3], batch.boxes[0], "green")
    if problem:
        raise Incorrect(problem)
