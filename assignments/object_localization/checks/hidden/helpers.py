"""Hidden inputs for the hidden checks: seeded, never shown to learners.

The seed is the course's secret (``grader.secret.hidden_seed()``), read when a check runs, never a
constant here: reading the installed grader tells nothing about the hidden test set.
"""

from __future__ import annotations

import numpy as np

from grader.secret import hidden_seed

from ... import reference as ref


def hidden_batch(n: int, offset: int = 0) -> ref.Batch:
    return ref.make_batch(n, np.random.default_rng([hidden_seed(), offset]))


def random_boxes(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (row, col) boxes: three in four near each other, the rest drawn independently
    (often disjoint, which an unclamped intersection gets wrong)."""
    rng = np.random.default_rng([hidden_seed(), 1000 + offset])
    a = rng.uniform(0.05, 0.55, (n, 2))
    b = np.clip(a + rng.normal(0, 0.08, (n, 2)), 0, 0.65)
    far = rng.random(n) < 0.25
    b[far] = rng.uniform(0.0, 0.65, (int(far.sum()), 2))
    return a, b


def unclamped_iou(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The original course's IoU: abs() instead of clamping, to recognise that mistake."""
    side = ref.measure_box_geometry().side
    gap_h = np.abs(side - np.abs(y_true[:, 0] - y_pred[:, 0]) * 144)
    gap_w = np.abs(side - np.abs(y_true[:, 1] - y_pred[:, 1]) * 144)
    inter = gap_h * gap_w
    return inter / (2 * side * side - inter)
