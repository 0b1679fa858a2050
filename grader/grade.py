"""Grade one submission of an assignment: ingest -> sandbox -> its checks (pytest, trusted
process) -> scoring -> results.json + report.html.

The assignment (``grader.assignment``) is chosen by the caller (``--assignment``; by default the
only one installed) and handed to each stage as what that stage needs: the ingestion rules, the
graded names for the sandbox, the assignment itself for the checks, its pictures hook and title
for the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__, secret, wire
from grader.assignment import Assignment, resolve
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
from grader.ingest import (
    IngestedNotebook,
    NotebookError,
    habit_rows,
    habits_text,
    ingest,
    submission_hash,
)
from grader.results.locations import CellNames, GradedCell, locate
from grader.results.scoring import GradingResult, Status, shown_isolation, write_results
from grader.sandbox import ProbeError, Sandbox, refuse_shown
from grader.wire import FailureKind

if TYPE_CHECKING:
    from grader.sandbox import Limits


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


def submission_id(path: Path) -> str:
    """A stable, filesystem-safe id from the file name."""
    stem = path.stem if path.suffix == ".ipynb" else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "submission"


def _within_budget(limits: Limits) -> Limits:
    """Limits whose CPU-time rlimit cannot end the training before its wall-clock limit does.

    Why: RLIMIT_CPU kills the worker (status ``crashed``, a verdict), while the train probe's
    wall-clock limit ends the grading with ``timeout`` (retried). Measured here, the reference's
    1000 steps took 260 CPU seconds at 2 threads on a quiet machine and ~340 under load
    (TensorFlow's threads spin when the CPU is busy), so a fixed 600 s would cut a model near the
    cost limit short. The worker may
    use (threads + 1) CPUs (compute threads plus the input pipeline) for the whole train limit.
    """
    import dataclasses

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


def grade_notebook(
    path: Path,
    *,
    sandbox_mode: str = "auto",
    limits: Limits | None = None,
    hidden_seed: int | None = None,
    assignment: Assignment | str | None = None,
    learner: str | None = None,
    submission_file: str | None = None,
) -> GradingResult:
    """Grade one notebook file. Never raises for a bad submission: it gets a verdict.

    ``limits`` sizes the sandboxed worker (batch grading passes fewer threads per parallel job).
    ``hidden_seed`` is the course's hidden-data seed (a Dask job carries the client's) instead of
    the course's secret (``grader.secret``); either way the grading's hidden inputs come from the
    seed derived from it and the submission's graded source (``secret.submission_seed``).
    ``assignment``: an Assignment, a name or a folder (``grader.assignment.resolve``); by default
    the only one installed. ``learner`` and ``submission_file`` (by default the file's name) are
    shown in the report's header.
    """
    chosen = resolve(assignment)
    course_seed = secret.hidden_seed() if hidden_seed is None else int(hidden_seed)
    result = _grade(Path(path), sandbox_mode, limits, course_seed, chosen)
    result.learner = learner
    result.submission_file = submission_file or Path(path).name
    return result


def _cell_heads(path: Path) -> list[str]:
    """Each cell's first non-blank line, by index (for naming cells; [] when unreadable)."""
    try:
        cells = json.loads(path.read_bytes()).get("cells", [])
        sources = ["".join(c.get("source", "")) if isinstance(c, dict) else "" for c in cells]
    except (OSError, ValueError, AttributeError, TypeError):
        return []
    return [next((line for line in s.splitlines() if line.strip()), "") for s in sources]


def _cell_names(path: Path, ingested: IngestedNotebook) -> CellNames:
    graded = [
        GradedCell(name, info.cell_index, info.found_by != "name")
        for name, info in ingested.parts.items()
    ]
    return CellNames(graded, _cell_heads(path))


def _named_cells(checks: list[CheckResult], names: CellNames) -> list[CheckResult]:
    """Check messages (a traceback names "cell N, line L") with their cells named."""
    return [dataclasses.replace(c, message=names.in_text(c.message)) for c in checks]


def _grade(
    path: Path, sandbox_mode: str, limits: Limits | None, course_seed: int, assignment: Assignment
) -> GradingResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        digest = submission_hash(path)
    except OSError:
        digest = ""
    extra: dict[str, Any] = {
        "grader_version": __version__,
        "seed_fingerprint": seed_fingerprint(course_seed),
        "submission_sha256": digest,
        "isolation": shown_isolation(None),
        "assignment": assignment.name,
    }
    graded_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    try:
        ingested = ingest(path, assignment.ingest_rules())
    except NotebookError as error:
        timings["ingest"] = time.perf_counter() - started
        with secret.using_seed(course_seed):  # no source to derive a seed from
            checks = run_checks(UnreadableSubmission(error.message, assignment))
        artifacts = Artifacts(problems=[error.message])
        result = GradingResult(
            submission_id(path),
            checks,
            0.0,
            f"Your file could not be graded: {error.message}",
            extra,
            artifacts,
            status=Status.UNREADABLE,
            status_message=error.message,
        )
    else:
        timings["ingest"] = time.perf_counter() - started
        seed = secret.submission_seed(course_seed, ingested.source)
        extra["seed_fingerprint"] = seed_fingerprint(seed)
        with secret.using_seed(seed):
            result = _grade_source(path, ingested, sandbox_mode, limits, assignment, extra, timings)
    return _finish(result, assignment, timings, started, graded_at)


def _grade_source(
    path: Path,
    ingested: IngestedNotebook,
    sandbox_mode: str,
    limits: Limits | None,
    assignment: Assignment,
    extra: dict[str, Any],
    timings: dict[str, float],
) -> GradingResult:
    """The checks on a readable notebook's source, in its sandbox; the summary and problems."""
    from grader.sandbox import Limits

    limits = _within_budget(limits or Limits())
    if sandbox_mode != "none":
        refuse_shown(assignment.private_paths)
    with Sandbox(
        ingested.source, mode=sandbox_mode, limits=limits, graded_names=assignment.part_names
    ) as sandbox:
        isolation = sandbox.isolation
        extra["isolation"] = shown_isolation(isolation)
        extra["isolation_note"] = sandbox.isolation_note
        submission = SandboxedSubmission(ingested, sandbox, assignment)
        load_start = time.perf_counter()
        with contextlib.suppress(LearnerError):
            submission.loaded_names()
        timings["sandbox_start_and_load"] = time.perf_counter() - load_start
        checks_start = time.perf_counter()
        checks = run_checks(submission)
        timings["checks"] = time.perf_counter() - checks_start
        captured = sandbox.output
    status, status_message = submission.status()
    names = _cell_names(path, ingested)
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
        notes.append(
            f"Note: graded without the bubblewrap sandbox ({extra.get('isolation_note', '')})."
        )
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
    return GradingResult(
        submission_id(path),
        _named_cells(checks, names),
        0.0,
        "\n".join(notes),
        extra,
        artifacts,
        status=status,
        status_message=status_message,
        problems=problems,
    )


def _finish(
    result: GradingResult,
    assignment: Assignment,
    timings: dict[str, float],
    started: float,
    graded_at: str,
) -> GradingResult:
    """The report's pictures, the timings, the assignment's title and credit, when."""
    from grader.results import report_pictures

    report_start = time.perf_counter()
    result.pictures = report_pictures(result.artifacts, assignment.hook("pictures"))
    timings["pictures"] = time.perf_counter() - report_start
    result.extra["timings"] = {name: round(value, 2) for name, value in timings.items()}
    result.execution_time = time.perf_counter() - started
    result.title, result.credit, result.graded_at = assignment.title, assignment.credit, graded_at
    return result


def write_outputs(result: GradingResult, out_dir: Path) -> Path:
    """DIR/<submission id>/results.json and report.html, each written atomically."""
    from grader.results import write_report

    folder = out_dir / result.submission_id
    write_results(result, folder / "results.json")
    write_report(result, folder / "report.html")
    return folder
