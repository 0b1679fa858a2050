"""Grade one submission: ingest -> sandbox -> hidden checks (pytest, trusted process) -> scoring
-> results.json + report.html. Also runs the public checks for the learner's self-check."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader import __version__, wire
from grader.check_api import LearnerError, NotAttempted
from grader.checks.hidden.helpers import HIDDEN_SEED
from grader.notebook import (
    IngestedNotebook,
    NotebookError,
    ingest,
    original_course_rows,
    original_course_text,
    submission_hash,
)
from grader.runner import run_checks
from grader.sandbox import ProbeError, Sandbox
from grader.scoring import GradingResult, write_results
from grader.submission import TIMEOUTS, ProbeFailure, Submission

if TYPE_CHECKING:
    from grader.sandbox import Limits


class SandboxedSubmission(Submission):
    """Grading: probes go to the sandboxed worker (``grader.sandbox.Sandbox``)."""

    def __init__(self, ingested: IngestedNotebook, sandbox: Any) -> None:
        super().__init__(ingested)
        self.sandbox = sandbox

    def _request(self, op, args, arrays, on_message=None):
        timeout = TIMEOUTS.get(op, 60.0)
        try:
            if op == "load":
                reply = self.sandbox.start()
            else:
                reply = self.sandbox.request(
                    op, args, arrays, timeout=timeout, on_message=on_message
                )
        except ProbeError as error:
            raise ProbeFailure(error.kind, error.message, error.traceback) from None
        except wire.WireError as error:
            raise ProbeFailure("protocol", str(error)) from None
        try:
            return reply.value
        except wire.WireError as error:
            raise ProbeFailure("protocol", str(error)) from None


class UnreadableSubmission(Submission):
    """A file that is not a usable notebook: every check fails with the same clear message."""

    def __init__(self, message: str) -> None:
        super().__init__(None)
        self.message = message

    def require(self, part: str) -> None:
        raise NotAttempted(self.message)

    def _request(self, op, args, arrays, on_message=None):
        raise NotAttempted(self.message)


def submission_id(path: Path) -> str:
    """A stable, filesystem-safe id from the file name."""
    stem = path.stem if path.suffix == ".ipynb" else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "submission"


def _pictures(artifacts: dict[str, Any]) -> dict[str, bytes | None]:
    from grader import report

    pictures: dict[str, bytes | None] = {}
    shown = artifacts.get("pictures")
    if shown:
        pictures["predictions"] = report.predictions_picture(
            shown["test_images"],
            shown["true_boxes"],
            shown["pred_boxes"],
            shown["true_classes"],
            shown["pred_classes"],
        )
    if artifacts.get("history"):
        pictures["curves"] = report.curves_picture(artifacts["history"])
    figure = artifacts.get("callback_figure")
    if isinstance(figure, np.ndarray):
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(figure.astype(np.uint8))).save(buffer, format="PNG")
        pictures["callback"] = buffer.getvalue()
    return pictures


def grade_notebook(
    path: Path, *, sandbox_mode: str = "auto", limits: Limits | None = None
) -> GradingResult:
    """Grade one notebook file. Never raises for a bad submission: it gets a verdict.

    ``limits`` sizes the sandboxed worker (batch grading passes fewer threads per parallel job).
    """
    from grader.sandbox import Limits

    started = time.perf_counter()
    timings: dict[str, float] = {}
    path = Path(path)
    ident = submission_id(path)
    try:
        digest = submission_hash(path)
    except OSError:
        digest = ""
    extra: dict[str, Any] = {
        "grader_version": __version__,
        "seed": HIDDEN_SEED,
        "submission_sha256": digest,
        "isolation": "none (not run)",
    }
    ingested: IngestedNotebook | None = None
    captured = ""
    try:
        ingested = ingest(path)
    except NotebookError as error:
        message = error.message
    timings["ingest"] = time.perf_counter() - started
    if ingested is None:
        checks = run_checks(UnreadableSubmission(message))
        summary = f"Your file could not be graded: {message}"
        artifacts: dict[str, Any] = {"problems": [message]}
    else:
        with Sandbox(ingested.source, mode=sandbox_mode, limits=limits or Limits()) as sandbox:
            extra["isolation"] = sandbox.isolation
            extra["isolation_note"] = sandbox.isolation_note
            submission = SandboxedSubmission(ingested, sandbox)
            load_start = time.perf_counter()
            with contextlib.suppress(LearnerError):
                submission.loaded_names()
            timings["sandbox_start_and_load"] = time.perf_counter() - load_start
            checks_start = time.perf_counter()
            checks = run_checks(submission)
            timings["checks"] = time.perf_counter() - checks_start
            captured = sandbox.output
        artifacts = dict(submission.artifacts)
        training = artifacts.get("training") or {}
        if training.get("train_seconds"):
            timings["training"] = float(training["train_seconds"])
        problems = [p.message for p in ingested.problems if p.kind != "not_attempted"]
        artifacts["problems"] = problems
        artifacts["code"] = {name: info.source for name, info in ingested.parts.items()}
        notes = []
        if extra["isolation"] != "bwrap":
            notes.append(
                f"Note: graded without the bubblewrap sandbox ({extra.get('isolation_note', '')})."
            )
        if artifacts.get("budget_note"):
            notes.append("Note: " + artifacts["budget_note"] + ".")
        if problems:
            notes.append(f"{len(problems)} problem(s) found in your notebook: see the report.")
        if ingested.looks_original:  # the way in for the original course's learners, on top
            artifacts["original_course"] = original_course_rows(ingested.original_course)
            notes.insert(0, original_course_text(ingested.original_course))
        summary = "\n".join(notes)
    artifacts["captured_output"] = captured
    report_start = time.perf_counter()
    artifacts["pictures"] = _pictures(artifacts)
    timings["pictures"] = time.perf_counter() - report_start
    extra["timings"] = {name: round(value, 2) for name, value in timings.items()}
    return GradingResult(
        submission_id=ident,
        checks=checks,
        execution_time=time.perf_counter() - started,
        output=summary,
        extra=extra,
        artifacts=artifacts,
    )


def write_outputs(result: GradingResult, out_dir: Path) -> Path:
    """DIR/<submission id>/results.json and report.html, each written atomically."""
    from grader.report import write_report

    folder = out_dir / result.submission_id
    write_results(result, folder / "results.json")
    write_report(result, folder / "report.html")
    return folder
