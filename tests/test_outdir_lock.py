"""One writer per output folder: a second `grader grade` on the same --out refuses at once (exit 2,
naming the run that holds it) or, with --wait, runs after it; no row is lost; a reader never cuts
the journal a writer is appending to."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from grader import batch

ROOT = Path(__file__).resolve().parents[1]
CLEO = ROOT / "examples" / "submissions" / "cleo_untouched.ipynb"


def _submissions(root: Path) -> Path:
    """Cheap submissions: the untouched example twice (a sandbox each) and an unreadable file."""
    folder = root / "subs"
    folder.mkdir()
    shutil.copy(CLEO, folder / "cleo.ipynb")
    shutil.copy(CLEO, folder / "dora.ipynb")
    (folder / "zz_broken.ipynb").write_text("{")
    return folder


IDS = ["cleo", "dora", "zz_broken"]


def _grade(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            str(folder),
            "--out",
            str(out),
            "-j",
            "1",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holding(out: Path, process: subprocess.Popen, timeout: float = 120.0) -> batch.LockHolder:
    """Wait until ``process`` holds the folder's lock (its pid is in the lock file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = batch.LockHolder.parse((out / batch.LOCK).read_text(errors="replace"))
        if holder.pid == process.pid:
            return holder
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def _gradebook_ids(out: Path) -> list[str]:
    with (out / batch.GRADEBOOK).open(newline="") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def _journal_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / batch.JOURNAL).read_text().splitlines()]


def test_a_second_run_refuses_at_once_or_waits_with_wait(tmp_path: Path) -> None:
    folder = _submissions(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / batch.LOCK).write_text("")  # so that _holding can read it from the start
    first = _grade(folder, out)
    holder = _holding(out, first)

    second = _grade(folder, out)
    _, refused = second.communicate(timeout=120)
    assert second.returncode == 2, refused
    assert f"pid {first.pid}" in refused and holder.host in refused and holder.started in refused
    assert "--wait" in refused and "Traceback" not in refused
    assert first.poll() is None  # it refused while the first one was still grading

    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert sorted(_gradebook_ids(out)) == IDS
    assert sorted(_journal_ids(out)) == IDS

    # --wait: a forced regrade queued behind another forced regrade runs after it, losing nothing
    first = _grade(folder, out, "--force")
    _holding(out, first)
    waiting = _grade(folder, out, "--force", "--wait")
    first_out, first_err = first.communicate(timeout=600)
    waited_out, waited_err = waiting.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert waiting.returncode == 0, waited_err
    assert f"in use by another grader run (pid {first.pid}" in waited_out
    assert "waiting for it to finish" in waited_out
    assert "graded 2, failed 1" in first_out and "graded 2, failed 1" in waited_out
    assert sorted(_gradebook_ids(out)) == IDS  # one row per submission
    assert Counter(_journal_ids(out)) == {ident: 3 for ident in IDS}  # every grading kept
    assert (out / batch.LOCK).read_text() == ""  # released: nobody is named any more


def _row(ident: str) -> batch.JournalEntry:
    """A journal line as a run writes it for an unreadable file (no report), padded."""
    return batch.JournalEntry(
        id=ident,
        status="unreadable",
        score=0.0,
        max_score=0.0,
        checks=[],
        error="x" * 300,
        source=ident,
        note="",
        execution_time=0.0,
        report=False,
    )


def _append_lines(path: str, count: int, ready: Any) -> None:
    out = Path(path)
    with batch.out_dir_lock(out):
        journal = batch.Journal(out / batch.JOURNAL)
        ready.set()
        for index in range(count):
            journal.append(_row(f"s{index:05d}"))


def test_readers_and_refused_runs_never_cut_the_journal_of_the_writer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    count = 3000
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writer = context.Process(target=_append_lines, args=(str(out), count, ready))
    writer.start()
    assert ready.wait(60)
    refusals = reads = 0
    while True:
        entries = batch.read_journal(out / batch.JOURNAL)
        reads += 1
        assert all(entry == _row(ident) for ident, entry in entries.items())
        try:  # a second run gets nowhere near the journal while the writer holds it
            batch.run_batch([], out)
        except batch.OutDirBusy:
            refusals += 1
        else:
            break  # the writer is done and released the lock
    writer.join()
    assert writer.exitcode == 0
    assert reads > 1 and refusals > 1
    lines = (out / batch.JOURNAL).read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"s{i:05d}" for i in range(count)]


def test_a_line_being_written_is_skipped_by_readers_and_cut_only_under_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / batch.JOURNAL
    torn = b'{"id": "a", "score": 1}\n{"id": "b", "sco'
    path.write_bytes(torn)
    assert list(batch.read_journal(path)) == ["a"]
    assert path.read_bytes() == torn  # reading changed nothing
    with batch.out_dir_lock(tmp_path):
        journal = batch.Journal(path)  # the writer repairs
        journal.append(batch.JournalEntry(id="c", score=3))
    appended = batch.JournalEntry(id="c", score=3).line()
    assert path.read_bytes() == b'{"id": "a", "score": 1}\n' + appended
