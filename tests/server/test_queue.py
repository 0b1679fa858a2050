"""The grading queue: a job is graded once (on Dask too); a dispatcher killed with kill -9 in the
middle of a grading and restarted finishes it exactly once; a stale worker's result is dropped;
retried statuses are retried up to max_attempts; regrade-everyone is one call; the real grading
function is wired (``grader.bounded.grade_bounded`` -> ``grader.grade.grade``, ``sandbox_mode="none"``),
with the learner and the uploaded file's name in the report's header."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import select

from grader.job import GradingOutcome
from grader.results import GradingResult, ScoredCheck
from grader.server import roster
from grader.server.leases import claim, new_owner, record, regrade_all, requeue_lost
from grader.server.models import AuditEvent, Job
from grader.server.queue import Dispatcher
from grader.server.submissions import create_submission
from tests.server.conftest import notebook_bytes, wait_for
from tests.server.fakes import MARKERS_ENV, error_grade, fake_grade, slow_grade


@pytest.fixture
def markers(tmp_path, monkeypatch):
    folder = tmp_path / "markers"
    folder.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(folder))
    return folder


@pytest.fixture
def learners(db):
    roster.add_learners(db, roster.read_roster("id\nanna\nbob\n"), "http://x")
    return ["anna", "bob"]


def events(db, action: str) -> list[AuditEvent]:
    with db.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def jobs(db) -> list[Job]:
    with db.read() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def count(folder: Path, kind: str) -> int:
    return sum(1 for p in folder.iterdir() if p.name.startswith(kind + "-"))


def test_a_job_is_graded_once(db, data_dir, settings, learners, markers):
    create_submission(db, data_dir, settings, "anna", notebook_bytes())
    with ThreadPoolExecutor(2) as pool:
        dispatcher = Dispatcher(db, data_dir, settings, grade=fake_grade, executor=pool)
        assert dispatcher.drain(60)
        dispatcher.step()
    [job] = jobs(db)
    assert (job.status, job.score, job.max_score, job.attempts) == ("graded", 10.0, 10.0, 1)
    assert job.lease_owner is None and job.finished_at is not None
    assert json.loads((data_dir / job.result_dir / "results.json").read_text())["score"] == 10.0
    assert len(events(db, "graded")) == 1 and count(markers, "graded") == 1


def test_graded_on_a_local_dask_cluster(db, data_dir, settings, learners, markers):
    with Dispatcher(db, data_dir, settings, grade=fake_grade, poll_seconds=0.1) as dispatcher:
        create_submission(db, data_dir, settings, "anna", notebook_bytes())
        create_submission(db, data_dir, settings, "bob", notebook_bytes())
        dispatcher.wake()
        assert wait_for(lambda: [j.status for j in jobs(db)] == ["graded", "graded"], 120)
    assert len(events(db, "graded")) == 2 and count(markers, "graded") == 2


def test_a_stale_workers_result_is_dropped(db, data_dir, settings, learners):
    create_submission(db, data_dir, settings, "anna", notebook_bytes())
    first, second = new_owner(), new_owner()
    stale = claim(db, first, lease_seconds=60)
    assert stale is not None and claim(db, second, 60) is None  # nothing else queued
    with db.read() as session:  # the first owner's lease runs out (it hung, or died)
        job = session.get(Job, stale.job_id)
        job.lease_expires = job.lease_expires.replace(year=2000)
    assert requeue_lost(db, second, max_attempts=3) == 1
    fresh = claim(db, second, lease_seconds=60)
    assert fresh is not None and fresh.attempt == 2
    check = ScoredCheck("1.1", "a check", "a", 2.0, 1.0, "half")
    done = GradingOutcome.of(GradingResult("1", [check]), "<html></html>")
    assert not record(db, stale, first, done, "results/x", max_attempts=3)
    assert record(db, fresh, second, done, "results/y", max_attempts=3)
    assert not record(db, fresh, second, done, "results/y", max_attempts=3)  # once only
    [job] = jobs(db)
    assert (job.status, job.result_dir, job.attempts) == ("graded", "results/y", 2)
    assert len(events(db, "graded")) == 1


def test_retried_statuses_are_retried_up_to_max_attempts(db, data_dir, settings, learners, markers):
    create_submission(db, data_dir, settings, "anna", notebook_bytes())
    with ThreadPoolExecutor(1) as pool:
        Dispatcher(db, data_dir, settings, grade=error_grade, executor=pool).drain(60)
    [job] = jobs(db)
    assert (job.status, job.attempts) == ("error", settings.max_attempts)
    assert "the grader broke" in job.message
    assert len(events(db, "grading_retried")) == settings.max_attempts - 1
    assert len(events(db, "graded")) == 1 and count(markers, "error") == settings.max_attempts


def test_regrade_everyone(db, data_dir, settings, learners):
    for who in ("anna", "anna", "bob"):
        create_submission(db, data_dir, settings, who, notebook_bytes())
    assert regrade_all(db) == 0  # all three are still queued
    with ThreadPoolExecutor(2) as pool:
        Dispatcher(db, data_dir, settings, grade=fake_grade, executor=pool).drain(60)
    assert regrade_all(db) == 2  # anna's latest and bob's
    with ThreadPoolExecutor(2) as pool:
        Dispatcher(db, data_dir, settings, grade=fake_grade, executor=pool).drain(60)
    statuses = [(j.submission_id, j.status) for j in jobs(db)]
    assert statuses[3:] == [(2, "graded"), (3, "graded")]


@pytest.mark.parametrize("executor", ["dask"])
def test_kill_9_mid_grading_then_restart_grades_exactly_once(
    db, db_url, data_dir, settings, learners, markers, executor
):
    create_submission(db, data_dir, settings, "anna", notebook_bytes())
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.server.run_dispatcher",
            str(data_dir),
            db_url or "-",
            "slow_grade",
            executor,
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: count(markers, "started") == 1, 120), "grading never started"
        [job] = jobs(db)
        assert job.status == "grading" and job.attempts == 1
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    slow = next(p for p in markers.iterdir() if p.name.startswith("started-"))
    grading_pid = int(slow.name.split("-")[1])
    assert wait_for(lambda: not Path(f"/proc/{grading_pid}").exists(), 30), "grading outlived it"

    restarted = dataclasses.replace(settings, lease_seconds=600)
    with ThreadPoolExecutor(1) as pool:
        dispatcher = Dispatcher(db, data_dir, restarted, grade=fake_grade, executor=pool)
        assert dispatcher.drain(60)
    [job] = jobs(db)
    assert (job.status, job.attempts, job.score) == ("graded", 2, 10.0)
    assert len(events(db, "graded")) == 1
    assert len(events(db, "grading_requeued")) == 1
    assert count(markers, "graded") == 1
    assert [p.name for p in (data_dir / "results" / "1").iterdir()] == [f"job{job.id}-a2"]


def test_the_real_grading_function_is_wired(db, data_dir, settings, tmp_path):
    """The engine (grader.grade.grade) through the queue, on a notebook whose graded code does not
    even parse (fast: nothing to train); the report names the learner and the file they sent."""
    roster.add_learners(db, roster.read_roster("id,name\nanna,Anna Smith\n"), "http://x")
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(
        nbformat.v4.new_code_cell("# GRADED: create_example\ndef create_example(:\n    pass")
    )
    data = nbformat.writes(notebook).encode()
    create_submission(db, data_dir, settings, "anna", data, filename="C:\\work\\mine (2).ipynb")
    with ThreadPoolExecutor(1) as pool:
        dispatcher = Dispatcher(db, data_dir, settings, executor=pool)  # the engine
        assert dispatcher.drain(120)
    [job] = jobs(db)
    assert job.status == "graded" and job.score == 0.0 and job.max_score > 0, job.message
    results = json.loads((data_dir / job.result_dir / "results.json").read_text())
    assert results["max_score"] == job.max_score
    assert results["extra_data"]["isolation"] and results["tests"]
    assert results["extra_data"]["submission_id"] == str(job.submission_id)
    assert results["extra_data"]["learner"] == "Anna Smith (anna)"
    assert results["extra_data"]["submission_file"] == "mine (2).ipynb"  # not 1.ipynb
    assert results["extra_data"]["submission_sha256"] == hashlib.sha256(data).hexdigest()
    report = (data_dir / job.result_dir / "report.html").read_text()
    header = report[report.index("<h1>") : report.index('class="total"')]
    assert "Anna Smith (anna)" in header and "mine (2).ipynb" in header


def test_a_clean_stop_puts_its_gradings_back_in_the_queue(
    db, data_dir, settings, learners, markers
):
    create_submission(db, data_dir, settings, "anna", notebook_bytes())
    with ThreadPoolExecutor(1) as pool:
        dispatcher = Dispatcher(
            db, data_dir, settings, grade=slow_grade, executor=pool, poll_seconds=0.1
        ).start()
        assert wait_for(lambda: count(markers, "started") == 1, 60)
        dispatcher.stop()
        [job] = jobs(db)
        assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)
        slow = next(p for p in markers.iterdir() if p.name.startswith("started-"))
        os.kill(int(slow.name.split("-")[1]), signal.SIGKILL)  # the thread pool's grading
