"""The results record: what ``results.json`` holds, typed, with its one writer and its one reader.

Why one module: results.json is the Gradescope document that every front end reads back (the
batch's journal, the server's overrides and class summary). :func:`results_json` writes a
:class:`GradingResult`; :func:`read_results` reads one back and is its inverse (a test round-trips
records through both), so no other code parses the document. Light on purpose (the standard
library and ``grader.status`` only): a batch client or the course server reads records without
importing the checking stage.

The document keeps Gradescope's autograder schema: ``score``, ``max_score``, ``execution_time``,
``output``, ``tests[]`` (``name``, ``number``, ``score``, ``max_score``, ``status``, ``output``,
``visibility``, ``tags``: the check's part, its outcome kind, ``public``), and the grader's own
fields under ``extra_data``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.status import Status

#: The two files a grading leaves behind, in its folder.
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"

#: ``isolation`` of a grading that started no sandbox (an unreadable or rejected file: no learner
#: code ran). Said once, here; the grading itself holds ``None`` (:func:`shown_isolation`).
NOT_RUN = "none (not run)"

#: The status of a results.json that carries none (an older grader's): the grader's ``error``,
#: which a rerun grades again; never guessed from the messages' wording.
NO_STATUS = "results.json without a status (written by an older grader): regrade"


def shown_isolation(isolation: str | None) -> str:
    """What results.json says of a grading's isolation: the sandbox's rung, or that none ran."""
    return NOT_RUN if isolation is None else isolation


class ResultsError(ValueError):
    """A results.json that is not a JSON object (truncated, edited, another file)."""


@dataclass(frozen=True)
class ScoredCheck:
    """One check's verdict as results.json records it (a ``tests[]`` entry)."""

    number: str  # "2.1": part 2, check 1
    name: str
    part: str
    max_score: float
    score: float  # rounded to 4 places when scored
    message: str = ""  # what the learner reads; empty when passed
    public: bool = False  # the learner's self-check runs it too
    kind: str = "passed"  # how the check ended (grader.checking.OutcomeKind's values)

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass(frozen=True)
class Fingerprint:
    """What a submission's model is and does, as its checks recorded it
    (``Submission.fingerprint``): ``grader similarity`` compares two submissions' fingerprints,
    whatever their code looks like. Compact (a few kB) and rounded by the check that records it.

    ``architecture``: one line per layer (its type, output shape, parameters); ``predictions``:
    one row of numbers per image of ``images``, a tag of the images predicted on, the same for
    every submission of a cohort (drawn from the course secret and the assignment, never from the
    submission); two rows agree when every number differs by at most ``tolerance``.
    ``expected``: the model is the solution's (what the assignment expects: no evidence)."""

    architecture: tuple[str, ...] = ()
    predictions: tuple[tuple[float, ...], ...] = ()
    tolerance: float = 0.0
    images: str = ""
    expected: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "architecture", tuple(str(a) for a in self.architecture))
        rows = tuple(tuple(float(x) for x in row) for row in self.predictions)
        object.__setattr__(self, "predictions", rows)
        object.__setattr__(self, "tolerance", float(self.tolerance))

    def document(self) -> dict[str, Any]:
        """The fingerprint as results.json keeps it (``extra_data.fingerprint``)."""
        return {
            "architecture": list(self.architecture),
            "predictions": [list(row) for row in self.predictions],
            "tolerance": self.tolerance,
            "images": self.images,
            "expected": self.expected,
        }

    @classmethod
    def of(cls, document: Any) -> Fingerprint | None:
        """The fingerprint a document (``extra_data.fingerprint``, or what the checks recorded)
        holds; None when it holds none or is malformed (a fingerprint is never half-read)."""
        if not isinstance(document, Mapping):
            return None
        try:
            found = cls(
                architecture=tuple(document.get("architecture") or ()),
                predictions=tuple(document.get("predictions") or ()),
                tolerance=_number(document.get("tolerance")),
                images=_text(document.get("images")),
                expected=document.get("expected") is True,
            )
        except (TypeError, ValueError):
            return None
        return found if found.architecture or found.predictions else None


@dataclass(frozen=True)
class GradingResult:
    """How one grading ended, as results.json records it: the checks' verdicts and the grader's
    own fields (``extra_data``), each named. Built once, at the end of a grading."""

    submission_id: str  # the id its results are filed under
    checks: tuple[ScoredCheck, ...] = ()
    execution_time: float = 0.0  # seconds, to a tenth
    output: str = ""  # the summary shown on top (problems, isolation note, why not graded)
    status: Status = Status.GRADED
    status_message: str = ""  # one line: why the status is not "graded"
    #: Who submitted, as the course knows them (the server's learner, the batch's id from an LMS
    #: name or a learner's folder); None where the grading does not know (a file on its own).
    learner: str | None = None
    submission_file: str | None = None  # the submitted file's name, as the learner named it
    graded_at: str = ""  # when, ISO 8601 in UTC to the second
    grader_version: str = ""
    assignment: str = ""  # the assignment's name
    isolation: str = NOT_RUN  # the sandbox's rung (bwrap, landlock, none), or NOT_RUN
    isolation_note: str = ""  # what that rung costs, in a sentence
    seed_fingerprint: str = ""  # a short tag of the hidden seed, never the seed
    submission_sha256: str = ""  # of the bytes graded
    threads: int | None = None  # TensorFlow's threads in the sandbox (the same at any -j)
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> seconds
    #: what the model is and predicts (``grader similarity``); None when no check recorded it
    fingerprint: Fingerprint | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(self, "learner", self.learner or None)  # "": not known either
        object.__setattr__(self, "submission_file", self.submission_file or None)
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "timings", dict(self.timings))
        if self.fingerprint is not None and not (
            self.fingerprint.architecture or self.fingerprint.predictions
        ):
            object.__setattr__(self, "fingerprint", None)  # nothing recorded: none

    @property
    def score(self) -> float:
        return round(sum(check.score for check in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(check.max_score for check in self.checks), 4)

    def part_scores(self) -> list[tuple[str, float, float]]:
        """(part, points, of points) per graded part, in check order."""
        parts: dict[str, list[float]] = {}
        for check in self.checks:
            total = parts.setdefault(check.part, [0.0, 0.0])
            total[0] += check.score
            total[1] += check.max_score
        return [(part, round(got, 4), round(best, 4)) for part, (got, best) in parts.items()]


#: extra_data keys written only when they hold something (absent: the field's default).
_OPTIONAL = ("learner", "submission_file", "graded_at", "threads")
#: extra_data keys written always, in this order, as the field of the same name.
_NAMED = (
    "grader_version",
    "assignment",
    "isolation",
    "isolation_note",
    "seed_fingerprint",
    "submission_sha256",
)


def to_gradescope(result: GradingResult) -> dict[str, Any]:
    """The Gradescope ``results.json`` document of ``result``."""
    extra: dict[str, Any] = {"submission_id": result.submission_id}
    for key in _OPTIONAL:
        value = getattr(result, key)
        if value not in (None, ""):
            extra[key] = value
    extra |= {key: getattr(result, key) for key in _NAMED}
    extra["timings"] = dict(result.timings)
    extra["status"] = str(result.status)
    extra["status_message"] = result.status_message
    if result.fingerprint is not None:
        extra["fingerprint"] = result.fingerprint.document()
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": result.execution_time,
        "output": result.output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": check.name,
                "number": check.number,
                "score": check.score,
                "max_score": check.max_score,
                "status": "passed" if check.passed else "failed",
                "output": check.message,
                "visibility": "visible",
                "tags": [check.part, check.kind] + (["public"] if check.public else []),
            }
            for check in result.checks
        ],
        "extra_data": extra,
    }


def results_json(result: GradingResult) -> bytes:
    """results.json's bytes (UTF-8, indented, one final newline)."""
    return (json.dumps(to_gradescope(result), indent=2) + "\n").encode("utf-8")


def read_results(data: bytes | str) -> GradingResult:
    """The record a results.json holds: the inverse of :func:`results_json`.

    A field the document lacks (an older grader's) takes its default; a document without a status
    is the grader's ``error`` (:data:`NO_STATUS`), which a rerun grades again. Raises
    :class:`ResultsError` when the data is not a JSON object.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ResultsError(f"not a results.json: {error}") from None
    if not isinstance(document, dict):
        raise ResultsError("not a results.json: expected a JSON object")
    extra = document.get("extra_data")
    extra = extra if isinstance(extra, dict) else {}
    try:
        status, message = Status(extra["status"]), _text(extra.get("status_message"))
    except (KeyError, ValueError):
        status, message = Status.ERROR, NO_STATUS
    tests = document.get("tests")
    threads = extra.get("threads")
    timings = extra.get("timings")
    return GradingResult(
        submission_id=_text(extra.get("submission_id")),
        checks=tuple(_check(t) for t in (tests if isinstance(tests, list) else ()) if _is_test(t)),
        execution_time=_number(document.get("execution_time")),
        output=_text(document.get("output")),
        status=status,
        status_message=message,
        learner=_text(extra["learner"]) if extra.get("learner") is not None else None,
        submission_file=_text(extra.get("submission_file")) or None,
        graded_at=_text(extra.get("graded_at")),
        grader_version=_text(extra.get("grader_version")),
        assignment=_text(extra.get("assignment")),
        isolation=_text(extra.get("isolation", NOT_RUN)),
        isolation_note=_text(extra.get("isolation_note")),
        seed_fingerprint=_text(extra.get("seed_fingerprint")),
        submission_sha256=_text(extra.get("submission_sha256")),
        threads=int(threads) if isinstance(threads, int) else None,
        timings=(
            {str(k): _number(v) for k, v in timings.items()} if isinstance(timings, dict) else {}
        ),
        fingerprint=Fingerprint.of(extra.get("fingerprint")),
    )


def load_results(path: Path) -> GradingResult | None:
    """The record in the results.json at ``path``; None when it is missing or unreadable."""
    try:
        return read_results(Path(path).read_bytes())
    except (OSError, ResultsError):
        return None


def _is_test(test: Any) -> bool:
    return isinstance(test, dict) and bool(test.get("name"))


def _check(test: dict[str, Any]) -> ScoredCheck:
    tags = [str(tag) for tag in test.get("tags") or () if isinstance(tag, str | int | float)]
    score, top = _number(test.get("score")), _number(test.get("max_score"))
    return ScoredCheck(
        number=_text(test.get("number")),
        name=_text(test.get("name")),
        part=tags[0] if tags else "",
        max_score=top,
        score=score,
        message=_text(test.get("output")),
        public="public" in tags[2:],
        kind=tags[1] if len(tags) > 1 else ("passed" if score >= top else "incorrect"),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0  # NaN is no score
