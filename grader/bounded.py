"""Running a grading job: :func:`run_job` here (a batch's local worker), :func:`grade_bounded` in a
child process of its own under a wall-clock limit (a Dask worker, for the batch and for the
course server alike), both over the one grading function, ``grader.grade.grade``.

Why a child process (:func:`call_bounded`): a grading that hangs or eats memory ends with its
whole process group (the sandboxes it started included), at the limit or when the process that
started it dies, and the worker lives on; TensorFlow's memory is given back after each grading.
A plain subprocess, because Dask's worker processes are daemons, which multiprocessing forbids to
have children. The function and its arguments go by pickle (a file our own process writes), so
they must be module-level; so must a grading function a test passes instead of the engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.files import write_atomically
from grader.job import GradeFn, GradingJob, GradingOutcome, checks_digest, cut_short, grader_failed


@dataclass(frozen=True)
class Ended:
    """How the child ended: its return value (None when it produced none) and its exit code
    (None: stopped at the wall-clock limit)."""

    value: Any
    returncode: int | None


def call_bounded(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: float,
    *,
    exit_with_parent: bool = False,
) -> Ended:
    """``function(*args)`` in a child process (a session of its own), killed with its process
    group after ``timeout`` s, or when this call is cancelled. ``exit_with_parent``: the child also
    ends when the process that started it dies (a server killed leaves no grading behind)."""
    with tempfile.TemporaryDirectory(prefix="grader-bounded-") as tmp:
        call_file, result_file = Path(tmp) / "call.pickle", Path(tmp) / "result.pickle"
        call_file.write_bytes(pickle.dumps((function, args, exit_with_parent)))
        code = "import sys; from grader.bounded import _child; _child(*sys.argv[1:])"
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(call_file), str(result_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the sandboxes it started go with it
        )
        try:
            returncode: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:  # also when the call is cancelled: nothing of the child outlives it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        value = None
        if returncode == 0 and result_file.is_file():
            value = pickle.loads(result_file.read_bytes())
        return Ended(value, returncode)


def _child(call_file: str, result_file: str) -> None:  # pragma: no cover - a child process
    """Run by :func:`call_bounded` in a process of its own."""
    function, args, exit_with_parent = pickle.loads(Path(call_file).read_bytes())  # our own file
    if exit_with_parent:
        _exit_with_parent()
    write_atomically(Path(result_file), pickle.dumps(function(*args)))


def _exit_with_parent() -> None:  # pragma: no cover - a child process
    """End this process group when the process that started it dies."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# ------------------------------------------------------------------------------------------
# A grading job, here or in a child process


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _engine(job: GradingJob) -> GradingOutcome:
    from grader.grade import grade  # here: only the process that grades imports the stages

    return grade(job)


def run_job(job: GradingJob, grade: GradeFn | None = None) -> GradingOutcome:
    """``grade(job)`` (default: the engine) in this process, timed; never raises: a grader bug
    is this submission's ``error``. What a local pool's worker and a child process run."""
    start_wall, start_cpu = time.perf_counter(), _cpu_seconds()
    digest = ""
    try:
        job = job.located()
        digest = checks_digest(job.assignment)
        outcome = (grade or _engine)(job)
    except Exception as error:  # a grader bug: this submission says so, the others go on
        outcome = grader_failed(error)
    return dataclasses.replace(
        outcome,
        checks_digest=outcome.checks_digest or digest,
        host=socket.gethostname(),
        wall_seconds=round(time.perf_counter() - start_wall, 2),
        cpu_seconds=round(_cpu_seconds() - start_cpu, 2),
    )


def grade_bounded(job: GradingJob, timeout: float, grade: GradeFn | None = None) -> GradingOutcome:
    """:func:`run_job` in a child process of its own, stopped after ``timeout`` s (``timeout``)
    or when this process dies (:func:`call_bounded`): what a Dask worker runs, for the batch and
    for the server's queue."""
    started = time.monotonic()
    ended = call_bounded(run_job, (job, grade), timeout, exit_with_parent=True)
    if ended.returncode is None:
        return cut_short(timeout, None, started)
    if isinstance(ended.value, GradingOutcome):
        return ended.value
    return cut_short(None, ended.returncode, started)
