"""Grading one correct submission end to end, and the training figures the thresholds come from.

    .venv/bin/python benchmarks/bench_grading.py [--seeds 0 1 2] [--sandbox auto|bwrap|none]

1. Grades the reference solution once and prints the time per stage (ingestion, sandbox start and
   load, checks, of which training, pictures) and the peak memory of the trusted process and of the
   sandboxed worker. Goal: <= 150 s and <= 2 GB on 2 cores.
2. Runs the grader's budgeted training (same budget as the hidden check) on the reference solution
   with several seeds and prints IoU / class accuracy on the hidden test set, with their median: the
   check's bands sit below that median with a margin.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import reference as ref  # noqa: E402
from grader.assign import SOLUTION_NOTEBOOK  # noqa: E402
from grader.checks.hidden import test_training as training  # noqa: E402
from grader.grade import SandboxedSubmission, grade_notebook  # noqa: E402
from grader.notebook import ingest  # noqa: E402
from grader.sandbox import Sandbox  # noqa: E402


class PeakMemory:
    """Samples the RSS of this process and all its descendants (the sandboxed worker included)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak_total, self.peak_self = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = own = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak_total, self.peak_self = max(self.peak_total, total), max(self.peak_self, own)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def train_once(seed: int, mode: str) -> tuple[float, float, float, int]:
    ingested = ingest(SOLUTION_NOTEBOOK)
    with Sandbox(ingested.source, mode=mode) as sandbox:
        test, report = training.run_training(SandboxedSubmission(ingested, sandbox), seed, seed)
    boxes = np.asarray(report["predictions"]["box_out"])
    accuracy = float(
        (np.asarray(report["predictions"]["class_out"]).argmax(1) == test.class_ids).mean()
    )
    return (
        float(ref.iou(test.boxes, boxes).mean()),
        accuracy,
        float(report["train_seconds"]),
        int(report["steps"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    args = parser.parse_args()

    start = time.perf_counter()
    with PeakMemory() as memory:
        result = grade_notebook(SOLUTION_NOTEBOOK, sandbox_mode=args.sandbox)
    total = time.perf_counter() - start
    timings = result.extra["timings"]
    print(
        f"grading the solution: {result.score:g}/{result.max_score:g} in {total:.1f} s ({result.extra['isolation']})"
    )
    checks = timings.get("checks", 0.0)
    train = timings.get("training", 0.0)
    for name, value in (
        ("ingestion", timings.get("ingest", 0.0)),
        ("sandbox start + load", timings.get("sandbox_start_and_load", 0.0)),
        ("checks without training", checks - train),
        ("training (in the checks)", train),
        ("pictures", timings.get("pictures", 0.0)),
    ):
        print(f"  {name:26s} {value:6.1f} s  ({100 * value / total:4.1f}%)")
    print(
        f"  peak RSS (sampled every 0.2 s): trusted process {memory.peak_self / 2**20:.0f} MB, "
        f"trusted process + sandbox processes {memory.peak_total / 2**20:.0f} MB (goal: <= 2048 MB)"
    )

    print(
        f"budgeted training ({training.EPOCHS} x {training.STEPS_PER_EPOCH} steps of {training.BATCH_SIZE}, cap {training.SECONDS:.0f} s):"
    )
    runs = []
    for seed in args.seeds:
        iou, accuracy, seconds, steps = train_once(seed, args.sandbox)
        runs.append((iou, accuracy, seconds))
        print(
            f"  seed {seed}: IoU {iou:.3f}  accuracy {accuracy:.3f}  {steps} steps in {seconds:.1f} s",
            flush=True,
        )
    med_iou = statistics.median(r[0] for r in runs)
    med_acc = statistics.median(r[1] for r in runs)
    med_sec = statistics.median(r[2] for r in runs)
    print(f"  median: IoU {med_iou:.3f}  accuracy {med_acc:.3f}  {med_sec:.1f} s")
    print(
        f"  check bands: IoU full from {training.IOU_BANDS[0][1]} ({med_iou / training.IOU_BANDS[0][1]:.2f}x margin), "
        f"accuracy full from {training.ACCURACY_BANDS[0][1]}"
    )


if __name__ == "__main__":
    main()
