"""This course's report pictures (the ``pictures`` hook): the trained model on hidden test images,
and the training curves with the course's panel names.

Trusted side only (it draws with ``reference``): never shipped in the learner bundle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.checking import Artifacts
from grader.results import Picture, curves_picture, figure_png, pyplot

from . import reference


@dataclass
class Predictions:
    """Hidden test images with the learner's trained model's predictions, as the report draws them
    (truth in green, prediction in red). Arrays of one row per image."""

    images: np.ndarray  # (n, side, side, 3) uint8
    true_boxes: np.ndarray  # (n, 2) normalised boxes, as reference's examples
    pred_boxes: np.ndarray  # (n, 2) the model's box output, same convention
    true_classes: np.ndarray  # (n,) class ids
    pred_classes: np.ndarray  # (n,) class ids (argmax of the class output)


def predictions_picture(shown: Predictions) -> bytes:
    """A grid of hidden test images: truth in green, the learner's prediction in red, as in the
    course's plot_bounding_box."""
    plt = pyplot()
    count = len(shown.images)
    columns = min(count, 4)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index in range(count):
        ax = axes.flat[index]
        truth, guess = shown.true_boxes[index], shown.pred_boxes[index]
        ax.imshow(reference.draw_boxes(shown.images[index], truth, guess))
        right = shown.pred_classes[index] == shown.true_classes[index]
        iou = reference.iou(truth[None], guess[None])[0]
        ax.set_title(
            f"{reference.CLASS_NAMES[shown.pred_classes[index]]}  IoU {iou:.2f}",
            color="green" if right else "red",
            fontsize=9,
        )
    figure.tight_layout()
    png = figure_png(figure)
    plt.close(figure)
    return png


def report_pictures(artifacts: Artifacts) -> dict[str, Picture | None]:
    """The predictions grid first, then the curves titled as the course names them."""
    pictures: dict[str, Picture | None] = {}
    if isinstance(artifacts.predictions, Predictions):
        pictures["predictions"] = Picture(
            "Your model on hidden test images",
            "Ground truth in green, your model's prediction in red; the title is the predicted "
            "class (green when right).",
            "predictions of the trained model on hidden test images",
            predictions_picture(artifacts.predictions),
        )
    if artifacts.history:
        titles = {"iou": "box IoU", "accuracy": "class accuracy"}
        pictures["curves"] = curves_picture(artifacts.history, titles)
    return pictures
