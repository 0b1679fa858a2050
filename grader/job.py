"""The grading job: one submission's grading by value (:class:`GradingJob`) and how it ended
(:class:`GradingOutcome`), wherever it runs.

Why by value: the command line, the batch's local pool, a Dask worker and the course server's
queue all submit the same job (the assignment resolved once, the notebook's bytes, their digest
taken once, the seed, the limits, the sandbox mode) and get the same outcome back (the status, the
typed results record, results.json and report.html as bytes), so a remote worker needs no disk
shared with whoever writes the results, and only one function grades (``grader.grade.grade``).

A grading cut short (``grader.bounded`` runs jobs, here or in a child process under the
wall-clock limit) says ``timeout`` or ``killed`` in the same words everywhere (:func:`cut_short`);
a grader that failed says ``error`` (:func:`grader_failed`). This module stays light (no sandbox,
no checking, no TensorFlow), so that a batch client or the server builds jobs and reads outcomes
without importing the grading stages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.assignment import MANIFEST, Assignment, resolve
from grader.files import write_atomically
from grader.results.record import (
    REPORT_FILE,
    RESULTS_FILE,
    GradingResult,
    results_json,
)
from grader.status import Status

if TYPE_CHECKING:
    from grader.sandbox import Limits

#: A grading function: the engine (``grader.grade.grade``) or, in tests, a stand-in.
GradeFn = Callable[["GradingJob"], "GradingOutcome"]


def submission_id(file_name: str) -> str:
    """A stable, filesystem-safe id from a file name."""
    stem = file_name[: -len(".ipynb")] if file_name.endswith(".ipynb") else file_name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "submission"


@dataclass(frozen=True)
class GradingJob:
    """Everything one grading needs, by value: no path is shared with whoever submitted it."""

    assignment: Assignment  # resolved once, by whoever submits the job
    notebook: bytes = field(repr=False)  # the submitted file's bytes
    seed: int = field(repr=False)  # the course's hidden-data seed, by value (``grader.secret``)
    file_name: str = "submission.ipynb"  # as the learner named it (the report's header)
    learner: str | None = None  # who submitted, when known (the report's header)
    submission_id: str = ""  # where its results are filed (default: from the file name)
    limits: Limits | None = None  # the sandbox's (None: ``grader.sandbox.Limits()``)
    sandbox_mode: str = "auto"
    rejected: str = ""  # not handed to the notebook reader: the reason is its verdict
    sha256: str = ""  # of ``notebook``: taken here when not given (once per grading)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.notebook).hexdigest())
        if not self.submission_id:
            object.__setattr__(self, "submission_id", submission_id(self.file_name))

    @classmethod
    def of_file(
        cls,
        path: Path | str,
        *,
        assignment: Assignment | str | None = None,
        seed: int | None = None,
        learner: str | None = None,
        limits: Limits | None = None,
        sandbox_mode: str = "auto",
    ) -> GradingJob:
        """A job for a notebook file (scripts and tests): its bytes and name; the assignment by
        name or folder (default: the only one installed), the course's seed unless given."""
        from grader import secret

        path = Path(path)
        return cls(
            assignment=resolve(assignment),
            notebook=path.read_bytes(),
            seed=secret.hidden_seed() if seed is None else int(seed),
            file_name=path.name,
            learner=learner,
            limits=limits,
            sandbox_mode=sandbox_mode,
        )

    def located(self) -> GradingJob:
        """This job with its assignment as this machine has it: its own when its folder is here,
        else the one installed under its name (a Dask worker whose install lives elsewhere)."""
        if (self.assignment.folder / MANIFEST).is_file():
            return self
        return dataclasses.replace(self, assignment=resolve(self.assignment.name))


@dataclass(frozen=True)
class GradingOutcome:
    """How one grading ended: its status, its results record with the two files' bytes (none when
    the grading was cut short or the grader failed), and where and how long it ran."""

    status: Status
    message: str = ""  # one line: why the status is not "graded"
    result: GradingResult | None = None  # the typed results.json
    results_json: bytes = field(default=b"", repr=False)
    report_html: bytes = field(default=b"", repr=False)
    checks_digest: str = ""  # which checks graded it (:func:`checks_digest`)
    host: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None

    @classmethod
    def of(cls, result: GradingResult, report_html: str | bytes) -> GradingOutcome:
        """The outcome of a grading that produced a record (whatever its status)."""
        report = report_html.encode("utf-8") if isinstance(report_html, str) else report_html
        return cls(
            status=result.status,
            message=first_line(result.status_message),
            result=result,
            results_json=results_json(result),
            report_html=report,
        )

    @property
    def score(self) -> float | None:
        """The score, when the grading is a verdict."""
        if self.result is None or not self.status.is_verdict:
            return None
        return self.result.score

    @property
    def max_score(self) -> float | None:
        return None if self.result is None else self.result.max_score

    def write(self, folder: Path) -> None:
        """results.json and report.html into ``folder``, each atomically (nothing without a
        record)."""
        if self.result is not None:
            write_atomically(folder / RESULTS_FILE, self.results_json)
            write_atomically(folder / REPORT_FILE, self.report_html)


def first_line(text: str, limit: int = 300) -> str:
    """The first non-blank line of ``text``, at most ``limit`` characters."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def grader_failed(error: BaseException) -> GradingOutcome:
    """The grader failed on this submission (a bug, a worker gone): ``error``, retried; a Dask
    worker that died while grading it: ``killed``."""
    if type(error).__name__ == "KilledWorker":
        return GradingOutcome(Status.KILLED, f"the Dask worker grading it died: {error}"[:500])
    return GradingOutcome(Status.ERROR, f"grader error: {type(error).__name__}: {error}"[:500])


def cut_short(timeout: float | None, exit_code: int | None, started: float) -> GradingOutcome:
    """A grading process stopped at ``timeout`` s (``timeout``), or (timeout None) dead on its
    own (``killed``). ``started``: its ``time.monotonic()`` at the start."""
    elapsed = round(time.monotonic() - started, 2)
    if timeout is not None:
        message = (
            f"grading took longer than {timeout:g} s and was stopped "
            "(not a verdict: it is graded again)"
        )
        outcome = GradingOutcome(Status.TIMEOUT, message)
    else:
        message = f"the grading process died (exit code {exit_code}) after {elapsed:.0f} s: "
        outcome = GradingOutcome(Status.KILLED, message + "out of memory?")
    return dataclasses.replace(outcome, host=socket.gethostname(), wall_seconds=elapsed)


def checks_digest(assignment: Assignment) -> str:
    """A digest of the assignment's checks, recorded per grading: which checks graded it (a
    batch resumes on the grader's version only, so editing a check needs a version bump)."""
    digest = hashlib.sha256()
    root = assignment.checks_dir
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def grading_limits(memory_mb: int) -> Limits:
    """Sandbox limits of a grading whose worker may map ``memory_mb`` MB (the batch's
    ``--memory-mb``; the server's is the batch's default): the same for every front end.

    TensorFlow gets the same thread count whatever the concurrency (``Limits.threads``):
    reductions split over another number of threads sum in another order, and the same seed then
    trained to a box metric of 0.932 with 2 threads but 0.927 with 1 (measured). A score must not
    depend on ``-j``, so parallel gradings share the cores instead. Each sandbox has its own uid
    and cgroup (``grader.sandbox.tenancy``), so the process limit is per submission. The wire
    takes the wire module's message cap (8x the largest reply a probe needs): each concurrent
    grading's trusted process holds at most one such message from its worker."""
    from grader import wire
    from grader.sandbox import Limits

    return Limits(address_space_mb=memory_mb, array_mb=wire.MAX_MESSAGE_BYTES >> 20)
