"""Batch grading throughput: K copies of the cheap example submissions (untouched learner notebooks
and a broken file; with --full also one full solution, ~40 s with training) graded with -j 1, -j 2
and through a Dask LocalCluster of 2 single-threaded workers. Prints submissions/minute, speedups
over -j 1, and CPU-seconds per submission: the grader's own process, and the whole machine (which
includes the sandboxed workers, and anything else running: run it on a quiet machine). Timings
vary +-25% between runs: compare ratios within one run.

    .venv/bin/python benchmarks/bench_batch.py [--copies 12] [--full] [--mode auto|bwrap|none]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import batch  # noqa: E402

STUB = ROOT / "assignments" / "object_localization.ipynb"
SOLUTION = ROOT / "solutions" / "object_localization.ipynb"


def make_submissions(folder: Path, copies: int, full: bool) -> int:
    """copies x (learner notebook) + copies // 3 broken files (+ the solution): how many."""
    folder.mkdir(parents=True)
    for index in range(copies):
        shutil.copy(STUB, folder / f"stub{index:03d}.ipynb")
    for index in range(max(1, copies // 3)):
        (folder / f"broken{index:03d}.ipynb").write_text('{"cells": [')
    if full:
        shutil.copy(SOLUTION, folder / "solution.ipynb")
    return copies + max(1, copies // 3) + int(full)


def _spin(_: int) -> float:
    start, total = time.perf_counter(), 0
    for value in range(15_000_000):
        total += value
    return time.perf_counter() - start


def parallel_capacity() -> float:
    """How many cores are free right now: 2 spinning processes vs 1 (2.0 on an idle 2-core box).

    Other jobs on the machine (a training run) take cores away; read the speedups against this.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pool.map(_spin, [0, 1])  # warm
        t0 = time.perf_counter()
        pool.map(_spin, [0])
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.map(_spin, [0, 1])
        two = time.perf_counter() - t0
    return 2 * one / two


def _machine_cpu() -> float:
    """Busy CPU-seconds of the whole machine (/proc/stat): counts the sandboxed workers too, which
    per-process accounting misses when they are killed before their parent reaps them."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(
    label: str, folder: Path, out: Path, mode: str, *, jobs: int = 1, scheduler: str | None = None
) -> dict:
    items, _ = batch.discover([folder])
    cpu0, t0 = _machine_cpu(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = batch.run_batch(
            items, out, jobs=jobs, scheduler=scheduler, sandbox_mode=mode, force=True, tty=False
        )
    wall = time.perf_counter() - t0
    machine_cpu = _machine_cpu() - cpu0
    entries = batch.read_journal(out / batch.JOURNAL).values()  # read-only: no lock needed
    training = sum(e.execution_time for e in entries if e.id == "solution")
    row = {
        "label": label,
        "n": len(items),
        "wall": wall,
        "per_min": 60.0 * len(items) / wall,
        "job_cpu": summary.cpu_seconds / len(items),
        "machine_cpu": machine_cpu / len(items),
        "solution_s": training,
        "statuses": dict(summary.statuses),
    }
    print(
        f"{label:<22} {row['n']:>4} subs  {wall:7.1f} s  {row['per_min']:7.1f} subs/min  "
        f"CPU/sub: grader {row['job_cpu']:.2f} s, machine {row['machine_cpu']:.2f} s  "
        f"{row['statuses']}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=12, help="learner notebooks (default 12)")
    parser.add_argument("--full", action="store_true", help="add one full solution (training)")
    parser.add_argument("--mode", default="auto", choices=["auto", "bwrap", "none"])
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        count = make_submissions(root / "subs", opts.copies, opts.full)
        warm = root / "warm"
        warm.mkdir()
        shutil.copy(STUB, warm / "warm.ipynb")
        with contextlib.redirect_stdout(io.StringIO()):  # page cache, bwrap probe
            batch.run_batch(batch.discover([warm])[0], root / "warm-out", jobs=1, tty=False)
        print(
            f"{count} submissions, sandbox {opts.mode}, {os.cpu_count()} cores; "
            f"load average {os.getloadavg()[0]:.1f}; free parallel capacity now "
            f"{parallel_capacity():.2f} (2.00 = two idle cores)"
        )
        one = run("local -j 1", root / "subs", root / "j1", opts.mode, jobs=1)
        two = run("local -j 2", root / "subs", root / "j2", opts.mode, jobs=2)
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            dask = run(
                "Dask LocalCluster x2",
                root / "subs",
                root / "dask",
                opts.mode,
                scheduler=cluster.scheduler_address,
            )
    print(f"speedup -j 2 / -j 1:       {one['wall'] / two['wall']:.2f}x (goal >= 1.6x)")
    print(f"free parallel capacity after the runs: {parallel_capacity():.2f}")
    print(f"speedup Dask x2 / -j 1:    {one['wall'] / dask['wall']:.2f}x")
    if opts.full:
        print(
            "solution grading time (s): "
            + ", ".join(f"{r['label']} {r['solution_s']:.0f}" for r in (one, two, dask))
        )


if __name__ == "__main__":
    main()
