"""Several assignments installed at once are first-class: ``./dev grade`` grades each one's
examples with that assignment named (``grader/authoring/examples.py`` plans it, the ``dev``
script runs each line), and each has its own hidden seed.

Installed here as a course would: beside the engine (``BUILT_IN``, a temporary folder holding the
shipped course, a copy of the Keras fixture course and of the tiny course).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader import assignment as assignment_module
from grader import secret
from grader.assignment import discover
from grader.authoring import examples
from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An assignments folder with three assignments: the shipped one (linked, so its examples
    are the checkout's), and copies of the Keras course and the tiny course."""
    folder = tmp_path / "assignments"
    folder.mkdir()
    (folder / "object_localization").symlink_to(ROOT / "assignments" / "object_localization")
    for name in ("keras_course", "tiny_course"):
        # a folder name of its own: its package must not be the fixture's, which other tests
        # of this process may have imported (one process, one module per package name)
        copy = folder / f"installed_{name}"
        shutil.copytree(FIXTURES / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(assignment_module, "BUILT_IN", folder)
    monkeypatch.delenv("GRADER_ASSIGNMENT", raising=False)  # the suite's default: not here
    return folder


def test_dev_grade_plans_each_installed_assignments_examples_into_its_own_folder(
    installed: Path, tmp_path: Path
) -> None:
    assert sorted(discover()) == ["keras_course", "object_localization", "tiny_course"]
    out = tmp_path / "reports"
    plan = {g.assignment.name: g for g in examples.plan(out)}
    assert sorted(plan) == ["keras_course", "object_localization", "tiny_course"]
    assert all(g.out == out / name for name, g in plan.items())
    shipped = plan["object_localization"].submissions
    assert shipped == (ROOT / "examples" / "submissions",)  # its manifest's examples folder
    keras = plan["keras_course"]  # no examples folder: its solution and its learner notebook
    assert keras.submissions == (
        installed / "installed_keras_course" / "solution.ipynb",
        installed / "installed_keras_course" / "learner.ipynb",
    )
    (chosen,) = examples.plan(out, "keras_course")  # --assignment NAME: that one, into OUT
    assert chosen.assignment.name == "keras_course" and chosen.out == out


def test_a_default_assignment_is_graded_alone(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_ASSIGNMENT", "tiny_course")
    (chosen,) = examples.plan(tmp_path / "reports")
    assert chosen.assignment.name == "tiny_course" and chosen.out == tmp_path / "reports"


def test_the_plan_the_dev_script_reads_names_the_assignment_of_each_line(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert examples.main(["--out", str(tmp_path / "r")]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    folders = {Path(line[0]).name: Path(line[1]) for line in lines}  # folder -> its output
    assert folders == {
        "installed_keras_course": tmp_path / "r" / "keras_course",  # by its manifest's name
        "installed_tiny_course": tmp_path / "r" / "tiny_course",
        "object_localization": tmp_path / "r" / "object_localization",
    }
    assert examples.main(["--assignment", "no_such_course"]) == 2
    err = capsys.readouterr().err
    assert "offered are keras_course, object_localization, tiny_course" in err


def test_each_planned_grading_runs_with_its_assignment(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `./dev grade` runs for one line (the tiny course's: it grades in seconds) exits 0
    where `grader grade` alone would ask which assignment (exit 2)."""
    (tiny,) = [g for g in examples.plan(tmp_path / "r") if g.assignment.name == "tiny_course"]
    submissions = [str(path) for path in tiny.submissions]
    assert main(["grade", *submissions, "--out", str(tmp_path / "x")]) == 2
    assert "several assignments" in capsys.readouterr().err
    args = ["--assignment", str(tiny.assignment.folder), "--out", str(tiny.out), "-j", "1"]
    assert main(["grade", *submissions, *args]) == 0
    scores = {}
    for path in tiny.out.glob("*/results.json"):
        document = json.loads(path.read_text())
        assert document["extra_data"]["assignment"] == "tiny_course"
        scores[document["extra_data"]["status"], document["score"]] = path
    assert sorted(scores) == [("graded", 0.0), ("graded", 5.0)], sorted(scores)


def test_each_installed_assignment_draws_its_own_hidden_inputs(installed: Path) -> None:
    """One course secret, one source: each assignment's name keys its own seed."""
    seeds = {
        name: secret.submission_seed(20261125, "def f(): pass\n", assignment=name)
        for name in discover()
    }
    assert len(set(seeds.values())) == 3
