"""Grade one submission of an assignment, in memory: a :class:`~grader.job.GradingJob` -> ingest
(the notebook's bytes) -> sandbox -> its checks (pytest, trusted process) -> the results record ->
results.json + report.html as bytes, in a :class:`~grader.job.GradingOutcome`.

The job carries the assignment, resolved once by whoever submitted it, and this module hands each
stage what that stage needs: the ingestion rules, the graded names for the sandbox, the
assignment itself for the checks, its pictures hook and title for the report. It reads no file
of the submission and writes none: the caller files the outcome's bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from grader import __version__, secret, wire
from grader.assignment import Assignment
from grader.checking import (
    Artifacts,
    CheckResult,
    HabitsFound,
    LearnerError,
    NotAttempted,
    OutcomeKind,
    ProbeFailure,
    Submission,
    probe_timeout,
    run_checks,
)
from grader.ingest import IngestedNotebook, NotebookError, habit_rows, habits_text, ingest_bytes
from grader.job import GradingJob, GradingOutcome
from grader.results.locations import CellNames, GradedCell, locate
from grader.results.pictures import report_pictures
from grader.results.record import Fingerprint, GradingResult, shown_isolation
from grader.results.report import ReportMaterial
from grader.results.scoring import scored
from grader.sandbox import Limits, ProbeError, Sandbox, refuse_shown
from grader.status import Status
from grader.wire import FailureKind

# Probe failures that decide the grading's status (first match wins, in this order of precedence).
# The grader's own failures (set-up, the worker's start and own steps, a reply that cannot be read,
# a request it cannot send) are `error`: retried, never a score. A wall-clock limit hit while
# loading or training is the machine's, not the learner's: `timeout`. Other probes' limits are
# hundreds of times what their work needs; hitting one is the learner's verdict (an endless
# loop), reported by the check itself.
_PRECEDENCE = (Status.ERROR, Status.TIMEOUT, Status.LOAD_ERROR, Status.CRASHED)


def _status_of_failure(op: str, kind: FailureKind) -> Status | None:
    if kind in (FailureKind.GRADER_ERROR, FailureKind.PROTOCOL):
        return Status.ERROR
    if kind == FailureKind.TIMEOUT and op in ("load", "train"):
        return Status.TIMEOUT
    if kind == FailureKind.LOAD_ERROR:
        return Status.LOAD_ERROR
    if kind == FailureKind.CRASHED:
        return Status.CRASHED
    return None


class SandboxedSubmission(Submission):
    """Grading: probes go to the sandboxed worker (``grader.sandbox.Sandbox``)."""

    def __init__(self, ingested: IngestedNotebook, sandbox: Any, assignment: Assignment) -> None:
        super().__init__(ingested, assignment)
        self.sandbox = sandbox
        self.trouble: dict[Status, str] = {}  # status -> the first failure that implies it

    def status(self) -> tuple[Status, str]:
        """The grading's status from the probe failures seen (``graded`` when none mattered)."""
        for status in _PRECEDENCE:
            if status in self.trouble:
                return status, self.trouble[status]
        return Status.GRADED, ""

    def _failed(
        self, op: str, kind: FailureKind, message: str, traceback: str = ""
    ) -> ProbeFailure:
        status = _status_of_failure(op, kind)
        if status is not None:
            self.trouble.setdefault(status, f"{op}: {message}".splitlines()[0][:300])
        return ProbeFailure(kind, message, traceback)

    def _request(self, op, args, arrays, on_message=None):
        try:
            if op == "load":
                reply = self.sandbox.start()
            else:
                reply = self.sandbox.request(
                    op, args, arrays, timeout=probe_timeout(op), on_message=on_message
                )
        except ProbeError as error:
            raise self._failed(op, error.kind, error.message, error.traceback) from None
        except wire.WireError as error:
            raise self._failed(op, FailureKind.PROTOCOL, str(error)) from None
        try:
            return reply.value
        except wire.WireError as error:
            raise self._failed(op, FailureKind.PROTOCOL, str(error)) from None


class UnreadableSubmission(Submission):
    """A file that is not a usable notebook: every check fails with the same clear message."""

    def __init__(self, message: str, assignment: Assignment | None = None) -> None:
        super().__init__(None, assignment)
        self.message = message

    def require(self, part: str) -> None:
        raise NotAttempted(self.message)

    def _request(self, op, args, arrays, on_message=None):
        raise NotAttempted(self.message)


def _within_budget(limits: Limits) -> Limits:
    """Limits whose CPU-time rlimit cannot end the training before its wall-clock limit does.

    Why: RLIMIT_CPU kills the worker (status ``crashed``, a verdict), while the train probe's
    wall-clock limit ends the grading with ``timeout`` (retried). Measured here, the reference's
    1000 steps took 260 CPU seconds at 2 threads on a quiet machine and ~340 under load
    (TensorFlow's threads spin when the CPU is busy), so a fixed 600 s would cut a model near the
    cost limit short. The worker may
    use (threads + 1) CPUs (compute threads plus the input pipeline) for the whole train limit.
    """
    needed = int((limits.threads + 1) * probe_timeout("train")) + 300  # + the other probes
    if limits.cpu_seconds >= needed:
        return limits
    return dataclasses.replace(limits, cpu_seconds=needed)


def seed_fingerprint(seed: int) -> str:
    """A short, non-reversible tag of the hidden seed: tells whether two gradings used the same
    hidden data without revealing it."""
    return hashlib.sha256(f"objloc-hidden-seed:{int(seed)}".encode()).hexdigest()[:8]


def _not_a_verdict(checks: list[CheckResult], status: Status, why: str) -> tuple[list, str]:
    """A grading the machine or the grader cut short: no points, no hint about the learner's code
    (the checks' messages would blame it), and a summary that says it will be retried."""
    cause = (
        "a wall-clock limit of the grading machine was reached (it was too slow or too busy)"
        if status is Status.TIMEOUT
        else "the grader itself failed"
    )
    summary = (
        f"This grading did not finish ({status}): {cause}. It is not a verdict on your code; "
        "the score shown is 0 only because nothing was graded, and the grading will be retried."
    )
    blank = [
        CheckResult(
            number=c.number,
            name=c.name,
            part=c.part,
            max_score=c.max_score,
            score=0.0,
            message=f"Not graded: the grading did not finish ({status}) and will be retried.",
            public=c.public,
            kind=OutcomeKind.NOT_GRADED,
        )
        for c in checks
    ]
    return blank, summary


@dataclass
class _Findings:
    """What one grading found, before its record is written."""

    checks: list[CheckResult]
    output: str
    status: Status
    status_message: str
    material: ReportMaterial
    isolation: str | None = None  # the sandbox's rung; None: no learner code ran
    isolation_note: str = ""
    fingerprint: Fingerprint | None = None  # what the checks recorded of the model


def grade(job: GradingJob) -> GradingOutcome:
    """Grade one submission in memory: its record, results.json and report.html as bytes. The
    one grading every front end submits (through ``grader.bounded.run_job`` or
    ``grade_bounded``).

    Never raises for a bad submission: it gets a verdict. A grader bug raises (``grader.bounded.run_job``
    makes it this submission's ``error``)."""
    from grader.results import render_report

    result, material = grade_in_detail(job)
    return GradingOutcome.of(result, render_report(result, material))


def grade_in_detail(job: GradingJob) -> tuple[GradingResult, ReportMaterial]:
    """:func:`grade`'s record and what only the report shows (artifacts, pictures, problems),
    before the report is rendered."""
    with _GRADING_LOCK:
        return _grade(job)


# pytest and the report's matplotlib are not thread-safe: one process grades one submission at
# a time (a local pool's worker runs one job; a child process runs one grading)
_GRADING_LOCK = threading.Lock()


def _grade(job: GradingJob) -> tuple[GradingResult, ReportMaterial]:
    started = time.perf_counter()
    graded_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    assignment = job.assignment
    limits = job.limits or Limits()
    timings: dict[str, float] = {}
    seed = job.seed
    if job.rejected:  # not even handed to the notebook reader (an unsafe archive member)
        found = _unreadable(job, job.rejected, Status.REJECTED)
    else:
        try:
            ingested = ingest_bytes(job.notebook, assignment.ingest_rules(), sha256=job.sha256)
        except NotebookError as error:
            timings["ingest"] = time.perf_counter() - started
            found = _unreadable(job, error.message, Status.UNREADABLE)
        else:
            timings["ingest"] = time.perf_counter() - started
            seed = secret.submission_seed(job.seed, ingested.source, assignment=assignment.name)
            with secret.using_seed(seed):
                found = _grade_source(job, ingested, _within_budget(limits), timings)
    material = found.material
    report_start = time.perf_counter()
    material.pictures = report_pictures(material.artifacts, assignment.hook("pictures"))
    timings["pictures"] = time.perf_counter() - report_start
    material.title, material.credit = assignment.title, assignment.credit
    result = GradingResult(
        submission_id=job.submission_id,
        checks=scored(found.checks),
        execution_time=round(time.perf_counter() - started, 1),
        output=found.output,
        status=found.status,
        status_message=found.status_message,
        learner=job.learner,
        submission_file=job.file_name,
        graded_at=graded_at,
        grader_version=__version__,
        assignment=assignment.name,
        isolation=shown_isolation(found.isolation),
        isolation_note=found.isolation_note,
        seed_fingerprint=seed_fingerprint(seed),
        submission_sha256=job.sha256,
        threads=limits.threads,
        timings={name: round(value, 2) for name, value in timings.items()},
        fingerprint=found.fingerprint,
    )
    return result, material


def _unreadable(job: GradingJob, message: str, status: Status) -> _Findings:
    """A file that is not a usable notebook (or not read at all): every check fails with the
    same clear message; graded with the course seed (there is no source to derive one from)."""
    with secret.using_seed(job.seed):
        checks = run_checks(UnreadableSubmission(message, job.assignment))
    return _Findings(
        checks,
        f"Your file could not be graded: {message}",
        status,
        message,
        ReportMaterial(Artifacts(problems=[message])),
    )


def _grade_source(
    job: GradingJob, ingested: IngestedNotebook, limits: Limits, timings: dict[str, float]
) -> _Findings:
    """The checks on a readable notebook's source, in its sandbox; the summary and problems."""
    assignment = job.assignment
    if job.sandbox_mode != "none":
        refuse_shown(assignment.private_paths)
    with Sandbox(
        ingested.source, mode=job.sandbox_mode, limits=limits, graded_names=assignment.part_names
    ) as sandbox:
        isolation, isolation_note = sandbox.isolation, sandbox.isolation_note
        submission = SandboxedSubmission(ingested, sandbox, assignment)
        submission.course_seed = job.seed  # the cohort's fingerprint inputs derive from it
        load_start = time.perf_counter()
        with contextlib.suppress(LearnerError):
            submission.loaded_names()
        timings["sandbox_start_and_load"] = time.perf_counter() - load_start
        checks_start = time.perf_counter()
        checks = run_checks(submission)
        timings["checks"] = time.perf_counter() - checks_start
        captured = sandbox.output
    status, status_message = submission.status()
    names = _cell_names(job.notebook, ingested)
    artifacts = dataclasses.replace(submission.artifacts)
    if artifacts.training is not None and artifacts.training.train_seconds:
        timings["training"] = float(artifacts.training.train_seconds)
    shown = [p for p in ingested.problems if p.kind != "not_attempted"]
    problems = [locate(names, p.message, p.part, p.cell_index) for p in shown]
    artifacts.problems = [p.message for p in problems]
    artifacts.code = {name: info.source for name, info in ingested.parts.items()}
    artifacts.captured_output = captured
    notes = []
    if isolation != "bwrap":
        notes.append(f"Note: graded without the bubblewrap sandbox ({isolation_note}).")
    if problems:
        notes.append(
            f"{len(problems)} problem(s) found in your notebook: see the top of the report."
        )
    if not status.is_verdict:
        checks, stopped = _not_a_verdict(checks, status, status_message)
        notes.insert(0, stopped)
        artifacts.predictions = None
    if ingested.shows_habits:  # the way in for another course's learners, on top
        intro = assignment.hook("habits_intro", "")
        heading = assignment.hook("habits_heading", "Written for another course?")
        rows = [
            {**row, "where": names.in_text(row["where"])} for row in habit_rows(ingested.habits)
        ]
        artifacts.habits = HabitsFound(heading, intro, rows)
        notes.insert(0, names.in_text(habits_text(intro, ingested.habits)))
    return _Findings(
        _named_cells(checks, names),
        "\n".join(notes),
        status,
        status_message,
        ReportMaterial(artifacts, problems=problems),
        isolation,
        isolation_note,
        Fingerprint.of(submission.recorded) if status.is_verdict else None,
    )


def _cell_heads(notebook: bytes) -> list[str]:
    """Each cell's first non-blank line, by index (for naming cells; [] when unreadable)."""
    try:
        cells = json.loads(notebook).get("cells", [])
        sources = ["".join(c.get("source", "")) if isinstance(c, dict) else "" for c in cells]
    except (ValueError, AttributeError, TypeError):
        return []
    return [next((line for line in s.splitlines() if line.strip()), "") for s in sources]


def _cell_names(notebook: bytes, ingested: IngestedNotebook) -> CellNames:
    graded = [
        GradedCell(name, info.cell_index, info.found_by != "name")
        for name, info in ingested.parts.items()
    ]
    return CellNames(graded, _cell_heads(notebook))


def _named_cells(checks: list[CheckResult], names: CellNames) -> list[CheckResult]:
    """Check messages (a traceback names "cell N, line L") with their cells named."""
    return [dataclasses.replace(c, message=names.in_text(c.message)) for c in checks]
