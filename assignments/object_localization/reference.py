"""Trusted reference code: the grader's ground truth for examples, labels, IoU and drawn boxes.

This is the solution of several graded tasks written in numpy, so learners never get it: the
sandboxed worker cannot see it and the learner bundle leaves it out. The given material (emojis,
tiles, box geometry) lives in ``course`` and is re-exported here for the checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .course import (  # noqa: F401 - re-exported for the checks
    CLASS_NAMES,
    EMOJIS,
    GREEN,
    IMAGE_SIZE,
    MAX_OFFSET,
    NUM_CLASSES,
    OPENMOJI_CREDIT,
    RED,
    TILE_SIZE,
    BoxGeometry,
    as_generator,
    boxes_to_corners,
    emoji_tiles,
    font_path,
    ink_boxes,
    measure_box_geometry,
    render_emojis_rgba,
)


@dataclass(frozen=True)
class Batch:
    """Labelled examples: uint8 images, class ids, integer tile positions, normalised boxes."""

    images: np.ndarray  # (n, 144, 144, 3) uint8
    class_ids: np.ndarray  # (n,) int64
    positions: np.ndarray  # (n, 2) int64: the tile's (row, col)
    boxes: np.ndarray  # (n, 2) float32: ((row + margin) / 144, (col + margin) / 144)

    def __len__(self) -> int:
        return len(self.class_ids)


def make_batch(n: int, rng: np.random.Generator | int | None = None) -> Batch:
    """Draw ``n`` labelled examples into one preallocated uint8 canvas (one slice write each).

    A per-example slice copy beats a single fancy-indexed write here by ~15x: it moves contiguous
    72-pixel rows instead of gathering 15k scattered indices per example.
    """
    rng = as_generator(rng)
    class_ids = rng.integers(0, NUM_CLASSES, size=n)
    positions = rng.integers(0, MAX_OFFSET + 1, size=(n, 2))
    images = np.full((n, IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8)
    tiles = emoji_tiles()
    for image, class_id, (row, col) in zip(images, class_ids, positions, strict=True):
        image[row : row + TILE_SIZE, col : col + TILE_SIZE] = tiles[class_id]
    return Batch(images, class_ids, positions, positions_to_boxes(positions))


def positions_to_boxes(positions: np.ndarray) -> np.ndarray:
    """Tile positions (row, col) in pixels -> normalised box labels."""
    margin = measure_box_geometry().margin
    return ((np.asarray(positions, dtype=np.float64) + margin) / IMAGE_SIZE).astype(np.float32)


def create_example(
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, int, float, float]:
    """One example in the course's shape: (image uint8, class_id, row, col) with row/col normalised."""
    batch = make_batch(1, rng)
    row, col = batch.boxes[0]
    return batch.images[0], int(batch.class_ids[0]), float(row), float(col)


def one_hot(class_ids: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(class_ids)]


def model_inputs(batch: Batch) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the course's data generator yields: float images in [0, 1] and dict targets."""
    # One pass, one allocation: astype() then "/ 255" allocates twice and is ~20x slower for
    # batch-sized arrays (each fresh multi-MB buffer is a new mmap that page-faults).
    images = np.multiply(batch.images, np.float32(1 / 255), dtype=np.float32)
    return images, {"class_out": one_hot(batch.class_ids), "box_out": batch.boxes}


def training_batches(
    batch_size: int, rng: np.random.Generator | int | None = None
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Endless stream of (images, targets) batches: the trusted data pipeline used for grading."""
    rng = as_generator(rng)
    while True:
        yield model_inputs(make_batch(batch_size, rng))


def iou_corners(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes given as (..., 4) corners (top, left, bottom, right).

    The intersection's sides are clamped at zero, so disjoint and touching boxes score 0 (the
    original course forgot this and scored disjoint boxes ~0.74). Two empty boxes score 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)

    def area(box: np.ndarray) -> np.ndarray:
        return np.clip(box[..., 2] - box[..., 0], 0, None) * np.clip(
            box[..., 3] - box[..., 1], 0, None
        )

    top = np.maximum(a[..., 0], b[..., 0])
    left = np.maximum(a[..., 1], b[..., 1])
    bottom = np.minimum(a[..., 2], b[..., 2])
    right = np.minimum(a[..., 3], b[..., 3])
    intersection = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    union = area(a) + area(b) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def iou(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-example IoU of course-style labels: (n, 2) normalised top-left, fixed box side."""
    return iou_corners(boxes_to_corners(y_true), boxes_to_corners(y_pred))


def draw_boxes(
    image: np.ndarray,
    true_box: np.ndarray | None = None,
    pred_box: np.ndarray | None = None,
    width: int = 2,
) -> np.ndarray:
    """Return a copy of ``image`` with the true box in green and the predicted one in red."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(np.ascontiguousarray(array))
    draw = ImageDraw.Draw(canvas)
    for box, colour in ((true_box, GREEN), (pred_box, RED)):
        if box is not None:
            top, left, bottom, right = boxes_to_corners(np.asarray(box))
            draw.rectangle((left, top, right, bottom), outline=colour, width=width)
    return np.asarray(canvas)
