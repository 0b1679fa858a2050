"""``grader similarity`` on made-up cohorts of 30 and 300 notebooks: reading the graded cells (in
processes, one per core), fingerprinting and comparing every pair's code, and comparing every
pair's stored model fingerprints (``behaviour``: synthetic ones, half the cohort sharing one model
and the others each their own, as many distinct as can be); the median of 3 runs.
The aim is 300 notebooks in under a minute on 2 cores. The cohorts come from
tests/similarity_cohort.py (the solution, its alternatives and typical mistakes, mixed at random);
no learner's notebook is used.

    python -m benchmarks.bench_similarity [--sizes 30 300] [--runs 3] [-j N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from grader.assignment import resolve
from grader.batch import discover
from grader.results import Fingerprint
from grader.similarity import compare_cohort, read_all
from grader.similarity.behaviour import weighed
from grader.similarity.extract import given_code
from tests.similarity_cohort import large_cohort, write


def models(ids: list[str]) -> dict[str, Fingerprint]:
    """A fingerprint per id as the course records them (22 layers, 16 rows of 11 numbers): half
    the ids share one model, the others have one each."""
    found = {}
    for number, ident in enumerate(ids):
        rng = np.random.default_rng(0 if number % 2 else number)
        layers = [f"Conv2D (None, {a}, {a}, {b}) {c}" for a, b, c in rng.integers(1, 99, (22, 3))]
        rows = np.round(rng.uniform(0, 1, (16, 11)), 4).tolist()
        found[ident] = Fingerprint(layers, rows, 0.0015, "bench")
    return found


def one_run(folder: Path, jobs: int | None) -> dict[str, float]:
    """Seconds per stage of one comparison of the notebooks in ``folder``."""
    assignment = resolve("object_localization")
    started = time.perf_counter()
    items, _ = discover([folder])
    codes = read_all(items, assignment, jobs=jobs)
    read = time.perf_counter()
    comparison = compare_cohort(codes, given=given_code(assignment))
    done = time.perf_counter()
    assert len(comparison.pairs) == len(items) * (len(items) - 1) // 2
    fingerprints = models([item.id for item in items])
    behaving = time.perf_counter()
    assert len(weighed(fingerprints)) == len(comparison.pairs)
    behaved = time.perf_counter()
    return {
        "read": read - started,
        "compare": done - read,
        "behaviour": behaved - behaving,
        "total": done - started + behaved - behaving,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-j", "--jobs", type=int, default=None)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, reading processes: {args.jobs or os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = write(large_cohort(size), Path(tmp) / str(size))
            runs = [one_run(folder, args.jobs) for _ in range(args.runs)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            pairs = size * (size - 1) // 2
            each = ", ".join(f"{run['total']:.2f}" for run in runs)
            print(
                f"{size:4d} notebooks, {pairs:6d} pairs: total {median['total']:6.2f} s "
                f"(read {median['read']:5.2f} s, fingerprint + compare {median['compare']:5.2f} s, "
                f"behaviour {median['behaviour']:5.2f} s), "
                f"median of {args.runs}; runs {each}"
            )


if __name__ == "__main__":
    main()
