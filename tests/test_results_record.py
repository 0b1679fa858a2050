"""One results record, one reader: results.json is written from a typed record
(``grader.results.record.results_json``) and read back into the same record by one function
(``read_results``), whatever the grading's end (graded, unreadable, timeout, a server grading the
instructor overrides), and no module outside the results stage parses results.json."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.results import (
    NOT_RUN,
    Fingerprint,
    GradingResult,
    ResultsError,
    ScoredCheck,
    Status,
    load_results,
    read_results,
    results_json,
)
from grader.results.record import NO_STATUS

ROOT = Path(__file__).resolve().parents[1]

GRADED = GradingResult(
    submission_id="Jane_Doe_12345",
    checks=(
        ScoredCheck("1.1", "create: the box", "create", 4.0, 4.0, public=True),
        ScoredCheck(
            "1.2",
            "create: rows",
            "create",
            4.0,
            1.3333,
            "Expected: (1, 2). Hint: …",
            kind="partial",
        ),
        ScoredCheck("2.1", "metric: disjoint 0", "metric", 2.0, 0.0, "Got: 0.74", kind="incorrect"),
    ),
    execution_time=41.3,
    output="1 problem(s) found in your notebook: see the top of the report.",
    learner="Jane_Doe_12345",
    submission_file="object_localization (2).ipynb",
    graded_at="2026-05-04T10:20:30+00:00",
    grader_version="0.2.0",
    assignment="a_course",
    isolation="bwrap",
    isolation_note="bubblewrap: a private mount, PID and network namespace",
    seed_fingerprint="0a1b2c3d",
    submission_sha256="ab" * 32,
    threads=2,
    timings={"ingest": 0.05, "checks": 30.12, "training": 25.0},
    fingerprint=Fingerprint(
        architecture=("InputLayer (None, 144, 144, 3) 0", "Dense (None, 9) 2313"),
        predictions=((0.1, 0.9, 0.3125, 0.5), (0.6, 0.4, 0.25, 0.0625)),
        tolerance=0.0015,
        images="5ea2754a",
    ),
)
UNREADABLE = GradingResult(
    submission_id="broken",
    checks=(
        ScoredCheck("1.1", "create: the box", "create", 4.0, 0.0, "Not JSON", kind="not_attempted"),
    ),
    output="Your file could not be graded: Not JSON",
    status=Status.UNREADABLE,
    status_message="Not JSON",
    submission_file="broken.ipynb",
    isolation=NOT_RUN,
    timings={"ingest": 0.0},
)
TIMEOUT = GradingResult(
    submission_id="bob",
    checks=(
        ScoredCheck("3.1", "training", "training", 20.0, 0.0, "Not graded", kind="not_graded"),
    ),
    output="This grading did not finish (timeout): ... it will be retried.",
    status=Status.TIMEOUT,
    status_message="train: the training ran out of time",
    isolation="landlock",
)
#: A course server's grading (the id is the API's, the learner as the roster names them), whose
#: checks the instructor then overrides: the overrides read its checks back through the reader.
SERVER = GradingResult(
    submission_id="17",
    checks=(
        ScoredCheck("1.1", "create_example", "create_example", 4.0, 4.0),
        ScoredCheck(
            "2.1",
            "iou_metric",
            "iou_metric",
            4.0,
            0.0,
            "disjoint boxes should score 0",
            kind="incorrect",
        ),
    ),
    learner="Anna Smith (anna)",
    submission_file="my work.ipynb",
    isolation="none",
)


@pytest.mark.parametrize(
    "record",
    [GRADED, UNREADABLE, TIMEOUT, SERVER],
    ids=["graded", "unreadable", "timeout", "server"],
)
def test_a_record_written_and_read_back_is_the_same_record(record: GradingResult) -> None:
    assert read_results(results_json(record)) == record


def test_the_overrides_read_a_gradings_checks_through_the_reader(tmp_path: Path) -> None:
    from grader.server import overrides
    from grader.server.models import Job

    folder = tmp_path / "results" / "17" / "job3-a1"
    folder.mkdir(parents=True)
    (folder / "results.json").write_bytes(results_json(SERVER))
    checks = overrides.checks_of(tmp_path, Job(result_dir="results/17/job3-a1"))
    assert list(checks.values()) == list(SERVER.checks)
    assert checks["iou_metric"].score == 0.0 and checks["iou_metric"].max_score == 4.0
    assert overrides.checks_of(tmp_path, Job(result_dir="results/none")) == {}


_text = st.text(max_size=40)
_points = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)
_checks = st.builds(
    ScoredCheck,
    number=_text,
    name=st.text(min_size=1, max_size=40),
    part=_text,
    max_score=_points,
    score=_points,
    message=_text,
    public=st.booleans(),
    kind=st.sampled_from(["passed", "incorrect", "partial", "not_attempted", "not_graded"]),
)
_records = st.builds(
    GradingResult,
    submission_id=_text,
    checks=st.lists(_checks, max_size=5).map(tuple),
    execution_time=_points,
    output=_text,
    status=st.sampled_from(list(Status)),
    status_message=_text,
    learner=st.none() | st.text(max_size=20),
    submission_file=st.none() | st.text(max_size=20),
    graded_at=_text,
    grader_version=_text,
    assignment=_text,
    isolation=_text,
    isolation_note=_text,
    seed_fingerprint=_text,
    submission_sha256=_text,
    threads=st.none() | st.integers(min_value=1, max_value=64),
    timings=st.dictionaries(_text, _points, max_size=4),
    fingerprint=st.none()
    | st.builds(
        Fingerprint,
        architecture=st.lists(_text, max_size=4).map(tuple),
        predictions=st.lists(st.lists(_points, max_size=4).map(tuple), max_size=3).map(tuple),
        tolerance=_points,
        images=_text,
        expected=st.booleans(),
    ),
)


@settings(max_examples=200, deadline=None)
@given(_records)
def test_any_record_round_trips(record: GradingResult) -> None:
    assert read_results(results_json(record)) == record


def test_the_models_fingerprint_is_kept_with_named_fields_and_never_half_read() -> None:
    document = json.loads(results_json(GRADED))
    kept = document["extra_data"]["fingerprint"]
    assert kept == {
        "architecture": ["InputLayer (None, 144, 144, 3) 0", "Dense (None, 9) 2313"],
        "predictions": [[0.1, 0.9, 0.3125, 0.5], [0.6, 0.4, 0.25, 0.0625]],
        "tolerance": 0.0015,
        "images": "5ea2754a",
        "expected": False,
    }
    assert "fingerprint" not in json.loads(results_json(UNREADABLE))["extra_data"]
    for broken in ("a string", {"predictions": [["x"]]}, {"architecture": 3}, {}):
        document["extra_data"]["fingerprint"] = broken
        read = read_results(json.dumps(document))
        assert read.fingerprint is None and read.checks == GRADED.checks, broken


def test_results_json_keeps_the_gradescope_schema() -> None:
    document = json.loads(results_json(GRADED))
    assert (document["score"], document["max_score"]) == (5.3333, 10.0)
    assert {"execution_time", "output", "tests", "extra_data"} <= set(document)
    partial = document["tests"][1]
    assert set(partial) == {
        "name",
        "number",
        "score",
        "max_score",
        "status",
        "output",
        "visibility",
        "tags",
    }
    assert (partial["status"], partial["tags"]) == ("failed", ["create", "partial"])
    assert document["tests"][0]["tags"] == ["create", "passed", "public"]
    extra = document["extra_data"]
    assert (extra["status"], extra["status_message"], extra["threads"]) == ("graded", "", 2)
    assert extra["learner"] == "Jane_Doe_12345" and extra["isolation"] == "bwrap"
    assert "learner" not in json.loads(results_json(TIMEOUT))["extra_data"]  # unknown: absent


@pytest.mark.parametrize(
    "document",
    [
        {"extra_data": {"isolation": "bwrap"}, "tests": []},
        {"extra_data": {"isolation": "none (not run)"}, "output": "Your file could not be graded"},
        {"tests": [{"name": "x", "output": "Your code crashed the process running it"}]},
        {"extra_data": {"status": "finished"}},
        {},
    ],
)
def test_a_results_json_without_a_known_status_is_an_error_to_regrade(document: dict) -> None:
    """An older grader's document: never guessed from the messages' wording."""
    record = read_results(json.dumps(document))
    assert (record.status, record.status_message) == (Status.ERROR, NO_STATUS)
    assert not record.status.is_verdict


def test_what_is_not_a_results_json_is_refused_or_none(tmp_path: Path) -> None:
    for data in (b"", b"{broken", b"[1, 2]", b'"text"'):
        with pytest.raises(ResultsError):
            read_results(data)
    (tmp_path / "results.json").write_bytes(b"{broken")
    assert load_results(tmp_path / "results.json") is None
    assert load_results(tmp_path / "missing.json") is None


# --------------------------------------------------------------------------------------------
# one reader: no module outside the results stage parses a results.json


def _json_loads_aliases(tree: ast.AST) -> set[str]:
    """Names a module calls json.load(s) by: json.load, json.loads, or imported from json."""
    names = {"json.load", "json.loads"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "json":
            names |= {a.asname or a.name for a in node.names if a.name in ("load", "loads")}
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        value = first.value if isinstance(first, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.add(id(value))
    return found


def results_json_parsers(source: str) -> list[int]:
    """Lines where ``source`` parses a results.json by hand: a json.load(s) call whose argument
    names a results file, or any json.load(s) call in a module whose code (not its docstrings)
    spells "results.json"."""
    tree = ast.parse(source)
    aliases = _json_loads_aliases(tree)
    docstrings = _docstrings(tree)
    spells = any(
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "results.json" in node.value
        and id(node) not in docstrings
        for node in ast.walk(tree)
    )
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in aliases:
            argument = " ".join(ast.unparse(arg) for arg in node.args).lower()
            if spells or "result" in argument:
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_results_stage_parses_results_json() -> None:
    stage = ROOT / "grader" / "results"
    modules = [
        path
        for package in ("grader", "quiz")
        for path in sorted((ROOT / package).rglob("*.py"))
        if stage not in path.parents
    ]
    assert len(modules) > 100
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in modules
        for line in results_json_parsers(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "results.json parsed outside grader/results (use read_results):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "parses"),
    [
        ('d = json.loads((folder / "results.json").read_text())', True),
        ('p = folder / "results.json"\nd = json.loads(p.read_text())', True),
        ("from json import loads as parse\nd = parse(result_path.read_bytes())", True),
        ('"""Writes results.json."""\nline = json.loads(journal_line)', False),
        ("d = json.loads(reply)\nok = (folder / RESULTS_FILE).is_file()", False),
    ],
)
def test_the_parser_finder_finds_a_hand_parser_and_only_one(source: str, parses: bool) -> None:
    assert bool(results_json_parsers(source)) is parses
