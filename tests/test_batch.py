"""Batch grading (grader.batch + `grader grade`): discovery and ids, LMS zips, the journal and
resume (also after kill -9), outputs, parallel and Dask runs. Only cheap submissions: the untouched
learner notebook (score 0 in a few seconds), a corrupt file and a non-notebook."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from grader import __version__, batch
from grader.cli import main
from grader.sandbox import Limits
from grader.status import Status

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "assignments" / "object_localization.ipynb"
PYTHON = sys.executable


def _class_folder(root: Path) -> Path:
    """alice.ipynb, bob/ (a learner folder: notebook + data file), broken.ipynb, a stray text file."""
    folder = root / "class"
    (folder / "bob").mkdir(parents=True)
    shutil.copy(STUB, folder / "alice.ipynb")
    shutil.copy(STUB, folder / "bob" / "my_work.ipynb")
    (folder / "bob" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "broken.ipynb").write_text('{"cells": [')
    (folder / "readme.txt").write_text("not a submission")
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(STUB, folder / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    return folder


def _lms_zip(path: Path) -> Path:
    """A Moodle-style and Canvas-style export with a traversal name and a zip bomb in it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(STUB, "Jane Doe_12345_assignsubmission_file_/object_localization.ipynb")
        zf.writestr("Jane Doe_12345_assignsubmission_file_/notes.txt", "mine")
        zf.writestr("doejohn_23456_67890_object_localization.ipynb", b"\x00\x01 not json")
        zf.writestr("../../escape.ipynb", '{"cells": []')
        zf.writestr("bomb.ipynb", b"\0" * (8 << 20))
        zf.writestr("__MACOSX/._bomb.ipynb", b"junk")
    return path


def _gradebook(out: Path) -> list[dict[str, str]]:
    with (out / "gradebook.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _journal_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / "journal.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------------
# ids and discovery


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Jane Doe_12345_assignsubmission_file_", "object_localization.ipynb"), "Jane_Doe_12345"),
        (("Assignment 1-99", "José Núñez_7_assignsubmission_file_", "x.ipynb"), "Jose_Nunez_7"),
        (("Jane Doe_12345_assignsubmission_file_object_localization.ipynb",), "Jane_Doe_12345"),
        (("doejane_12345_67890_object_localization.ipynb",), "doejane_12345"),
        (("doejane_LATE_12345_67891_object_localization-1.ipynb",), "doejane_12345"),
        (("bob", "sub", "work.ipynb"), "bob"),
        (("alice smith.ipynb",), "alice_smith"),
        (("<script>.ipynb",), "script"),
    ],
)
def test_learner_key_gives_stable_ids_from_lms_names(parts: tuple[str, ...], expected: str) -> None:
    assert batch.learner_key(parts)[0] == expected


def test_folder_discovery_one_submission_per_notebook_or_learner_folder(tmp_path: Path) -> None:
    items, notes = batch.discover([_class_folder(tmp_path)])
    by_id = {item.id: item for item in items}
    assert sorted(by_id) == ["alice", "bob", "broken"]
    assert by_id["bob"].name == "my_work.ipynb"  # the folder is the learner, the notebook is graded
    assert any("readme.txt" in note and "ignored" in note for note in notes)


def test_duplicate_ids_are_reported_not_overwritten(tmp_path: Path) -> None:
    folder = _class_folder(tmp_path)
    other = tmp_path / "late"
    other.mkdir()
    shutil.copy(STUB, other / "alice.ipynb")
    items, notes = batch.discover([folder, other])
    ids = [item.id for item in items]
    assert len(ids) == len(set(ids))
    assert "alice" in ids and "alice__2" in ids
    second = next(item for item in items if item.id == "alice__2")
    assert second.source == str(other / "alice.ipynb") and "duplicate id alice" in second.note
    assert any("duplicate id alice" in note for note in notes)


def test_zip_export_is_read_safely(tmp_path: Path) -> None:
    items, _ = batch.discover([_lms_zip(tmp_path / "export.zip")])
    by_id = {item.id: item for item in items}
    assert sorted(by_id) == ["Jane_Doe_12345", "bomb", "doejohn_23456", "escape"]
    assert by_id["Jane_Doe_12345"].read() == STUB.read_bytes()
    assert "zip bomb" in by_id["bomb"].rejected and by_id["bomb"].read() == b""
    assert by_id["escape"].name == "escape.ipynb"  # "../../" is dropped, never followed
    assert not (tmp_path.parent / "escape.ipynb").exists()


def test_zip_caps_refuse_a_huge_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index in range(5):
            zf.writestr(f"s{index}.ipynb", "{}")
    monkeypatch.setattr(batch.discovery, "ZIP_MAX_MEMBERS", 3)
    items, notes = batch.discover([archive])
    assert items == [] and any("refused" in note for note in notes)
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    items, _ = batch.discover([tmp_path / "fake.zip"])
    assert [item.id for item in items] == [
        "fake.zip"
    ]  # a broken zip is graded as a file: a verdict


# --------------------------------------------------------------------------------------------
# journal and outputs


def test_journal_repairs_a_torn_line_and_keeps_the_latest_entry(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"id": "a", "score": 1}\n{"id": "b", "score": 2}\n{"id": "a", "sco')
    with pytest.raises(RuntimeError, match="out_dir_lock"):
        batch.Journal(path)  # a writer without the folder's lock could cut another's line
    with batch.out_dir_lock(tmp_path):
        journal = batch.Journal(path)
        assert {k: v.score for k, v in journal.entries.items()} == {"a": 1, "b": 2}
        journal.append(batch.JournalEntry(id="a", score=3))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["score"] for line in lines] == [1, 2, 3]
    assert batch.read_journal(path)["a"].score == 3


def _entry(ident: str, score: float, message: str = "", error: str = "") -> batch.JournalEntry:
    checks = [
        {
            "number": "1.1",
            "name": "part: one",
            "score": score,
            "max_score": 2.0,
            "message": message,
        },
        {"number": "1.2", "name": "part: two", "score": 1.0, "max_score": 1.0, "message": ""},
    ]
    line = {
        "id": ident,
        "score": score + 1.0,
        "max_score": 3.0,
        "checks": checks,
        "status": "graded",
        "error": error,
        "content_hash": "ab",
        "grader_version": "0.1.0",
        "source": ident,
        "note": "",
        "execution_time": 1.0,
        "report": True,
    }
    return batch.JournalEntry.from_json(line)


def test_gradebook_and_index_escape_learner_text(tmp_path: Path) -> None:
    entries = [
        _entry("alice", 2.0),
        _entry("mallory", 0.0, message="<script>alert(1)</script>", error="=HYPERLINK(1)"),
    ]
    batch.write_class_files(tmp_path, entries)
    rows = _gradebook(tmp_path)
    assert [row["id"] for row in rows] == ["alice", "mallory"]
    assert rows[1]["1.1 part: one"] == "0.0" and rows[1]["error"] == "'=HYPERLINK(1)"
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="mallory/report.html"' in html and "<svg" in html
    assert "1 / 2 (50.0%)" in html  # pass rate of check 1.1
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_plain_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = batch.Progress(2, tty=False, stream=stream)
    progress.update(batch.JournalEntry(id="a", status="graded", score=1, max_score=2))
    progress.update(batch.JournalEntry(id="b", status="unreadable", error="bad", max_score=0))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/2] a: 1/2 graded") and "ETA" in lines[0]
    assert lines[1].startswith("[2/2] b: - unreadable: bad")


def test_a_grader_error_or_timeout_is_one_row_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = _class_folder(tmp_path)
    items, _ = batch.discover([folder])
    out = tmp_path / "out"
    # an invalid sandbox mode makes grading raise inside the grader for real notebooks only
    summary = batch.run_batch(items, out, jobs=2, sandbox_mode="bogus", tty=False)
    statuses = {row["id"]: row["status"] for row in _gradebook(out)}
    assert statuses == {"alice": "error", "bob": "error", "broken": "unreadable"}
    assert summary.statuses == Counter({"error": 2, "unreadable": 1})
    assert "grader error: ValueError" in _gradebook(out)[0]["error"]
    # a rerun retries grader errors but skips what got a verdict
    summary = batch.run_batch(items, out, jobs=2, sandbox_mode="bogus", tty=False)
    assert summary.skipped == 1 and summary.statuses == Counter({"error": 2})
    # a local timeout stops that one submission, not the batch; it is no verdict: no score
    alice = [item for item in items if item.id == "alice"]
    summary = batch.run_batch(alice, out, jobs=1, timeout=0.5, tty=False)
    assert summary.statuses == Counter({"timeout": 1})
    assert "1 not graded to the end" in summary.line() and "rerun to retry" in summary.line()
    rows = {row["id"]: row for row in _gradebook(out)}
    assert rows["alice"]["status"] == "timeout" and "longer than 0.5 s" in rows["alice"]["error"]
    assert rows["alice"]["score"] == rows["alice"]["max_score"] == ""
    assert all(rows["alice"][column] == "" for column in rows["alice"] if column[:1].isdigit())
    assert rows["broken"]["status"] == "unreadable" and rows["broken"]["score"] == "0.0"
    index = (out / "index.html").read_text()
    assert "timeout" in index
    # ...and a rerun grades it again, to the end
    summary = batch.run_batch(alice, out, jobs=1, tty=False)
    assert summary.skipped == 0 and summary.statuses == Counter({"graded": 1})
    assert {row["id"]: row["score"] for row in _gradebook(out)}["alice"] == "0.0"


def test_the_batch_memory_default_is_the_sandbox_default() -> None:
    # declared apart so that the CLI's --help does not import the sandbox; they must agree
    assert Limits().address_space_mb == batch.DEFAULT_MEMORY_MB


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        ("timeout", True),  # the machine cut the grading short
        ("error", True),  # a grader fault, e.g. EAGAIN in the grader
        ("killed", True),  # the grading process died
        ("crashed", False),  # the learner's own code crashed: a verdict
        ("load_error", False),
        ("graded", False),
    ],
)
def test_which_statuses_a_rerun_grades_again(tmp_path: Path, status: str, retried: bool) -> None:
    settings = batch.settings_of("auto", 4096, 7)
    entry = batch.JournalEntry(
        id="a",
        content_hash="h",
        grader_version=__version__,
        settings=settings,
        status=status,
        report=False,
    )
    assert batch.run._up_to_date(entry, "h", settings, tmp_path) is not retried


def test_a_rejected_file_says_so_in_its_results_json() -> None:
    from grader.assignment import resolve
    from grader.grade import grade
    from grader.job import GradingJob

    job = GradingJob(
        assignment=resolve(),
        notebook=b"",
        seed=7,
        file_name="bomb.ipynb",
        rejected="Not graded: a zip bomb?",
    )
    document = json.loads(grade(job).results_json)
    assert document["extra_data"]["status"] == "rejected"
    assert document["extra_data"]["status_message"] == "Not graded: a zip bomb?"
    assert document["score"] == 0.0 and document["max_score"] == 100.0


def test_jobs_carry_the_clients_hidden_seed_to_the_grading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dask worker's own secret (or none) never decides the hidden data: the job's seed does."""
    from grader import job as grading_job
    from grader import secret
    from grader.bounded import run_job
    from grader.grade import seed_fingerprint

    monkeypatch.setenv(secret.SEED_ENV, "111")  # the client's course secret
    shipped: list[grading_job.GradingJob] = []

    class Runner:
        def __init__(self, workers: int, timeout: float) -> None:
            pass

        def run(self, jobs, on_done) -> None:
            for job in jobs:
                shipped.append(job)
                on_done(job, grading_job.GradingOutcome(Status.ERROR, "not graded here"))

    monkeypatch.setattr(batch.run, "LocalPool", Runner)
    items, _ = batch.discover([_class_folder(tmp_path)])
    batch.run_batch(items, tmp_path / "out", tty=False)
    assert [job.seed for job in shipped] == [111, 111, 111]

    monkeypatch.setenv(secret.SEED_ENV, "222")  # the grading machine's environment differs
    [broken] = [job for job in shipped if job.submission_id == "broken"]
    outcome = run_job(broken)  # unreadable: graded with the course seed itself
    assert outcome.status == "unreadable", outcome
    assert outcome.result.seed_fingerprint == seed_fingerprint(111)
    assert outcome.result.submission_file == "broken.ipynb"  # as it was submitted


# --------------------------------------------------------------------------------------------
# the CLI, end to end


def test_cli_grades_folders_and_zips_then_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _class_folder(tmp_path)
    archive = _lms_zip(tmp_path / "export.zip")
    out = tmp_path / "out"
    args = ["grade", str(folder), str(archive), str(folder / "readme.txt"), "--out", str(out)]
    assert main([*args, "-j", "2"]) == 0
    printed = capsys.readouterr().out
    rows = {row["id"]: row for row in _gradebook(out)}
    assert sorted(rows) == [
        "Jane_Doe_12345",
        "alice",
        "bob",
        "bomb",
        "broken",
        "doejohn_23456",
        "escape",
        "readme.txt",
    ]
    assert {rows[i]["status"] for i in ("alice", "bob", "Jane_Doe_12345")} == {"graded"}
    assert rows["bomb"]["status"] == "rejected" and "zip bomb" in rows["bomb"]["error"]
    for ident in ("broken", "doejohn_23456", "escape", "readme.txt"):
        assert rows[ident]["status"] == "unreadable", ident
        assert rows[ident]["score"] == "0.0" and rows[ident]["error"]
    assert rows["alice"]["max_score"] == "100.0" and len(rows["alice"]["content_hash"]) == 64
    alice = json.loads((out / "alice" / "results.json").read_text())["extra_data"]
    # -j 2 gives each sandbox the same thread count as -j 1: a score must not depend on -j
    assert alice["threads"] == Limits().threads
    check_columns = [c for c in rows["alice"] if c[:1].isdigit()]
    assert len(check_columns) >= 10
    for ident in rows:
        document = json.loads((out / ident / "results.json").read_text())
        assert document["extra_data"]["submission_id"] == ident
        assert document["extra_data"]["status"] == rows[ident]["status"], ident
        assert (out / ident / "report.html").read_text().startswith("<!doctype html>")
    assert "graded 3, failed 5" in printed and "skipped 0" in printed
    index = (out / "index.html").read_text()
    assert 'href="Jane_Doe_12345/report.html"' in index
    assert not (tmp_path / "escape.ipynb").exists() and not (out.parent / "escape.ipynb").exists()

    # rerun: nothing to do; a changed submission is regraded; --force regrades everything
    assert main([*args, "-j", "2"]) == 0
    assert "graded 0, failed 0, skipped 8" in capsys.readouterr().out
    shutil.copy(STUB, folder / "broken.ipynb")
    assert main([*args, "-j", "2"]) == 0
    assert "graded 1, failed 0, skipped 7" in capsys.readouterr().out
    assert {row["id"]: row["status"] for row in _gradebook(out)}["broken"] == "graded"
    assert main([*args, "-j", "2", "--force"]) == 0
    assert "skipped 0" in capsys.readouterr().out
    assert len(_gradebook(out)) == 8
    assert Counter(_journal_ids(out))["alice"] == 2 and Counter(_journal_ids(out))["broken"] == 3


def _cheap_folder(root: Path, count: int, slow_from: int | None = None) -> Path:
    """``count`` copies of the learner notebook (quick to grade) and a broken file; from the
    ``slow_from``-th copy on, ``create_example`` sleeps 15 s when the checks call it, so that the
    batch is surely still running a while after its first journal line, however loaded the
    machine."""
    folder = root / "many"
    folder.mkdir()
    for index in range(count):
        target = folder / f"learner{index:02d}.ipynb"
        shutil.copy(STUB, target)
        if slow_from is not None and index >= slow_from:
            nb = json.loads(STUB.read_text(encoding="utf-8"))
            (cell,) = [c for c in nb["cells"] if "GRADED: create_example" in "".join(c["source"])]
            cell["source"] = "# GRADED: create_example\ndef create_example(rng=None):\n"
            cell["source"] += "    import time\n    time.sleep(15)\n"
            target.write_text(json.dumps(nb), encoding="utf-8")
    (folder / "zz_broken.ipynb").write_text("{")
    return folder


def _interruptible() -> None:
    """Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &` in a
    script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-m", "grader", "grade", str(folder), "--out", str(out), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the whole batch can be killed at once
        preexec_fn=_interruptible,
    )


def _wait_for_journal(out: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    journal = out / "journal.jsonl"
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 1:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("no journal line appeared")


def test_kill_9_mid_batch_then_rerun_grades_each_submission_exactly_once(tmp_path: Path) -> None:
    folder = _cheap_folder(tmp_path, 5)
    out = tmp_path / "out"
    process = _start(folder, out, "-j", "1")
    _wait_for_journal(out, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    finished = _journal_ids(out)
    assert 1 <= len(finished) < 6

    rerun = _start(folder, out, "-j", "2")
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"skipped {len(finished)}" in stdout
    ids = [row["id"] for row in _gradebook(out)]
    expected = [f"learner{index:02d}" for index in range(5)] + ["zz_broken"]
    assert sorted(ids) == expected  # none lost, none duplicated
    assert sorted(_journal_ids(out)) == expected  # and each graded exactly once
    assert all((out / ident / "results.json").is_file() for ident in expected)


def test_ctrl_c_stops_cleanly_keeping_what_finished(tmp_path: Path) -> None:
    folder = _cheap_folder(tmp_path, 4, slow_from=1)
    out = tmp_path / "out"
    process = _start(folder, out, "-j", "1")
    _wait_for_journal(out, process)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Rerun the same command" in stderr
    assert "Traceback" not in stderr
    kept = _journal_ids(out)
    assert [row["id"] for row in _gradebook(out)] == sorted(kept)  # rebuilt on the way out


def test_grading_through_a_dask_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("distributed")
    folder = _class_folder(tmp_path)
    out = tmp_path / "out"
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        args = ["grade", str(folder), "--out", str(out), "--scheduler", cluster.scheduler_address]
        assert main(args) == 0
        assert "graded 2, failed 1" in capsys.readouterr().out
        # the wall-clock limit holds on Dask too: a timeout row, no score, the cluster still up
        slow = tmp_path / "slow"
        shutil.copytree(folder / "bob", slow / "bob")
        timed = ["grade", str(slow), "--out", str(tmp_path / "timed"), "--timeout", "0.5"]
        assert main([*timed, "--scheduler", cluster.scheduler_address]) == 0
        assert "failed 1 (timeout 1)" in capsys.readouterr().out
        row = _gradebook(tmp_path / "timed")[0]
        assert row["status"] == "timeout" and row["score"] == ""
    rows = {row["id"]: row["status"] for row in _gradebook(out)}
    assert rows == {"alice": "graded", "bob": "graded", "broken": "unreadable"}
    entries = batch.read_journal(out / "journal.jsonl")
    assert all(entry.host for entry in entries.values())
    document = json.loads((out / "bob" / "results.json").read_text())
    assert document["max_score"] == 100.0
    # 2 single-threaded Dask workers on this host share its cores between their sandboxes
    assert document["extra_data"]["threads"] == Limits().threads  # the same at any -j


def test_cli_refuses_to_grade_without_isolation_unless_none_is_explicit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader import sandbox

    def unavailable(mode: str) -> tuple[str, str]:
        raise sandbox.SandboxUnavailable("no bubblewrap and no Landlock here: apt-get install ...")

    monkeypatch.setattr(sandbox, "preflight", unavailable, raising=False)
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "broken.ipynb").write_text("{")
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out)]) == 2
    assert "no bubblewrap and no Landlock here" in capsys.readouterr().err
    assert not out.exists()  # nothing graded
    assert main(["grade", str(folder), "--out", str(out), "--sandbox", "none"]) == 0
    captured = capsys.readouterr()
    assert "WITHOUT isolation" in captured.err and "graded 0, failed 1" in captured.out


def test_an_unreachable_scheduler_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch.dask_runner, "DASK_CONNECT_TIMEOUT", 2.0)
    folder = _class_folder(tmp_path)
    args = ["grade", str(folder), "--out", str(tmp_path / "out"), "--scheduler"]
    assert main([*args, "tcp://127.0.0.1:9"]) == 2
    assert "grader grade:" in capsys.readouterr().err
