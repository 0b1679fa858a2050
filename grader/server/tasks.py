"""What a grading is, wherever it runs: :func:`grade_one` (the server's only call into the
grading engine), the :class:`Task` a Dask worker receives and :func:`run_task`, which grades it in a
child process under the wall-clock limit, and the executors the dispatcher submits tasks to.

Why by value: a task carries the notebook's bytes and returns the result files' bytes, so a remote
Dask worker (``--scheduler``) needs no disk shared with the server; only the server writes ``DIR``.
Why a child process per grading (``grader.bounded``, as batch grading does): a grading that hangs
or eats memory ends with its process group and the Dask worker lives on. The functions stay
module-level: Dask and pickle send them by reference.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grader.bounded import call_bounded

#: grade(path, out_dir, *, sandbox_mode, hidden_seed, assignment) -> (status, score, max_score); writes
#: results.json and report.html into out_dir. Module-level, so that it is sent by reference.
GradeFn = Callable[..., tuple[str, float, float]]


def grade_one(
    path: Path, out_dir: Path, *, sandbox_mode: str, hidden_seed: int | None, assignment: str = ""
) -> tuple[str, float, float]:
    """Grade one notebook with the engine of ``grader grade``; results.json and report.html go
    into ``out_dir``. The only place the server calls the grading engine (its layout may move)."""
    from grader.grade import grade_notebook, write_outputs

    result = grade_notebook(
        Path(path),
        sandbox_mode=sandbox_mode,
        hidden_seed=hidden_seed,
        assignment=assignment or None,
    )
    result.submission_id = Path(out_dir).name  # write_outputs writes into out_dir.parent/<id>
    write_outputs(result, Path(out_dir).parent)
    return str(result.status), float(result.score), float(result.max_score)


@dataclass(frozen=True)
class Task:
    """One grading, by value: the notebook's bytes and how to grade it."""

    job_id: int
    name: str
    data: bytes
    sandbox_mode: str
    hidden_seed: int | None
    timeout: float
    assignment: str = ""  # the settings' choice: a name or a folder (empty: the only one)


def _grade_here(task: Task, grade: GradeFn) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="objloc-serve-") as tmp:
        path = Path(tmp) / "in" / task.name
        path.parent.mkdir()
        path.write_bytes(task.data)
        out = Path(tmp) / "out" / "result"
        out.mkdir(parents=True)
        try:
            status, score, max_score = grade(
                path,
                out,
                sandbox_mode=task.sandbox_mode,
                hidden_seed=task.hidden_seed,
                assignment=task.assignment,
            )
        except Exception as error:  # a grader bug: this job says so, the queue goes on
            return {"status": "error", "message": f"grader error: {type(error).__name__}: {error}"}
        files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        return {"status": str(status), "score": score, "max_score": max_score, "files": files}


def run_task(task: Task, grade: GradeFn) -> dict[str, Any]:
    """Grade ``task`` in a child process stopped after ``task.timeout`` s (status ``timeout``), and
    when the Dask worker that started it dies (``grader.bounded.call_bounded``): a server stopped
    or killed leaves no grading running behind it (its job is graded again). Never raises for a
    failed grading: its outcome says what happened.
    """
    started = time.monotonic()
    ended = call_bounded(_grade_here, (task, grade), task.timeout, exit_with_parent=True)
    if ended.returncode is None:
        return {
            "status": "timeout",
            "message": f"grading took longer than {task.timeout:g} s and was stopped "
            "(not a verdict: it is graded again)",
        }
    if ended.value is not None:
        return ended.value
    elapsed = time.monotonic() - started
    return {
        "status": "killed",
        "message": f"the grading process died (exit code {ended.returncode}) after {elapsed:.0f} s: "
        "out of memory?",
    }


# --------------------------------------------------------------------------------------------
# Executors: Dask (the server's), or any concurrent.futures-like one (tests)


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class DaskExecutor:
    """A Dask client as an executor: a local cluster of ``jobs`` single-threaded worker processes,
    or an existing scheduler. ``pure=False``: two gradings of the same bytes are two tasks."""

    def __init__(self, scheduler: str | None = None, jobs: int = 1) -> None:
        from distributed import Client, LocalCluster

        for name in list(logging.root.manager.loggerDict):  # Dask logs every connection at INFO
            if name.startswith("distributed"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=15)
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                # no dashboard; its HTTP server still binds, so on a free loopback port rather
                # than 8787, which a second server or another Dask on the machine would hold
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)

    @property
    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, retries=0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
