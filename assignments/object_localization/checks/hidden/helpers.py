"""Hidden inputs for the hidden checks: seeded, never shown to learners.

The seed is the grading's hidden seed (``grader.secret.hidden_seed()``: derived from the course's
secret and the submission's code), read when a check runs, never a constant here: reading the
installed grader tells nothing about the hidden inputs, and no submission can learn another's.
"""

from __future__ import annotations

import numpy as np

from grader.secret import hidden_seed

from ... import reference as ref


def hidden_rng(offset: int) -> np.random.Generator:
    return np.random.default_rng([hidden_seed(), offset])


def hidden_seeds(n: int, offset: int) -> list[int]:
    """``n`` distinct rng seeds for the learner's functions."""
    return [int(s) for s in hidden_rng(offset).choice(2**31, size=n, replace=False)]


def hidden_batch(n: int, offset: int = 0) -> ref.Batch:
    return ref.make_batch(n, hidden_rng(offset))


def random_boxes(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (row, col) boxes: most near each other (partial overlaps), some drawn
    independently (often disjoint), some identical, some touching at an edge or a corner, some
    side by side (apart along one axis only)."""
    rng = hidden_rng(1000 + offset)
    side = ref.measure_box_geometry().side / ref.IMAGE_SIZE
    a = rng.uniform(0.05, 0.55, (n, 2))
    b = np.clip(a + rng.normal(0, 0.08, (n, 2)), 0, 0.65)
    kind = rng.integers(0, 8, n)
    far = kind == 0
    b[far] = rng.uniform(0.0, 0.65, (int(far.sum()), 2))
    b[kind == 1] = a[kind == 1]
    touching = kind == 2
    b[touching] = a[touching] + side * rng.integers(0, 2, (int(touching.sum()), 2)).clip(0, 1)
    b[touching & (b == a).all(axis=1)] += [side, 0]
    # side by side: apart along one axis only (an unclamped overlap is then negative, not 0)
    apart = np.flatnonzero(kind == 3)
    axis = rng.integers(0, 2, len(apart))
    b[apart] = a[apart] + rng.uniform(-0.03, 0.03, (len(apart), 2))
    b[apart, axis] = a[apart, axis] + side * rng.uniform(1.2, 1.8, len(apart))
    few = max(1, n // 12)  # always a few of them
    b[:few] = a[:few] + np.array([0.0, side * 1.5])
    return a.astype(np.float32), b.astype(np.float32)


#: Tile positions at the canvas's four corners: row above, below and level with col, and the
#: widest gaps between them. A drawing that breaks for some boxes (two coordinates swapped, a box
#: past an edge) breaks on one of these, whatever the hidden seed.
CORNERS = ((0, 0), (0, ref.MAX_OFFSET), (ref.MAX_OFFSET, 0), (ref.MAX_OFFSET, ref.MAX_OFFSET))


def drawing_cases(offset: int) -> list[tuple[np.ndarray, list[float]]]:
    """(image, box) pairs for the checks of plot_bounding_box whose property is not the box: a
    hidden example with its own box, and hidden images with the corners' boxes."""
    batch = hidden_batch(1 + len(CORNERS), offset)
    boxes = [batch.boxes[0], *ref.positions_to_boxes(np.array(CORNERS))]
    return [(image, box.tolist()) for image, box in zip(batch.images, boxes, strict=True)]
