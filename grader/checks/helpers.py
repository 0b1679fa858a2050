"""Shared helpers for the hidden checks: hidden inputs and diagnoses of common mistakes."""

from __future__ import annotations

import numpy as np

from grader import reference as ref
from grader.check_api import Incorrect, short

HIDDEN_SEED = 20261125  # the checks' inputs derive from this; learners never see them


def as_array(value, what: str, *, ndim: int | None = None) -> np.ndarray:
    """A learner value as an array, or an Incorrect that says what came back instead."""
    if not isinstance(value, np.ndarray):
        raise Incorrect(f"{what} should be a numpy array", got=type(value).__name__)
    if ndim is not None and value.ndim != ndim:
        raise Incorrect(
            f"{what} has the wrong number of dimensions", expected=ndim, got=f"shape {value.shape}"
        )
    return value


def as_float(value, what: str) -> float:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Incorrect(f"{what} should be a number", got=short(value))
    return float(value)


def tile_at(image: np.ndarray, row: int, col: int) -> np.ndarray | None:
    if not (0 <= row <= ref.MAX_OFFSET and 0 <= col <= ref.MAX_OFFSET):
        return None
    return image[row : row + ref.TILE_SIZE, col : col + ref.TILE_SIZE].astype(np.float32)


def best_class(tile: np.ndarray | None) -> tuple[int, float]:
    """Which emoji the pixels show, and how far they are from it (mean abs difference)."""
    if tile is None:
        return -1, float("inf")
    scale = 255.0 if tile.max() > 1.5 else 1.0
    diffs = np.abs(ref.emoji_tiles().astype(np.float32) / 255.0 - tile[None] / scale).mean(
        axis=(1, 2, 3)
    )
    return int(diffs.argmin()), float(diffs.min())


def find_tile(image: np.ndarray) -> tuple[int, int] | None:
    """Where the emoji tile really is: the bounding box of non-white pixels, corrected by the ink box."""
    scale = 255.0 if image.max() > 1.5 else 1.0
    ink = (image.astype(np.float32) / scale < 0.98).any(axis=-1)
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    boxes = ref.ink_boxes()
    return int(rows[0] - boxes[:, 0].min()), int(cols[0] - boxes[:, 1].min())


def diagnose_label(image: np.ndarray, class_id: int, row: float, col: float) -> str | None:
    """None when the labels match the pixels; otherwise a message naming the likely mistake."""
    margin = ref.measure_box_geometry().margin
    label_row, label_col = row * ref.IMAGE_SIZE - margin, col * ref.IMAGE_SIZE - margin
    r, c = round(label_row), round(label_col)
    drawn, distance = best_class(tile_at(image, r, c))
    if distance < 0.02 and abs(label_row - r) < 0.51 and abs(label_col - c) < 0.51:
        if drawn != class_id:
            return f"the image shows class {drawn} ({ref.CLASS_NAMES[drawn]}) but class_id is {class_id}"
        return None
    found = find_tile(image)
    truth = (
        f"the emoji's tile is at row {found[0]}, col {found[1]}" if found else "no emoji is visible"
    )
    got = f"your labels put it at row {label_row:.1f}, col {label_col:.1f} (pixels, after removing the margin)"
    hint = ""
    if found:
        fr, fc = found
        if row > 1.5 or col > 1.5:
            hint = "row and col must be normalised: divide by 144"
        elif abs(label_row - fc) < 1 and abs(label_col - fr) < 1 and fr != fc:
            hint = "rows and columns are swapped: an image is indexed image[row, col], i.e. [y, x]"
        elif abs(row * 144 - fr) < 1 and abs(col * 144 - fc) < 1:
            hint = f"the margin is missing: the box starts MARGIN = {margin} pixels inside the tile"
        elif abs(label_row - fr) < 3 and abs(label_col - fc) < 3:
            hint = "the position is off by a few pixels; use (row + MARGIN) / 144 with the tile's integer row"
    return f"{truth}; {got}." + (f" Hint: {hint}." if hint else "")


def hidden_batch(n: int, offset: int = 0) -> ref.Batch:
    return ref.make_batch(n, np.random.default_rng([HIDDEN_SEED, offset]))
