"""A grader fault is never the learner's: the worker's own paths cannot collide with a host path
the sandbox shows, and a failure in a step of the grader's (its folder, its start, its imports, the
wire) ends the grading as ``error``, with no score and no message that blames the learner.

Found by a user: a checkout at ``/tmp/learner`` (venv ``/tmp/learner/.venv``) graded the reference
solution 0/100 with status ``graded``, because the worker wrote the learner's source to
``$TMPDIR/learner`` inside the sandbox, which the venv's bind had made a root-owned folder.

A "checkout at a path" is a venv-like folder the sandbox binds there (as it binds the grader's own
venv); the paths are the worker's own, read from the code (``grader.sandbox.paths.worker_paths``).
Each case runs in every confined mode that works here (bubblewrap, Landlock), skipped where not.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assignments.object_localization.checks.hidden import test_training as training
from grader import wire
from grader.grade import grade
from grader.job import GradingJob, GradingOutcome
from grader.results import GradingResult, Status
from grader.sandbox import (
    Limits,
    ProbeError,
    Sandbox,
    bwrap,
    exchange,
    isolation_status,
    landlock_plan,
    paths,
    process,
    rundir,
)
from grader.sandbox.scratch import OWNER_FILE, SCRATCH_PREFIX, UNLOCKED_SECONDS, sweep_scratch
from tests.objloc import SOLUTION_NOTEBOOK

CONFINED = [
    pytest.param(m, marks=pytest.mark.skipif(not ok, reason=why))
    for m in ("bwrap", "landlock")
    for ok, why in [isolation_status(m)]  # type: ignore[arg-type]
]
BWRAP = isolation_status("bwrap")
LIMITS = Limits(address_space_mb=1024, wall_seconds=30, scratch_mb=64)
#: Where the worker keeps its own files (bwrap, the first root it tries), and the folder the
#: learner's source went to before this was fixed.
WORKER_PATHS = [*paths.worker_paths(), "/tmp/learner"]
LEARNER = "def write():\n    import tempfile\n    with tempfile.NamedTemporaryFile('w') as fh:\n        return fh.write('x')\n"


@pytest.fixture
def checkouts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``checkouts.append(path)`` puts a checkout at ``path``: a venv-like folder
    ``path/.venv`` that the sandbox binds as it binds the grader's own venv (made on the host
    where nothing is yet; what was made is removed afterwards)."""
    venvs: list[str] = []
    made: list[Path] = []

    class Checkouts(list):
        def append(self, path: str) -> None:
            venv = Path(path) / ".venv"
            missing = [p for p in (venv, *venv.parents) if not p.exists()]
            try:
                (venv / "bin").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                pytest.skip(f"cannot make a checkout at {path} here: {exc}")
            (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
            for folder in (*missing, venv / "bin"):
                folder.chmod(0o755)
            if missing:
                made.append(missing[-1])  # the outermost folder made
            venvs.append(str(venv))
            super().append(path)

    original = paths._python_binds
    binds = lambda: [*original(), *venvs]  # noqa: E731
    monkeypatch.setattr(bwrap, "_python_binds", binds)
    monkeypatch.setattr(landlock_plan, "_python_binds", binds)
    saved = paths._probe_cache.pop("landlock_reads", None)
    yield Checkouts()
    paths._probe_cache.pop("landlock_reads", None)
    if saved is not None:
        paths._probe_cache["landlock_reads"] = saved
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def _worker_paths(sb: Sandbox) -> dict[str, str]:
    return sb.request("ping", {}, timeout=30).value["paths"]


@pytest.mark.skipif(not BWRAP[0], reason=BWRAP[1])
@pytest.mark.parametrize("where", WORKER_PATHS)
def test_a_checkout_at_a_path_of_the_worker_changes_nothing_for_it(
    checkouts: list[str], where: str
) -> None:
    checkouts.append(where)
    with Sandbox(LEARNER, mode="bwrap", limits=LIMITS, graded_names=["write"]) as sb:
        sb.start()
        mine = _worker_paths(sb)
        assert sb.request("call", {"name": "write"}, timeout=30).value == 1  # its home works
    venv = f"{where}/.venv"
    for name, path in mine.items():  # none of the worker's paths is, holds or lies in the bind
        assert not paths._under(path, venv) and not paths._under(venv, path), (name, path)
    root = str(Path(mine["copy"]).parent)
    assert mine["copy"] == f"{root}/{paths.RT_NAME}"
    assert mine["home"] == mine["scratch"] == mine["cwd"] == f"{root}/{paths.HOME_NAME}"
    learner_folder = Path(mine["learner_file"]).parent
    assert learner_folder.parent == Path(mine["home"])
    assert learner_folder.name.startswith(paths.LEARNER_PREFIX)
    # the list the tests put checkouts at is the worker's real layout
    assert set(paths.worker_paths(root)) >= {root, mine["copy"], mine["home"]}


def test_the_worker_root_avoids_every_path_the_sandbox_shows() -> None:
    first = paths.SANDBOX_ROOT
    assert paths.worker_root(["/usr", "/etc"]) == first
    assert paths.worker_root([f"{first}/rt/.venv"]) == f"{first}-1"
    assert paths.worker_root([first, f"{first}-1/home/x"]) == f"{first}-2"
    assert paths.worker_root([f"{first}-10"]) == first  # a name that only starts the same


def test_a_checkout_named_like_a_scratch_folder_is_never_swept(tmp_path: Path) -> None:
    checkout = tmp_path / f"{SCRATCH_PREFIX}checkout"
    (checkout / ".venv").mkdir(parents=True)
    (checkout / "grader").mkdir()
    with_lock = tmp_path / f"{SCRATCH_PREFIX}project"
    (with_lock / "src").mkdir(parents=True)
    (with_lock / OWNER_FILE).write_text("1\n")  # unlocked, but not a sandbox's folder
    old = time.time() - UNLOCKED_SECONDS - 60
    for folder in (checkout, with_lock):
        os.utime(folder, (old, old))
    ours = tmp_path / f"{SCRATCH_PREFIX}dead"
    (ours / "scratch").mkdir(parents=True)
    (ours / OWNER_FILE).write_text("1\n")
    assert sweep_scratch(tmp_path) == [ours]
    assert checkout.exists() and with_lock.exists()


# --------------------------------------------------------------------------------------------
# Whole gradings: the reference at full marks beside checkouts at the worker's paths; a fault in
# a step of the grader's is `error`, never a score.


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real training check on 40 steps: cheap; its points are not asserted here."""
    monkeypatch.setattr(training, "EPOCHS", 2)
    monkeypatch.setattr(training, "STEPS_PER_EPOCH", 20)


def _not_training(result: GradingResult) -> list[tuple[str, str]]:
    """(name, message) of every check outside the training part that did not pass."""
    return [(c.name, c.message) for c in result.checks if c.part != "training" and not c.passed]


@pytest.mark.parametrize("mode", CONFINED)
def test_the_reference_gets_full_marks_beside_checkouts_at_every_worker_path(
    checkouts: list[str], small_budget: None, mode: str, tmp_path: Path
) -> None:
    for where in WORKER_PATHS:
        checkouts.append(where)
    result = grade(GradingJob.of_file(SOLUTION_NOTEBOOK, sandbox_mode=mode)).result
    assert result.status is Status.GRADED, result.status_message
    assert result.isolation == mode
    assert _not_training(result) == []
    assert any(c.part == "training" for c in result.checks)


def _assert_not_a_verdict(outcome: GradingOutcome, *cause: str) -> None:
    result, document = outcome.result, outcome.results_json.decode()
    assert result.status is Status.ERROR, (result.status, result.status_message)
    assert f'"status": "{Status.ERROR}"' in document
    assert result.score == 0 and all(c.kind == "not_graded" for c in result.checks)
    for check in result.checks:  # nothing in a message is about the learner's code
        assert "your code" not in check.message.lower() and "Hint" not in check.message
    assert "grader itself failed" in result.output and "retried" in result.output
    assert any(word in result.status_message for word in cause), result.status_message


@pytest.mark.parametrize("mode", CONFINED)
def test_an_unwritable_worker_folder_is_a_grader_error(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    original = process.worker_env

    def read_only_scratch(limits: Limits, home: str, marker: str) -> dict[str, str]:
        return {**original(limits, home, marker), "TMPDIR": "/usr"}  # read-only in every mode

    monkeypatch.setattr(process, "worker_env", read_only_scratch)
    outcome = grade(GradingJob.of_file(SOLUTION_NOTEBOOK, sandbox_mode=mode))
    _assert_not_a_verdict(outcome, "before any learner code ran")


@pytest.mark.parametrize("mode", CONFINED)
def test_a_worker_that_cannot_import_its_modules_is_a_grader_error(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    original = rundir.worker_files
    monkeypatch.setattr(
        rundir, "worker_files", lambda: [f for f in original() if not f[1].endswith("/main.py")]
    )
    outcome = grade(GradingJob.of_file(SOLUTION_NOTEBOOK, sandbox_mode=mode))
    _assert_not_a_verdict(outcome, "did not start")


@pytest.mark.parametrize("mode", CONFINED)
def test_a_corrupted_reply_is_a_grader_error(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The reply to the load request arrives with its JSON header garbled on the way."""
    original = exchange.reader
    exchanges = [0]

    def garbling_reader(fd: int, deadline: float):
        exchanges[0] += 1
        read_exact, reads = original(fd, deadline), [0]

        def read(n: int) -> bytes:
            data = read_exact(n)
            reads[0] += 1
            return b"\xff" * n if exchanges[0] == 2 and reads[0] == 2 else data  # ping, load

        return read

    monkeypatch.setattr(exchange, "reader", garbling_reader)
    outcome = grade(GradingJob.of_file(SOLUTION_NOTEBOOK, sandbox_mode=mode))
    _assert_not_a_verdict(outcome, "bad message from the worker")


def test_a_reply_too_large_for_the_wire_is_the_learners_only_when_their_code_made_it() -> None:
    huge = "import numpy as np\ndef big():\n    return [np.zeros(40 << 20, np.uint8)] * 2\n"
    with Sandbox(huge, mode="none", limits=Limits(wall_seconds=30)) as sb:
        with pytest.raises(ProbeError) as info:
            sb.request("call", {"name": "big"}, timeout=30)
        assert info.value.kind == wire.FailureKind.LEARNER_ERROR, info.value
        assert "too large" in info.value.message
