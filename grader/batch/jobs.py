"""The grading job: everything one submission's grading needs, by value (:class:`Job`), and
the functions that grade it: :func:`grade_job` (in a local worker process) and
:func:`grade_job_bounded` (a child process of a Dask worker, under the wall-clock limit). Why the
job takes bytes and returns data: the same :func:`grade_job` runs in a local worker process or on
a remote Dask worker that shares no file system with the client; only the client writes into
``DIR``. The functions stay module-level: Dask and ``multiprocessing`` send them by reference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import resource
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.batch.common import _first_line
from grader.batch.discovery import safe_id
from grader.bounded import call_bounded
from grader.status import Status

# --------------------------------------------------------------------------------------------
# The grading job: runs in a local worker process or on a Dask worker


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, by value: no path is shared with the client."""

    id: str
    name: str
    data: bytes
    content_hash: str
    sandbox_mode: str
    memory_mb: int
    slots: int | None = None  # concurrent sandboxes on the machine; None: ask Dask
    rejected: str = ""
    hidden_seed: int | None = None  # the client's course secret, by value (see grader.secret)
    assignment: str | None = None  # its name, or its folder (grader.assignment.resolve)


def checks_digest(assignment: str | None = None) -> str:
    """A digest of the assignment's checks, recorded per row: which checks graded it (resume keys
    on the grader version only, so editing a check needs a version bump or ``--force``)."""
    from grader.assignment import resolve

    digest = hashlib.sha256()
    root = resolve(assignment).checks_dir
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _host_slots(slots: int | None) -> int:
    """How many sandboxes may run at once on this machine: the client's -j locally; on Dask, all
    Dask worker threads on this host (``--nworkers 2 --nthreads 1`` -> 2)."""
    if slots is not None:
        return max(1, slots)
    found = 1
    with contextlib.suppress(Exception):  # not on a Dask worker, or the scheduler is unreachable
        from distributed import get_client, get_worker

        worker = get_worker()
        found = max(1, worker.state.nthreads)
        host = worker.address.rsplit(":", 1)[0]
        workers = get_client().scheduler_info(n_workers=-1)["workers"]
        here = [w["nthreads"] for a, w in workers.items() if a.rsplit(":", 1)[0] == host]
        found = max(found, sum(here))
    return found


def job_limits(memory_mb: int, slots: int) -> Any:
    """Sandbox limits for one of ``slots`` concurrent sandboxes on a machine.

    TensorFlow gets the same thread count whatever ``slots`` is (``Limits.threads``): reductions
    split over another number of threads sum in another order, and the same seed then trained to
    a box metric of 0.932 with 2 threads but 0.927 with 1 (measured). A score must not depend on ``-j``, so
    parallel gradings share the cores instead. Each sandbox has its own uid and cgroup
    (``grader.sandbox.tenancy``), so the process limit is per submission and does not grow with slots.
    The wire takes the wire module's message cap (8x the largest reply a probe needs): each
    concurrent grading's trusted process holds at most one such message from its worker."""
    from grader import wire
    from grader.sandbox import Limits

    del slots  # kept in the signature: callers size other things (Dask) by it
    return Limits(address_space_mb=memory_mb, array_mb=wire.MAX_MESSAGE_BYTES >> 20)


# pytest and the report's matplotlib are not thread-safe: one process grades one submission at a
# time (a local slot runs one job; on Dask each job runs in a child process, grade_job_bounded)
_GRADING_LOCK = threading.Lock()


def _status(document: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of a graded submission: graded, or why it could not be graded properly.

    ``extra_data.status`` and ``status_message``, which every results.json carries
    (``grader.results.scoring.to_gradescope`` writes them). A document without a status was written by an
    older grader: it is the grader's ``error``, which a rerun grades again.
    """
    extra = document.get("extra_data", {})
    if extra.get("status"):
        return str(extra["status"]), _first_line(str(extra.get("status_message") or ""))
    return "error", "results.json without a status (written by an older grader): regrade"


def grade_job(job: Job) -> dict[str, Any]:
    """Grade one submission from its bytes; return results.json, report HTML and a status. Never
    raises: a grader bug becomes status "error" for this submission only."""
    start_wall, start_cpu = time.perf_counter(), _cpu_seconds()
    outcome: dict[str, Any] = {
        "host": socket.gethostname(),
        "grader_version": __version__,
        "checks_digest": checks_digest(job.assignment),
    }
    try:
        from grader.results import render_report, to_gradescope

        limits = job_limits(job.memory_mb, _host_slots(job.slots))
        if job.rejected:
            result = _rejected_result(job.id, job.rejected, job.assignment)
        else:
            from grader.grade import grade_notebook
            from grader.secret import using_seed

            seeded = (
                using_seed(job.hidden_seed)
                if job.hidden_seed is not None
                else contextlib.nullcontext()
            )
            with (
                _GRADING_LOCK,
                seeded,
                tempfile.TemporaryDirectory(prefix="objloc-batch-") as tmp,
            ):
                path = Path(tmp) / (safe_id(job.name) if job.name else "submission.ipynb")
                path.write_bytes(job.data)
                result = grade_notebook(
                    path,
                    sandbox_mode=job.sandbox_mode,
                    limits=limits,
                    hidden_seed=job.hidden_seed,
                    assignment=job.assignment,
                    submission_file=job.name or None,
                )
        result.submission_id = job.id
        result.extra["submission_sha256"] = job.content_hash
        result.extra["threads"] = limits.threads
        document = to_gradescope(result)
        status, error = _status(document)
        if job.rejected:
            status, error = Status.REJECTED, job.rejected
        outcome |= {
            "document": document,
            "report_html": render_report(result),
            "status": status,
            "error": error,
        }
    except Exception as exc:  # a grader bug: this row says so, the batch goes on
        outcome |= {
            "status": "error",
            "error": f"grader error: {type(exc).__name__}: {exc}"[:500],
            "traceback": traceback.format_exc()[-4000:],
        }
    outcome["wall_seconds"] = round(time.perf_counter() - start_wall, 2)
    outcome["cpu_seconds"] = round(_cpu_seconds() - start_cpu, 2)
    return outcome


def _rejected_result(ident: str, message: str, assignment: str | None = None) -> Any:
    """A verdict for a file that is not even handed to the notebook reader (unsafe zip member)."""
    from grader import grade
    from grader.assignment import resolve
    from grader.checking import Artifacts
    from grader.results import GradingResult, Status, shown_isolation

    chosen = resolve(assignment)
    checks = grade.run_checks(grade.UnreadableSubmission(message, chosen))
    return GradingResult(
        submission_id=ident,
        checks=checks,
        execution_time=0.0,
        output=f"Your file could not be graded: {message}",
        extra={"grader_version": __version__, "isolation": shown_isolation(None)},
        artifacts=Artifacts(problems=[message]),
        status=Status.REJECTED,  # results.json's extra_data.status comes from these two fields
        status_message=message,
        title=chosen.title,
        credit=chosen.credit,
    )


# --------------------------------------------------------------------------------------------
# In a process of its own, under the wall-clock limit (what a Dask worker runs)


def _cut_short(timeout: float | None, code: int | None, started: float) -> dict[str, Any]:
    """The outcome of a grading process stopped after ``timeout`` s, or (None) dead on its own."""
    if timeout is not None:
        outcome = {
            "status": Status.TIMEOUT,
            "error": f"grading took longer than {timeout:g} s and was stopped "
            "(not a verdict: a rerun grades it again)",
        }
    else:
        outcome = {
            "status": Status.KILLED,
            "error": f"the grading process died (exit code {code}): out of memory?",
        }
    elapsed = round(time.monotonic() - started, 2)
    return outcome | {"host": socket.gethostname(), "wall_seconds": elapsed}


def grade_job_bounded(job: Job, timeout: float) -> dict[str, Any]:
    """:func:`grade_job` in a child process, stopped after ``timeout`` s with status timeout:
    what a Dask worker runs, so that the wall-clock limit holds there too
    (``grader.bounded.call_bounded``)."""
    job = dataclasses.replace(job, slots=_host_slots(job.slots))  # the Dask worker knows its host
    started = time.monotonic()
    ended = call_bounded(grade_job, (job,), timeout)
    if ended.returncode is None:
        return _cut_short(timeout, None, started)
    if ended.value is not None:
        return ended.value
    return _cut_short(None, ended.returncode, started)


Outcome = dict[str, Any]
OnDone = Callable[[Job, Outcome], None]
