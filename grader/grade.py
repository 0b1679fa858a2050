"""Grade one submission: ingest -> sandbox -> hidden checks (pytest, trusted process) -> scoring
-> results.json + report.html. Also runs the public checks for the learner's self-check."""

from __future__ import annotations

import contextlib
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader import __version__
from grader.check_api import CheckOutcome, LearnerError, NotAttempted
from grader.checks.helpers import HIDDEN_SEED
from grader.notebook import IngestedNotebook, NotebookError, ingest, submission_hash
from grader.scoring import CheckResult, GradingResult, write_results
from grader.submission import SandboxedSubmission, Submission

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
PART_ORDER = (
    "create_example",
    "plot_bounding_box",
    "data_generator",
    "IoU",
    "create_model",
    "ShowTestImages",
    "lr_schedule",
    "training",
)


class UnreadableSubmission(Submission):
    """A file that is not a usable notebook: every check fails with the same clear message."""

    def __init__(self, message: str) -> None:
        super().__init__(None)
        self.message = message

    def require(self, part: str) -> None:
        raise NotAttempted(self.message)

    def _request(self, op, args, arrays, on_message=None):
        raise NotAttempted(self.message)


@dataclass
class _Collector:
    """A pytest plugin: provides the ``submission`` fixture and records each check's verdict."""

    learner: Submission
    parts: list[str] | None = None
    results: list[CheckResult] = field(default_factory=list)

    @pytest.fixture(scope="session")
    def submission(self) -> Submission:
        return self.learner

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def part_of(item: pytest.Item) -> int:
            marker = item.get_closest_marker("check")
            part = marker.kwargs.get("part") if marker else None
            return PART_ORDER.index(part) if part in PART_ORDER else len(PART_ORDER)

        items.sort(key=part_of)  # stable: file order within a part; training last
        if self.parts:
            items[:] = [
                item
                for item in items
                if (marker := item.get_closest_marker("check"))
                and marker.kwargs.get("part") in self.parts
            ]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        marker = item.get_closest_marker("check")
        if marker is None:
            return
        part, points = marker.kwargs["part"], marker.kwargs["points"]
        doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
        error = call.excinfo.value if call.excinfo is not None else None
        if error is None:
            score, message, kind = points, "", "passed"
        elif isinstance(error, CheckOutcome):
            score, message = points * error.fraction, error.message
            kind = {
                "NotAttempted": "not_attempted",
                "LearnerError": "learner_error",
                "PartialCredit": "partial",
            }.get(type(error).__name__, "incorrect")
        else:  # a check's own bug or unexpected data: never show the check's code
            score, kind = 0.0, "check_error"
            message = (
                "This check could not be completed on what your code returned "
                f"({type(error).__name__}). Compare your function's return values with the task."
            )
        self.results.append(
            CheckResult(
                number="",
                name=f"{part}: {doc}",
                part=part,
                max_score=points,
                score=round(score, 4),
                message=message,
                public=item.get_closest_marker("public") is not None,
                kind=kind,
            )
        )


def run_checks(
    submission: Submission, *, public_only: bool = False, parts: list[str] | None = None
) -> list[CheckResult]:
    """Run the checks in this process against ``submission`` and return numbered verdicts."""
    collector = _Collector(submission, parts)
    args = [
        str(CHECKS_DIR),
        "-c",
        str(CHECKS_DIR / "pytest.ini"),
        "--rootdir",
        str(CHECKS_DIR),
        "-p",
        "no:cacheprovider",
        "--assert=plain",
        "-q",
        "--disable-warnings",
    ]
    selections = []
    if public_only:
        selections.append("public")
    if selections:
        args += ["-m", " and ".join(selections)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[collector])
    counters: dict[str, int] = {}
    for result in collector.results:
        part_number = PART_ORDER.index(result.part) + 1 if result.part in PART_ORDER else 99
        counters[result.part] = counters.get(result.part, 0) + 1
        result.number = f"{part_number}.{counters[result.part]}"
    return collector.results


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


def grade_notebook(path: Path, *, sandbox_mode: str = "auto") -> GradingResult:
    """Grade one notebook file. Never raises for a bad submission: it gets a verdict."""
    from grader.sandbox import Sandbox

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
        with Sandbox(ingested.source, mode=sandbox_mode) as sandbox:
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
