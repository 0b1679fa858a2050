"""Where jobs run on one machine: :class:`LocalPool`, N long-lived worker processes (spawned:
nothing of the client's threads or imports is inherited), one job each at a time. A module of its
own because its failure handling is the point: a worker that dies (the OOM killer) or overruns
the wall-clock limit costs only its own job, which gets "killed" or "timeout", and is replaced.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from grader.batch.common import DEFAULT_TIMEOUT, OnDone
from grader.bounded import run_job
from grader.job import GradingJob, GradingOutcome, cut_short

# --------------------------------------------------------------------------------------------
# Runners: where jobs execute


def _slot_main(conn: Connection) -> None:  # pragma: no cover - runs in a worker process
    """A local worker: one job at a time. Ctrl-C is the client's business (it kills us)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(run_job(job))


@dataclass
class _Slot:
    process: Any = None
    conn: Connection | None = None
    job: GradingJob | None = None
    started: float = 0.0


class LocalPool:
    """N long-lived worker processes, one job each at a time.

    Why not ProcessPoolExecutor: when one worker dies (the kernel's OOM killer) or hangs, the
    executor breaks every job in flight. Here the dead or overdue worker's own job gets the verdict
    "killed" or "timeout", the worker is replaced, and the others carry on.
    """

    def __init__(self, workers: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot() for _ in range(max(1, workers))]
        self.timeout = timeout

    def _start(self, slot: _Slot) -> None:
        parent, child = self.context.Pipe()
        slot.process = self.context.Process(
            target=_slot_main, args=(child,), name="grader-batch-worker", daemon=True
        )
        slot.process.start()
        child.close()
        slot.conn = parent

    def _stop(self, slot: _Slot) -> None:
        if slot.process is not None and slot.process.is_alive():
            slot.process.kill()
        if slot.process is not None:
            slot.process.join(5)
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.job = None, None, None

    def _send(self, slot: _Slot, job: GradingJob) -> None:
        for _ in range(2):
            if slot.process is None or not slot.process.is_alive():
                self._stop(slot)
                self._start(slot)
            try:
                assert slot.conn is not None
                slot.conn.send(job)
                slot.job, slot.started = job, time.monotonic()
                return
            except (BrokenPipeError, OSError):
                self._stop(slot)
        raise RuntimeError("cannot start a local grading worker")

    def _collect(self, slot: _Slot, ready: list[Any], on_done: OnDone) -> None:
        assert slot.job is not None and slot.conn is not None
        job = slot.job
        outcome: GradingOutcome | None = None
        if slot.conn in ready or slot.conn.poll():
            try:
                outcome = slot.conn.recv()
            except (EOFError, OSError):
                outcome = None
            if outcome is not None:
                slot.job = None
                on_done(job, outcome)
                return
        alive = slot.process is not None and slot.process.is_alive()
        if alive and time.monotonic() - slot.started < self.timeout:
            return
        code = None if alive else slot.process.exitcode
        slot_started = slot.started
        self._stop(slot)
        on_done(job, cut_short(self.timeout if alive else None, code, slot_started))

    def run(self, jobs: Iterator[GradingJob], on_done: OnDone) -> None:
        try:
            while True:
                for slot in self.slots:
                    if slot.job is None and (job := next(jobs, None)) is not None:
                        self._send(slot, job)
                busy = [slot for slot in self.slots if slot.job is not None]
                if not busy:
                    break
                handles = [s.conn for s in busy] + [s.process.sentinel for s in busy]
                ready = wait(handles, timeout=1.0)
                for slot in busy:
                    self._collect(slot, ready, on_done)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; an interrupted job's worker is killed (its sandbox dies with it)."""
        for slot in self.slots:
            if slot.job is None and slot.conn is not None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        for slot in self.slots:
            if slot.process is not None and slot.job is None:
                slot.process.join(5)
            self._stop(slot)
