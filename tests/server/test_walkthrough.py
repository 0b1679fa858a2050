"""Issue 12's "Done when", against a live ``grader serve`` grading the tiny course for real:

- the walkthrough script (tests/server/course_walkthrough.py) passes as a learner and an instructor
  run it, as a script, against a server it did not start;
- ``kill -9`` of the server process during a grading (its Dask cluster and the grading end with
  it), then a restart on the same data folder: the grading is picked up again and finishes exactly
  once (one graded job, one result, one report). The grading is made slow by the learner's own
  code (a learner's code may sleep): a tiny-course solution whose graded function marks that it
  runs, then sleeps.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from grader.server.db import open_database
from grader.server.models import AuditEvent, Job
from tests.server import live

SLEEP_SECONDS = 4  # long enough to be killed mid-way, short enough to grade again quickly


def test_the_walkthrough_script_passes_against_a_running_server(tmp_path):
    course = live.tiny_course_with_quiz(tmp_path)
    with live.running(tmp_path, assignment=str(course)) as server:
        done = subprocess.run(
            [sys.executable, "-m", "tests.server.course_walkthrough", "--data", str(server.data)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=live.ROOT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[-1] == "walkthrough passed"
        assert sum("-> graded with 5/5 and the report" in line for line in lines) == (
            1 if live.chromium_missing() else 2
        ), done.stdout
        assert any(line.startswith("ok: B (and a visitor) refused all") for line in lines)
        for step in (
            "ok: the quiz: a visitor is sent to sign in; A's attempt",
            "ok: the instructor overrode check",
            "ok: the Canvas and Moodle import CSVs",
        ):
            assert any(line.startswith(step) for line in lines), done.stdout
        skipped = [line for line in lines if line.startswith("SKIPPED")]
        assert len(skipped) == (1 if live.chromium_missing() else 0), skipped
        # the instructor's view, independently of the script: A graded twice, the latest with
        # full marks but one check overridden by the instructor (a check set to 0)
        instructor = live.Client(
            server.base, live.token_of(live.instructor_link(server.data, server.base))
        )
        gradebook = instructor.get("/api/v1/gradebook.csv")[2].decode()
        [row_a] = [
            r for r in csv.DictReader(io.StringIO(gradebook)) if r["id"].startswith("walk-a-")
        ]
        assert (row_a["submissions"], row_a["status"]) == ("2", "graded")
        assert float(row_a["score"]) < float(row_a["max_score"]) == 5.0


def test_the_walkthrough_script_fails_when_a_step_fails(tmp_path):
    """A server that makes learners wait between submissions cannot run it: it says why."""
    with live.running(tmp_path, cooldown_seconds=300) as server:
        done = subprocess.run(
            [sys.executable, "-m", "tests.server.course_walkthrough", "--data", str(server.data)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=live.ROOT,
        )
    assert done.returncode == 1 and "FAILED" in done.stderr and "cooldown_seconds: 0" in done.stderr


def sleepy_solution(markers: Path) -> bytes:
    """The tiny course's full-marks solution whose graded function, on its first call in a
    grading, leaves a marker named after its process and sleeps."""
    notebook = json.loads(live.SOLUTION.read_text())
    [cell] = [c for c in notebook["cells"] if "# GRADED: normalise_box" in "".join(c["source"])]
    source = "".join(cell["source"])
    head = "def normalise_box(box, size):\n"
    assert head in source
    cell["source"] = source.replace(
        head,
        head
        + "    import os, pathlib, time\n"
        + "    if not globals().get('_slept'):\n"
        + "        globals()['_slept'] = True\n"
        + f"        pathlib.Path({str(markers)!r}, f'started-{{os.getpid()}}').touch()\n"
        + f"        time.sleep({SLEEP_SECONDS})\n",
    )
    return json.dumps(notebook).encode()


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


def test_kill_9_during_grading_then_restart_grades_exactly_once(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    server = live.new_course(tmp_path).start()
    try:
        links = live.add_roster(server.data, server.base, [("anna", "Anna", "a@x.org")])
        anna = live.Client(server.base, live.token_of(links["anna"]))
        status, answer = anna.submit(sleepy_solution(markers))
        assert status == 201, answer
        ident = answer["id"]
        assert live.wait_for(lambda: any(markers.iterdir()), 120), server.log.read_text()
        [first] = list(markers.iterdir())
        assert anna.json(f"/api/v1/submissions/{ident}")["status"] == "grading"

        assert server.kill9(), "the server's Dask cluster outlived it"
        pid = int(first.name.split("-")[1])
        assert live.wait_for(lambda: not _alive(pid), 30), "the grading outlived its server"
        assert not list(server.data.rglob("results.json")), "a result of the killed grading"

        server.start()
        seen = anna.follow(ident, timeout=180)
        assert seen[-1] == "graded", server.log.read_text()
        state = anna.json(f"/api/v1/submissions/{ident}")
        assert state["score"] == state["max_score"] == 5.0
        assert anna.get(f"/api/v1/submissions/{ident}/report")[0] == 200
    finally:
        server.stop()

    started = sorted(markers.iterdir())
    assert len(started) == 2, started  # the killed grading, and the one graded again
    db = open_database(server.data)
    try:
        with db.read() as session:
            jobs = session.scalars(select(Job).where(Job.submission_id == ident)).all()
            graded = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "graded", AuditEvent.subject == str(ident)
                )
            ).all()
            requeued = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "grading_requeued")
            ).all()
            assert [(j.status, j.attempts) for j in jobs] == [("graded", 2)]
            assert len(graded) == 1 and len(requeued) == 1
            result_dir = jobs[0].result_dir
    finally:
        db.dispose()
    results = list((server.data / "results").rglob("results.json"))
    assert [p.parent for p in results] == [server.data / result_dir]
