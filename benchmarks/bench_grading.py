"""Grading one correct submission end to end, and the training figures the thresholds come from.

    .venv/bin/python benchmarks/bench_grading.py [--seeds S1 S2 S3] [--threads 2] [--no-grading]
                                                 [--sandbox auto|bwrap|none]

1. Grades the reference solution once and prints its status, the time per stage (ingestion,
   sandbox start and load, checks, of which training, pictures) and the peak memory of the trusted
   process and of the sandboxed worker.
2. Runs the grader's budgeted training (the hidden check's own ``run_training``, full step budget)
   on the reference solution for several *hidden seeds* (random by default: the course's seed is a
   random secret, so the reference must reach full marks for any seed) and prints IoU / class
   accuracy on that seed's hidden test set, the training time and steps per second, and the
   reference model's cost (``grader.checking.model_audit``). The check's bands sit below the worst seed with
   a margin; the train probe's wall-clock limit (``grader.checking.probes.TRAIN_TIMEOUT``) and the cost
   limit (``MAX_MFLOPS_PER_EXAMPLE``) are sized from the seconds and the MFLOPs printed here.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assignments.object_localization import reference as ref  # noqa: E402
from assignments.object_localization.checks.hidden import test_training as training  # noqa: E402
from grader import wire, worker  # noqa: E402
from grader.checking import TRAIN_TIMEOUT, InProcessSubmission  # noqa: E402
from grader.grade import SandboxedSubmission, grade  # noqa: E402
from grader.job import GradingJob  # noqa: E402
from grader.sandbox import Limits, Sandbox  # noqa: E402
from grader.secret import using_seed  # noqa: E402
from tests.objloc import COURSE, GRADED_PARTS, SOLUTION_NOTEBOOK, ingest  # noqa: E402


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


class LocalSubmission(InProcessSubmission):
    """The worker's probes in this process, training included (``--sandbox in-process``): the
    same training code, measurable on a machine whose sandboxed neighbours kill each other."""

    class _Channel:
        def __init__(self, answer):
            self.answer = answer

        def ask(self, header, arrays=None):
            return self.answer(header, arrays or {})

    def _request(self, op, args, arrays, on_message=None):
        if op != "train":
            return super()._request(op, args, arrays, on_message)
        worker.STATE.module = self._module
        header, reply_arrays = worker.op_train(args, arrays, self._Channel(on_message))
        return wire.resolve(header["result"], reply_arrays)


def _local_submission(threads: int) -> LocalSubmission:
    worker.STATE.threads = threads
    worker._keras()  # sets this process's TensorFlow threads before anything else imports it
    ingested = ingest(SOLUTION_NOTEBOOK)
    namespace = {"__name__": worker.LEARNER_MODULE}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    return LocalSubmission(namespace, ingested)


def train_once(seed: int, mode: str, threads: int) -> tuple[float, float, float, int, float, float]:
    """(IoU, accuracy, seconds, steps, MFLOPs per example, CPU seconds or nan) of the reference
    under a hidden seed. The CPU seconds (in-process only) vary less with the machine's load than
    the wall time, though a busy machine inflates them too (TensorFlow's threads spin)."""
    ingested = ingest(SOLUTION_NOTEBOOK)
    with contextlib.ExitStack() as stack:
        stack.enter_context(using_seed(seed))
        if mode == "in-process":
            submission = _local_submission(threads)
        else:
            limits = Limits(threads=threads)
            sandbox = stack.enter_context(
                Sandbox(ingested.source, mode=mode, limits=limits, graded_names=GRADED_PARTS)
            )
            submission = SandboxedSubmission(ingested, sandbox, COURSE)
        mflops = submission.model_audit().flops_per_example / 1e6
        cpu = time.process_time()
        test, report = training.run_training(submission, *training.training_seeds(seed))
        cpu = time.process_time() - cpu if mode == "in-process" else float("nan")
    boxes = np.asarray(report["predictions"]["box_out"])
    accuracy = float(
        (np.asarray(report["predictions"]["class_out"]).argmax(1) == test.class_ids).mean()
    )
    return (
        float(ref.iou(test.boxes, boxes).mean()),
        accuracy,
        float(report["train_seconds"]),
        int(report["steps"]),
        mflops,
        cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="hidden seeds (default: 3 random)")
    parser.add_argument("--threads", type=int, default=Limits().threads)
    parser.add_argument("--no-grading", action="store_true", help="only the training runs")
    parser.add_argument(
        "--sandbox", default="auto", choices=("auto", "bwrap", "none", "in-process")
    )
    args = parser.parse_args()
    seeds = args.seeds or [secrets.randbits(62) for _ in range(3)]

    if not args.no_grading and args.sandbox != "in-process":
        start = time.perf_counter()
        with PeakMemory() as memory:
            job = GradingJob.of_file(
                SOLUTION_NOTEBOOK,
                sandbox_mode=args.sandbox,
                limits=Limits(threads=args.threads),
                seed=seeds[0],
            )
            result = grade(job).result
        total = time.perf_counter() - start
        timings = result.timings
        print(
            f"grading the solution: {result.score:g}/{result.max_score:g}, status {result.status}, "
            f"in {total:.1f} s ({result.isolation}, {args.threads} thread(s))"
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
            f"trusted process + sandbox processes {memory.peak_total / 2**20:.0f} MB"
        )

    steps_total = training.EPOCHS * training.STEPS_PER_EPOCH
    print(
        f"budgeted training ({training.EPOCHS} x {training.STEPS_PER_EPOCH} steps of "
        f"{training.BATCH_SIZE}, {args.threads} thread(s); wall-clock limit {TRAIN_TIMEOUT:.0f} s):"
    )
    runs = []
    for seed in seeds:
        iou, accuracy, seconds, steps, mflops, cpu = train_once(seed, args.sandbox, args.threads)
        runs.append((iou, accuracy, seconds))
        print(
            f"  seed {seed}: IoU {iou:.3f}  accuracy {accuracy:.3f}  {steps} steps in "
            f"{seconds:.1f} s ({steps / seconds:.2f} steps/s, {cpu:.0f} CPU s, load "
            f"{psutil.getloadavg()[0]:.1f}); model {mflops:.1f} MFLOPs/example",
            flush=True,
        )
    worst_iou = min(r[0] for r in runs)
    worst_acc = min(r[1] for r in runs)
    med_sec = statistics.median(r[2] for r in runs)
    print(
        f"  worst seed: IoU {worst_iou:.3f}  accuracy {worst_acc:.3f}; median {med_sec:.1f} s "
        f"= {steps_total / med_sec:.2f} steps/s"
    )
    print(
        f"  check bands: IoU full from {training.IOU_BANDS[0][1]} "
        f"({worst_iou / training.IOU_BANDS[0][1]:.2f}x margin), accuracy full from "
        f"{training.ACCURACY_BANDS[0][1]} ({worst_acc / training.ACCURACY_BANDS[0][1]:.2f}x); "
        f"train limit {TRAIN_TIMEOUT:.0f} s = {TRAIN_TIMEOUT / med_sec:.1f}x the median here; "
        f"cost limit {training.MAX_MFLOPS_PER_EXAMPLE:g} MFLOPs/example"
    )


if __name__ == "__main__":
    main()
