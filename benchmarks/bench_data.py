"""Examples per second: the reference batch generator vs the original course's per-example loop.

The course-style loop is the original notebook's: each example starts as a float64 canvas
(``np.ones(...) * 255``), the emoji is a PIL image converted with ``np.array`` at every paste, the result
is cast to uint8, and the generator divides each example by 255 into a float64 batch, one at a time.
Both run here, in the same process, on the same tiles; the ratio is what matters.

    .venv/bin/python benchmarks/bench_data.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from PIL import Image

from assignments.object_localization import reference as ref

COURSE_TILES = [Image.fromarray(tile) for tile in ref.emoji_tiles()]  # the course kept PIL images


def course_style_batch(
    batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tiles = COURSE_TILES
    x = np.zeros((batch_size, 144, 144, 3))
    y = np.zeros((batch_size, 9))
    bbox = np.zeros((batch_size, 2))
    for i in range(batch_size):
        class_id = rng.integers(0, 9)
        image = np.ones((144, 144, 3)) * 255
        row, col = rng.integers(0, 73, size=2)
        image[row : row + 72, col : col + 72, :] = np.array(tiles[class_id])
        x[i] = image.astype("uint8") / 255.0
        y[i, class_id] = 1.0
        bbox[i] = (row + 10) / 144, (col + 10) / 144
    return x, y, bbox


def reference_batch(batch_size: int, rng: np.random.Generator):
    return ref.model_inputs(ref.make_batch(batch_size, rng))


def examples_per_second(make, batch_size: int, batches: int, repeats: int = 5) -> float:
    rates = []
    for repeat in range(repeats):
        rng = np.random.default_rng(repeat)
        start = time.perf_counter()
        for _ in range(batches):
            make(batch_size, rng)
        rates.append(batch_size * batches / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    ref.emoji_tiles()  # render once, outside the timings
    print("examples/s, median of 5 runs (float32 model inputs, as the generator yields them)")
    for batch_size in (16, 64):
        fast = examples_per_second(reference_batch, batch_size, batches=40)
        slow = examples_per_second(course_style_batch, batch_size, batches=10)
        print(
            f"batch {batch_size:3d}: reference {fast:9.0f}/s   course-style loop {slow:7.0f}/s   ratio {fast / slow:5.1f}x"
        )
    uint8 = examples_per_second(lambda n, rng: ref.make_batch(n, rng), 16, batches=100)
    slow = examples_per_second(course_style_batch, 16, batches=10)
    print(
        f"uint8 batches (what the grader streams to the sandbox): {uint8:.0f}/s, "
        f"ratio {uint8 / slow:.1f}x the course-style loop"
    )
    print("float32 output is memory-bound: 16 examples are 4 MB of float32 per batch.")


if __name__ == "__main__":
    main()
