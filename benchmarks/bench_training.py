"""The learner notebook's training section, as a learner runs it: the solution notebook top to
bottom with its default parameters, once per seed. Prints each run and the median.

    .venv/bin/python benchmarks/bench_training.py [--seeds 0 1 2]

The notebook prints a RESULT line with the wall-clock training time (model.fit, validation and the
callback's figures included), the IoU and the class accuracy on 512 fresh test images.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.notebook_runner import execute, result_line  # noqa: E402
from tests.objloc import SOLUTION_NOTEBOOK  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = result_line(execute(SOLUTION_NOTEBOOK, f"SEED = {seed}"))
        total = time.perf_counter() - start
        runs.append(result)
        print(
            f"seed {seed}: train {result['train_seconds']:5.1f} s  test IoU {result['test_iou']:.3f}  "
            f"class accuracy {result['test_accuracy']:.3f}  epochs {result['epochs']}  "
            f"(whole notebook {total:.0f} s)",
            flush=True,
        )
    median = {
        key: statistics.median(run[key] for run in runs)
        for key in ("train_seconds", "test_iou", "test_accuracy")
    }
    print(
        f"median of {len(runs)}: train {median['train_seconds']:.1f} s  test IoU {median['test_iou']:.3f}  "
        f"class accuracy {median['test_accuracy']:.3f}  (goal: IoU >= 0.9, accuracy >= 0.99 within 90 s)"
    )


if __name__ == "__main__":
    main()
