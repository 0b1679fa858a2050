"""Warm grading processes for the audit, with a wall-clock limit and a memory limit per mutant.

Each process (``grader.audit.grading``) imports TensorFlow once and grades task after task. A
task (one program, a plan of (seed, parts) gradings) must report each seed before its limit;
a process that does not (a mutant that loops forever, or blocks in native code) is killed and
replaced, and the task ends as ``timeout``. A process that dies (a mutant that exhausts the
address-space limit inside native code, or exits) has its task graded once more in a fresh
process; a second death ends it as ``crashed``, with the end of the process's log. Processes are started with ``subprocess`` (not ``multiprocessing``, whose start method
would import the command's ``__main__`` again) and speak over two pipes of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import grader
from grader import environment
from grader.mutation.mutants import Mutant

#: How long a process may take to start (import TensorFlow, read and ingest the solution): a
#: loaded 2-core machine took ~25 s.
START_SECONDS = 300.0
#: The address-space limit of a grading process (RLIMIT_AS): TensorFlow maps ~1.5 GB on import,
#: a short fit ~3 GB; the reference's recordings kept per process add a few hundred MB.
MEMORY_MB = 8192
#: A mutant's limit per seed is at least this many times the reference's on the same process,
#: measured just before (on a busy machine both are slow).
SLOWER = 10.0
#: TensorFlow/BLAS threads per process: the sandbox's (``grader.sandbox.Limits.threads``), so
#: that numbers come out as in grading.
THREADS = 2


class AuditFault(RuntimeError):
    """The audit itself cannot go on (a grading process does not start); the message says why."""


@dataclass
class Task:
    """One program graded on a plan of (hidden seed, parts whose checks run)."""

    id: int
    mutant: Mutant | None  # None: the reference
    plan: list[tuple[int, list[str]]]
    seconds_per_seed: float  # at least; see SLOWER
    reference_seconds: float = START_SECONDS  # to grade the reference first, when needed
    first_kill: bool = False  # a mutant's grading ends at its first killing check


@dataclass
class Outcome:
    """How a task ended, with the results of the seeds it finished."""

    seeds: list[dict[str, Any]] = field(default_factory=list)
    ended: str = "done"  # done | timeout | crashed
    note: str = ""
    again: list[dict[str, Any]] = field(default_factory=list)  # the same seeds graded once more


def _environment() -> dict[str, str]:
    root = str(Path(grader.__file__).resolve().parents[1])  # this very grader first
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    n = str(THREADS)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PYTHONHASHSEED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        environment.THREADS.name: n,
        "MPLBACKEND": "Agg",
        "MALLOC_ARENA_MAX": "2",
    }


class _Process:
    """One grading process and the task it is on."""

    def __init__(self, folder: Path, memory_mb: int) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.audit.grading", str(down_r), str(up_w), str(folder),
             str(memory_mb)],
            pass_fds=(down_r, up_w),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=_environment(),
        )  # fmt: skip
        os.close(down_r)
        os.close(up_w)
        self.down = Connection(down_w, readable=False)
        self.up = Connection(up_r, writable=False)
        self.ready = False
        self.task: Task | None = None
        self.deadline = time.monotonic() + START_SECONDS
        self.limit = 0.0

    def give(self, task: Task) -> None:
        self.task = task
        # until the first "start": the process may be grading the reference for this task
        self.deadline = time.monotonic() + task.reference_seconds
        self.limit = task.seconds_per_seed
        self.down.send(
            {"id": task.id, "mutant": task.mutant, "plan": task.plan, "first_kill": task.first_kill}
        )

    def log_tail(self, chars: int = 600) -> str:
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        return " ".join(text[-chars:].split())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for conn in (self.down, self.up):
            conn.close()
        self.log.close()


class Pool:
    """``jobs`` warm grading processes of the assignment in ``folder``."""

    def __init__(self, folder: Path, jobs: int, memory_mb: int = MEMORY_MB) -> None:
        self.folder, self.memory_mb = folder, memory_mb
        self.processes = [_Process(folder, memory_mb) for _ in range(max(1, jobs))]

    def run(
        self, tasks: list[Task], on_seed: Callable[[Task, dict[str, Any]], None]
    ) -> dict[int, Outcome]:
        """Grade every task; ``on_seed`` hears of each finished seed (progress)."""
        pending = self._pending = deque(tasks)
        outcomes = {task.id: Outcome() for task in tasks}
        self._retried: set[int] = set()
        while pending or any(p.task for p in self.processes):
            for process in self.processes:
                if process.ready and process.task is None and pending:
                    process.give(pending.popleft())
            soonest = min(p.deadline for p in self.processes)
            left = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
            for conn in wait([p.up for p in self.processes], timeout=left):
                process = next(p for p in self.processes if p.up is conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._replace(process, outcomes, "crashed", "the grading process died: ")
                    continue
                self._take(process, message, outcomes, on_seed)
            for process in self.processes:
                if time.monotonic() > process.deadline:
                    self._replace(process, outcomes, "timeout", "")
        return outcomes

    def _take(self, process: _Process, message: tuple, outcomes: dict, on_seed: Callable) -> None:
        kind = message[0]
        if kind == "ready":
            process.ready = True
            process.deadline = float("inf")
        elif kind == "start" and process.task is not None:
            # the reference's time here and now (the machine may be busy): the limit scales
            limit = max(process.task.seconds_per_seed, SLOWER * message[2])
            process.deadline = time.monotonic() + limit
            process.limit = limit
        elif kind == "seed" and process.task is not None:
            outcomes[process.task.id].seeds.append(message[2])
            process.deadline = time.monotonic() + process.task.reference_seconds
            on_seed(process.task, message[2])
        elif kind == "done":
            process.task = None
            process.deadline = float("inf")

    def _replace(self, process: _Process, outcomes: dict, ended: str, why: str) -> None:
        task = process.task
        if task is None and not process.ready:
            tail = process.log_tail()
            process.stop()
            raise AuditFault(f"a grading process did not start: {tail or 'no output'}")
        if task is not None and ended == "crashed" and task.id not in self._retried:
            # once more in a fresh process: a process that grew over its memory limit across
            # many tasks is not this mutant's doing; a second death is
            self._retried.add(task.id)
            outcomes[task.id] = Outcome()
            self._pending.appendleft(task)
        elif task is not None:
            outcome = outcomes[task.id]
            outcome.ended = ended
            outcome.note = (
                f"no result within {process.limit:.0f} s (seed {len(outcome.seeds) + 1} "
                f"of {len(task.plan)}): the process was killed"
                if ended == "timeout"
                else why + (process.log_tail() or f"exit status {process.proc.poll()}")
            )
        process.stop()
        self.processes[self.processes.index(process)] = _Process(self.folder, self.memory_mb)

    def close(self) -> None:
        for process in self.processes:
            process.stop()
