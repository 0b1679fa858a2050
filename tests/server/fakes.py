"""Grading functions the tests inject into the queue (``Dispatcher(grade=...)``): module-level,
so that they travel to Dask workers and grading subprocesses by reference."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

MARKERS_ENV = "OBJLOC_TEST_MARKERS"


def _write(out_dir: Path, score: float) -> None:
    (out_dir / "results.json").write_text(json.dumps({"score": score, "max_score": 10.0}))
    (out_dir / "report.html").write_text(f"<html><body><p>fake report: {score}</p></body></html>")


def _mark(kind: str) -> None:
    folder = os.environ.get(MARKERS_ENV)
    if folder:
        Path(folder, f"{kind}-{os.getpid()}-{time.time_ns()}").write_text(str(os.getppid()))


def fake_grade(path, out_dir, *, sandbox_mode, hidden_seed, assignment=""):
    """Full marks, at once; counts its runs in $OBJLOC_TEST_MARKERS."""
    assert Path(path).is_file() and sandbox_mode and hidden_seed is not None
    _mark("graded")
    _write(Path(out_dir), 10.0)
    return "graded", 10.0, 10.0


def slow_grade(path, out_dir, *, sandbox_mode, hidden_seed, assignment=""):
    """Marks that it started, then sleeps for a minute: the grading process must be ended with
    the server that started it (grader.server.tasks ends it when its parent dies)."""
    _mark("started")
    time.sleep(60)
    os._exit(3)


def error_grade(path, out_dir, *, sandbox_mode, hidden_seed, assignment=""):
    """The grader fails (status error: retried)."""
    _mark("error")
    raise RuntimeError("the grader broke")
