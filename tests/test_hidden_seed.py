"""Hidden inputs that cannot be memorised: each grading's hidden seed is derived from the course
secret and the submission's graded source (``grader.secret.submission_seed``), so the same
submission always gets the same inputs (and the same score and messages) while any change draws
new ones, which the reference passes whatever they are.

The gradings here run the probes in this process (``InProcessSandbox``, standing in for
``grader.sandbox.Sandbox``) and record what every probe was sent; the short callback fit and the
training are left out (they fail as the learner's), as they cost minutes and depend on no input a
report shows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import types
from pathlib import Path
from typing import ClassVar

import nbformat
import pytest

from grader import grade, secret
from grader.checking import InProcessSubmission, run_checks
from grader.grade import grade_in_detail, seed_fingerprint
from grader.job import GradingJob
from grader.results import GradingResult, results_json
from grader.sandbox import ProbeError
from tests.conftest import TEST_HIDDEN_SEED
from tests.objloc import GRADED_PARTS, SOLUTION_NOTEBOOK, ingest, ingest_notebook

NOT_TRAINING = [part for part in GRADED_PARTS if part != "training"]
COURSE = "object_localization"
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_course"
COSTLY = ("callback", "train")


class InProcessSandbox:
    """The probes run here over the given source, as the self-check runs them; every request is
    recorded with a digest of what it sent. The costly probes fail as the learner's."""

    sent: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, source, mode="auto", limits=None, graded_names=()):
        namespace = {"__name__": "submission"}
        exec(compile(source, "submission", "exec"), namespace)
        self.inner = InProcessSubmission(namespace, None)
        self.isolation, self.isolation_note, self.output = "bwrap", "", ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _run(self, op, args, arrays, on_message):
        digest = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
        for name in sorted(arrays or {}):
            digest.update(arrays[name].tobytes())
        self.sent.append((op, digest.hexdigest()))
        if op in COSTLY:
            raise ProbeError("learner_error", f"{op}: not run in these tests")
        return types.SimpleNamespace(value=self.inner._request(op, args, arrays, on_message))

    def start(self):
        return self._run("load", {}, {}, None)

    def request(self, op, args=None, arrays=None, *, timeout, on_message=None):
        return self._run(op, args or {}, arrays or {}, on_message)


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.setattr(grade, "Sandbox", InProcessSandbox)
    InProcessSandbox.sent = []


def _graded(path, seed=None) -> tuple[GradingResult, list[tuple[str, str]]]:
    InProcessSandbox.sent = []
    result, _ = grade_in_detail(GradingJob.of_file(path, seed=seed))
    return result, list(InProcessSandbox.sent)


def _tests(result: GradingResult) -> list[tuple]:
    document = json.loads(results_json(result))
    return [(t["name"], t["score"], t["output"]) for t in document["tests"]]


def _with_a_comment(tmp_path, part: str = "IoU"):
    """The solution with one comment line added to a graded part: its graded source differs."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if c.source.startswith(f"# GRADED: {part}")]
    cell.source = cell.source.replace("\n", "\n# my own note\n", 1)
    path = tmp_path / "changed.ipynb"
    nbformat.write(nb, path)
    assert ingest(path).source != ingest(SOLUTION_NOTEBOOK).source
    return path


def test_a_submissions_seed_is_a_keyed_hash_of_its_graded_source():
    source = ingest(SOLUTION_NOTEBOOK).source
    seed = secret.submission_seed(7, source, assignment=COURSE)
    assert seed == secret.submission_seed(7, source, assignment=COURSE)  # the same, the same seed
    assert secret.submission_seed(7, source + "\n", assignment=COURSE) != seed  # any change
    assert secret.submission_seed(8, source, assignment=COURSE) != seed  # another course secret
    # another assignment of the same course (one secret), the same source: another seed
    assert secret.submission_seed(7, source, assignment="tiny_course") != seed
    assert 0 <= seed < 2**62 and seed != 7


def test_two_submissions_get_different_hidden_inputs_and_one_the_same_twice(in_process, tmp_path):
    course = int(TEST_HIDDEN_SEED)
    first, sent = _graded(SOLUTION_NOTEBOOK)
    again, sent_again = _graded(SOLUTION_NOTEBOOK)
    assert sent == sent_again  # the same inputs, probe by probe
    assert _tests(first) == _tests(again)
    assert first.seed_fingerprint == again.seed_fingerprint
    # the probes whose inputs come from the hidden seed: those another course seed changes
    _, other_course = _graded(SOLUTION_NOTEBOOK, seed=course + 1)
    hidden = set(sent) - set(other_course)
    assert {op for op, _ in hidden} >= {"call", "metric"}, hidden
    # another submission in the same course is sent none of the first one's hidden inputs but
    # the model fingerprint's images (grader similarity): drawn from the course's seed, never
    # the submission's, so that two models can be compared; unlabelled, never judged: one
    # model request
    other, sent_other = _graded(_with_a_comment(tmp_path))
    assert other.seed_fingerprint != first.seed_fingerprint
    cohort = hidden & set(sent_other)
    assert [op for op, _ in cohort] == ["model"], cohort
    assert {op for op, _ in hidden - cohort} >= {"call", "metric"}
    assert (hidden - cohort).isdisjoint(sent_other)
    # the seed in force is the submission's, never the course's own
    assert seed_fingerprint(course) not in {r.seed_fingerprint for r in (first, other)}


def test_a_batch_job_passing_the_course_seed_by_value_gets_the_same_derivation(
    in_process, tmp_path
):
    by_value, _ = _graded(SOLUTION_NOTEBOOK, seed=int(TEST_HIDDEN_SEED))
    from_secret, _ = _graded(SOLUTION_NOTEBOOK)
    assert by_value.seed_fingerprint == from_secret.seed_fingerprint
    other_course, _ = _graded(SOLUTION_NOTEBOOK, seed=int(TEST_HIDDEN_SEED) + 1)
    assert other_course.seed_fingerprint != by_value.seed_fingerprint


def test_an_unreadable_notebook_is_graded_with_the_course_seed(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(b"{broken")
    result, _ = grade_in_detail(GradingJob.of_file(path, seed=42))
    assert result.seed_fingerprint == seed_fingerprint(42)


@pytest.mark.parametrize("course", [1, 20261125, 987654321, 2**61 + 3, 5])
def test_the_reference_passes_every_non_training_check_whatever_its_derived_seed(course):
    ingested = ingest_notebook(nbformat.read(SOLUTION_NOTEBOOK, as_version=4))
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    with secret.using_seed(secret.submission_seed(course, ingested.source, assignment=COURSE)):
        results = run_checks(InProcessSubmission(namespace, ingested), parts=NOT_TRAINING)
    assert {r.part for r in results} == set(NOT_TRAINING)
    assert [(r.name, r.message) for r in results if not r.passed] == []


def test_two_assignments_on_one_secret_draw_different_hidden_inputs(tmp_path):
    """The same source graded for two assignments of one course (one secret) gets two seeds: one
    assignment's report never tells what another's hidden checks draw."""
    copy = shutil.copytree(TINY, tmp_path / "tiny_b", ignore=shutil.ignore_patterns("__pycache__"))
    manifest = copy / "assignment.yaml"
    manifest.write_text(manifest.read_text().replace("name: tiny_course", "name: tiny_b"))
    fingerprints = []
    for folder in (TINY, copy):
        job = GradingJob.of_file(TINY / "solution.ipynb", assignment=str(folder), seed=7)
        result, _ = grade_in_detail(job)
        assert (result.assignment, result.status) == (folder.name, "graded")
        assert result.score == result.max_score  # each draws its own inputs, and passes them
        fingerprints.append(result.seed_fingerprint)
    assert fingerprints[0] != fingerprints[1]
