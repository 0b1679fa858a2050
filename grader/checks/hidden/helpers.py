"""Hidden inputs for the hidden checks: seeded, never shown to learners."""

from __future__ import annotations

import numpy as np

from grader import reference as ref

HIDDEN_SEED = 20261125


def hidden_batch(n: int, offset: int = 0) -> ref.Batch:
    return ref.make_batch(n, np.random.default_rng([HIDDEN_SEED, offset]))


def random_boxes(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (row, col) boxes, mostly overlapping, some disjoint."""
    rng = np.random.default_rng([HIDDEN_SEED, 1000 + offset])
    a = rng.uniform(0.05, 0.55, (n, 2))
    return a, np.clip(a + rng.normal(0, 0.08, (n, 2)), 0, 0.65)
