"""One grading job for every front end: ``grader grade`` and the course server's queue submit a
``GradingJob`` (the assignment resolved once, the notebook's bytes hashed once) and get a
``GradingOutcome`` back; a grading cut short ends as ``timeout`` or ``killed`` in the same words
wherever it ran; a job sent to a machine whose install lives elsewhere finds its assignment there.

The counts: every resolution of an assignment by name, folder or default loads a manifest
(``grader.assignment.load``), and every hash in the grader takes whole bytes
(``hashlib.sha256(data)`` or one ``update``), so wrapping those two counts them all. The batch's
pool and the server's executor are replaced by this process (the counters live here); what they
run is the same ``grader.bounded.run_job``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import assignment as assignments
from grader import batch
from grader.bounded import grade_bounded, run_job
from grader.cli import main
from grader.job import GradingJob, GradingOutcome, cut_short
from grader.results import load_results
from grader.similarity import command as similarity_command
from grader.status import Status

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "assignments" / "object_localization.ipynb"


@dataclasses.dataclass
class Counts:
    resolutions: int = 0
    hashes: Counter[int] = dataclasses.field(default_factory=Counter)  # by watched notebook
    watched: list[bytes] = dataclasses.field(default_factory=list)

    def watch(self, data: bytes) -> bytes:
        self.watched.append(data)
        return data


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    seen = Counts()
    real_load, real_sha256 = assignments.load, hashlib.sha256

    def load(folder):
        loaded = real_load(folder)
        # the graded assignment's manifest: discovering reads every installed one's too
        seen.resolutions += loaded.name == "object_localization"
        return loaded

    class Sha256:
        """hashlib.sha256 that counts the hashes of a watched notebook's bytes."""

        def __init__(self, data: bytes = b"", **options) -> None:
            self._hash = real_sha256(**options)
            if data:
                self.update(data)

        def update(self, data) -> None:
            for index, watched in enumerate(seen.watched):
                if bytes(data) == watched:
                    seen.hashes[index] += 1
            self._hash.update(data)

        def __getattr__(self, name: str):
            return getattr(self._hash, name)

    monkeypatch.setattr(assignments, "load", load)
    monkeypatch.setattr(hashlib, "sha256", Sha256)
    return seen


class InThisProcess:
    """The batch's pool, but here: the same ``run_job`` the pool's workers call."""

    def __init__(self, workers: int, timeout: float) -> None:
        pass

    def run(self, jobs, on_done) -> None:
        for job in jobs:
            on_done(job, run_job(job))


def test_grader_grade_resolves_the_assignment_once_and_hashes_the_notebook_once(
    counts: Counts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch.run, "LocalPool", InThisProcess)
    digest = hashlib.sha256(STUB.read_bytes()).hexdigest()  # before it is watched
    notebook = tmp_path / "learner.ipynb"
    notebook.write_bytes(counts.watch(STUB.read_bytes()))
    out = tmp_path / "out"
    similarity_stage = similarity_command.write_for_batch
    when_graded: list[tuple[int, int]] = []

    def after_grading(items, out_dir, assignment):
        when_graded.append((counts.resolutions, counts.hashes[0]))
        return similarity_stage(items, out_dir, assignment)

    monkeypatch.setattr(similarity_command, "write_for_batch", after_grading)
    assert main(["grade", str(notebook), "--out", str(out), "--sandbox", "none", "-j", "1"]) == 0
    result = load_results(out / "learner" / "results.json")
    assert result is not None and result.status is Status.GRADED and result.max_score == 100
    assert result.submission_sha256 == digest
    assert when_graded == [(1, 1)]  # the grading: one resolution, one hash
    # then the class summary's similarity stage reads the file again and hashes what it read, to
    # match it with its stored grading (a file changed since is not that grading's): once more
    assert (counts.resolutions, counts.hashes[0]) == (1, 2)


def test_the_server_resolves_once_and_hashes_each_upload_once_when_it_is_stored(
    counts: Counts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.server import queue, roster
    from grader.server import settings as server_settings
    from grader.server.db import open_database
    from grader.server.submissions import create_submission

    monkeypatch.setattr(queue, "grade_bounded", lambda job, timeout, grade: run_job(job, grade))
    server_settings._resolved.cache_clear()  # a server process starts with nothing resolved
    data_dir = tmp_path / "course"
    data_dir.mkdir()
    db = open_database(data_dir)
    settings = server_settings.Settings(cooldown_seconds=0, sandbox="none")
    roster.add_learners(db, roster.read_roster("id\nanna\nbob\n"), "http://x")
    stub = STUB.read_bytes()
    uploads = {"anna": counts.watch(stub), "bob": counts.watch(stub.replace(b"\n", b"\r\n"))}
    for learner, data in uploads.items():
        create_submission(db, data_dir, settings, learner, data, filename=f"{learner}.ipynb")
    assert counts.hashes == Counter({0: 1, 1: 1})  # each stored upload, once
    with ThreadPoolExecutor(1) as pool:
        assert queue.Dispatcher(db, data_dir, settings, executor=pool).drain(300)
    db.dispose()
    results = [load_results(p) for p in sorted(data_dir.glob("results/*/*/results.json"))]
    assert [(r.status, r.submission_file) for r in results] == [
        (Status.GRADED, "anna.ipynb"),
        (Status.GRADED, "bob.ipynb"),
    ]
    assert counts.resolutions == 1  # for both gradings: the dispatcher's, at its start
    assert counts.hashes == Counter({0: 1, 1: 1})  # the gradings hashed neither again


def test_a_job_finds_its_assignment_where_it_lands() -> None:
    """A Dask worker whose install lives at another path: the job's assignment is found there
    by its name; here, the job's own is kept."""
    chosen = assignments.resolve()
    job = GradingJob(assignment=chosen, notebook=b"{}", seed=1)
    assert job.located() is job
    elsewhere = dataclasses.replace(chosen, folder=Path("/nonexistent/course") / chosen.name)
    moved = dataclasses.replace(job, assignment=elsewhere).located()
    assert moved.assignment == chosen and moved.sha256 == job.sha256


def test_a_job_hashes_its_bytes_when_not_given_their_digest() -> None:
    job = GradingJob(
        assignment=assignments.resolve(), notebook=b"abc", seed=1, file_name="a b.ipynb"
    )
    assert job.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert job.submission_id == "a_b"
    assert dataclasses.replace(job, sha256="given").sha256 == "given"


def sleeping_grade(job: GradingJob) -> GradingOutcome:
    time.sleep(60)
    raise AssertionError("not stopped")


def dying_grade(job: GradingJob) -> GradingOutcome:
    os._exit(9)


def failing_grade(job: GradingJob) -> GradingOutcome:
    raise RuntimeError("the grader broke")


def test_a_grading_cut_short_is_timeout_or_killed_and_a_grader_bug_is_error() -> None:
    job = GradingJob(assignment=assignments.resolve(), notebook=b"{}", seed=1)
    timed = grade_bounded(job, 1.0, sleeping_grade)
    assert timed.status is Status.TIMEOUT and timed.result is None
    assert "longer than 1 s" in timed.message and "not a verdict" in timed.message
    died = grade_bounded(job, 60.0, dying_grade)
    assert died.status is Status.KILLED and "exit code 9" in died.message
    broke = grade_bounded(job, 60.0, failing_grade)
    assert broke.status is Status.ERROR and broke.result is None
    assert broke.message == "grader error: RuntimeError: the grader broke"
    assert broke.host and broke.checks_digest  # where, and which checks would have graded it
    # the batch's pool says the same when it stops a worker itself
    assert cut_short(1.0, None, time.monotonic()).message == timed.message
