"""A second assignment, graded by the same engine with no change: the tiny course.

``tests/fixtures/tiny_course`` is a deliberately small assignment (one graded function,
``normalise_box``, one public and one hidden check, no TensorFlow). Through the CLI, as a course
would use it, it is generated, graded in the sandbox (the solution, the untouched learner notebook
and a wrong answer), self-checked, released (the bundle's own self-check runs without the
checkout) and batch-graded; and the engine chooses between assignments by name, by folder, beside
the package or through the ``grader.assignments`` entry points.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import assignment as assignment_module
from grader.assignment import ENTRY_POINT_GROUP, AssignmentError, discover, load, resolve
from grader.cli import main
from tests.test_assign import solution_lines

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny_course"
SOLUTION = TINY / "solution.ipynb"
LEARNER = TINY / "learner.ipynb"
TITLE = "Tiny Course: Normalising Boxes"
PUBLIC = "normalise_box: a box in a 100x100 image becomes fractions of the image"
HIDDEN_CHECK = "test_normalise_box_matches_the_reference"


def learner_env() -> dict[str, str]:
    """A learner's machine: no default assignment (the suite's is the shipped course's)."""
    return {k: v for k, v in os.environ.items() if k != "GRADER_ASSIGNMENT"}


def grader_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m grader ARGS`` with this checkout first on the path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
    )


def variant(out: Path, old: str, new: str) -> Path:
    """The solution notebook with ``old`` replaced by ``new`` in its graded cell."""
    nb = nbformat.read(SOLUTION, as_version=4)
    graded = [cell for cell in nb.cells if "graded" in cell.metadata.get("tags", ())]
    assert len(graded) == 1 and old in graded[0].source
    graded[0].source = graded[0].source.replace(old, new)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def wrong_submission(out: Path) -> Path:
    """Width and height swapped: right on the public check's square image, wrong on the hidden
    check's wide one."""
    return variant(out, "[width, height, width, height]", "[height, width, height, width]")


def results(out: Path, ident: str) -> dict:
    return json.loads((out / ident / "results.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `grader grade` run over the solution, the learner notebook and a wrong answer."""
    tmp = tmp_path_factory.mktemp("tiny_graded")
    learner = tmp / "learner.ipynb"
    shutil.copyfile(LEARNER, learner)
    wrong = wrong_submission(tmp / "wrong.ipynb")
    out = tmp / "out"
    run = grader_cli(
        "grade", "--assignment", str(TINY), str(SOLUTION), str(learner), str(wrong), "--out",
        str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 submission(s) of tiny_course" in run.stdout
    return out


# -- the manifest and the learner notebook


def test_the_manifest_declares_the_tiny_course() -> None:
    tiny = load(TINY)
    assert (tiny.name, tiny.title) == ("tiny_course", TITLE)
    assert tiny.part_names == ("normalise_box",) and tiny.parts[0].kind == "function"
    assert (tiny.package, tiny.import_root) == ("tiny_course", TINY.parent)
    assert (tiny.solution, tiny.learner) == (SOLUTION, LEARNER)
    assert len(tiny.hook("known_causes")) == 1
    assert resolve(str(TINY)) == tiny


def test_the_learner_notebook_is_generated_from_the_solution() -> None:
    run = grader_cli("generate", "--assignment", str(TINY), "--check")
    assert run.returncode == 0 and "is up to date" in run.stdout, run.stdout + run.stderr


# -- grading in the sandbox


def test_the_solution_gets_full_marks(graded: Path) -> None:
    document = results(graded, "solution")
    assert (document["score"], document["max_score"]) == (5.0, 5.0)
    extra = document["extra_data"]
    assert extra["assignment"] == "tiny_course" and extra["status"] == "graded"
    assert extra["isolation"] in ("bwrap", "landlock")  # `--sandbox auto`: a real sandbox
    assert document["tests"][0]["name"] == PUBLIC
    assert [(t["number"], t["status"], t["tags"]) for t in document["tests"]] == [
        ("1.1", "passed", ["normalise_box", "passed", "public"]),
        ("1.2", "passed", ["normalise_box", "passed"]),
    ]


def test_the_untouched_learner_notebook_scores_zero_not_attempted(graded: Path) -> None:
    document = results(graded, "learner")
    assert (document["score"], document["max_score"]) == (0.0, 5.0)
    assert document["extra_data"]["assignment"] == "tiny_course"
    for test in document["tests"]:
        assert test["tags"][:2] == ["normalise_box", "not_attempted"], test
        assert "still raises NotImplementedError" in test["output"]


def test_a_wrong_answer_loses_the_hidden_check_with_its_hint(graded: Path) -> None:
    document = results(graded, "wrong")
    assert (document["score"], document["max_score"]) == (2.0, 5.0)
    public, hidden = document["tests"]
    assert public["status"] == "passed" and "public" in public["tags"]
    assert hidden["status"] == "failed" and hidden["tags"] == ["normalise_box", "incorrect"]
    assert "hidden boxes are not normalised as expected" in hidden["output"]
    assert "Hint: divide x by the width (size[0]) and y by the height" in hidden["output"]


def test_the_report_is_the_tiny_course_s(graded: Path) -> None:
    report = (graded / "wrong" / "report.html").read_text()
    assert TITLE in report and "Tiny course: a test fixture of the grader" in report
    assert "Object Localization" not in report and "OpenMoji" not in report
    assert "divide x by the width" in report
    with (graded / "gradebook.csv").open(newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    assert {ident: rows[ident]["score"] for ident in rows} == {
        "learner": "0.0",
        "solution": "5.0",
        "wrong": "2.0",
    }


# -- the self-check: the public check only


def test_the_self_check_runs_the_public_check_only(tmp_path: Path) -> None:
    done = grader_cli("check", "--assignment", str(TINY), str(SOLUTION))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "public checks: 2/2 points, 1/1 passed" in done.stdout
    assert "hidden" not in done.stdout
    untouched = grader_cli("check", "--assignment", str(TINY), str(LEARNER))
    assert untouched.returncode == 1 and "NotImplementedError" in untouched.stdout
    # the swapped axes pass the public check: only grading's hidden check finds them
    wrong = grader_cli("check", "--assignment", str(TINY), str(wrong_submission(tmp_path / "w")))
    assert wrong.returncode == 0 and "1/1 passed" in wrong.stdout, wrong.stdout + wrong.stderr
    no_part = grader_cli("check", "--assignment", str(TINY), str(SOLUTION), "--part", "IoU")
    assert no_part.returncode == 2 and "no part 'IoU' in tiny_course" in no_part.stderr


# -- the learner bundle


def test_the_bundle_ships_the_public_files_only_and_self_checks(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    run = grader_cli("release", "--assignment", str(TINY), "--out", str(bundle))
    assert run.returncode == 0, run.stdout + run.stderr
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    shipped = {f for f in files if f.startswith("assignments/")}
    assert shipped == {
        "assignments/__init__.py",
        *(
            f"assignments/tiny_course/{name}"
            for name in (
                "__init__.py",
                "assignment.yaml",
                "hints.py",
                "checks/__init__.py",
                "checks/public/__init__.py",
                "checks/public/test_public.py",
            )
        ),
    }
    assert {"learner.ipynb", "README.md"} <= files
    assert not any("reference" in f or "hidden" in f or "solution" in f for f in files), files
    assert (bundle / "README.md").read_text() == (TINY / "bundle" / "README.md").read_text()
    text = "\n".join((bundle / f).read_text(errors="replace") for f in files)
    secrets = solution_lines(nbformat.read(SOLUTION, as_version=4))
    assert secrets and [line for line in secrets if line in text] == []
    assert HIDDEN_CHECK not in text and "BEGIN SOLUTION" not in text

    # The bundle's own grader and assignment, without this checkout: -s, PYTHONPATH the bundle.
    def bundled(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-s", *args],
            cwd=bundle,
            capture_output=True,
            text=True,
            env={**learner_env(), "PYTHONPATH": str(bundle)},
        )

    where = bundled(
        "-c",
        "import importlib.util, grader, grader.assignment as a; "
        "print(grader.__file__); print(a.resolve().folder); "
        "print(importlib.util.find_spec('tiny_course'), importlib.util.find_spec('tests'))",
    )
    assert where.stdout.splitlines() == [
        str(bundle / "grader" / "__init__.py"),
        str(bundle / "assignments" / "tiny_course"),
        "None None",
    ], where.stdout + where.stderr
    untouched = bundled("-m", "grader", "check", "learner.ipynb")
    assert untouched.returncode == 1 and "NotImplementedError" in untouched.stdout, (
        untouched.stdout + untouched.stderr
    )
    shutil.copyfile(SOLUTION, bundle / "done.ipynb")
    done = bundled("-m", "grader", "check", "done.ipynb")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "public checks: 2/2 points, 1/1 passed" in done.stdout
    # the course's known_causes hook ships with it: the bundle gives the same hint as grading
    variant(bundle / "list.ipynb", "np.asarray(box, dtype=float) / scale", "box / width")
    listed = bundled("-m", "grader", "check", "list.ipynb")
    assert listed.returncode == 1 and "Hint: a box may arrive as a list" in listed.stdout, (
        listed.stdout + listed.stderr
    )


# -- batch grading


PEEK = """
import os
import numpy as np


def readable(path):
    try:
        with open(path, "rb") as fh:
            fh.read(1)
        return True
    except OSError:
        return False


# GRADED: normalise_box
def normalise_box(box, size):
    seen = [readable(p) for p in [os.__file__, *{paths!r}]]
    return np.array(seen, dtype=float)
"""


def test_a_folder_of_two_is_batch_graded_and_the_sandbox_sees_nothing_private(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copyfile(SOLUTION, folder / "ada.ipynb")
    # a submission that tries to read the course's private files from inside the sandbox (the
    # standard library's os.py is the control: it is readable). Under Landlock a path may still
    # be seen to exist (stat is not confined); its content may not be read.
    private = [TINY / "reference.py", TINY / "checks" / "hidden" / "test_hidden.py", SOLUTION]
    peek = nbformat.v4.new_notebook()
    peek.cells = [nbformat.v4.new_code_cell(PEEK.format(paths=list(map(str, private))))]
    nbformat.write(peek, folder / "peek.ipynb")
    out = tmp_path / "out"
    run = grader_cli("grade", "--assignment", str(TINY), str(folder), "-j", "2", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    with (out / "gradebook.csv").open(newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    assert sorted(rows) == ["ada", "peek"]
    assert {row["status"] for row in rows.values()} == {"graded"}
    assert (rows["ada"]["score"], rows["ada"]["max_score"]) == ("5.0", "5.0")
    assert rows["ada"][f"1.1 {PUBLIC}"] == "2.0"
    public = results(out, "peek")["tests"][0]
    assert "Got: [1.0, 0.0, 0.0, 0.0]" in public["output"], public["output"]
    assert results(out, "peek")["extra_data"]["assignment"] == "tiny_course"


# -- choosing the assignment


def test_an_unknown_assignment_exits_2_naming_those_offered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grade", "--assignment", "no_such_course", str(SOLUTION), "--out", "x"]) == 2
    err = capsys.readouterr().err
    offered = ", ".join(sorted(discover()))  # whatever this checkout installs beside the engine
    assert "no assignment 'no_such_course'" in err and f"offered are {offered}" in err
    assert main(["release", "--assignment", "no_such_course", "--out", str(tmp_path)]) == 2
    assert "no assignment 'no_such_course'" in capsys.readouterr().err
    assert main(["check", "--assignment", "no_such_course", str(SOLUTION)]) == 2
    assert "no assignment 'no_such_course'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _two_courses(root: Path) -> Path:
    """A course folder holding two copies of the tiny course, named tiny_a and tiny_b."""
    for name in ("tiny_a", "tiny_b"):
        shutil.copytree(TINY, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        manifest = root / name / "assignment.yaml"
        manifest.write_text(manifest.read_text().replace("name: tiny_course", f"name: {name}"))
    return root


def test_a_course_with_two_assignments_asks_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRADER_ASSIGNMENT", raising=False)  # no default: the command asks
    monkeypatch.setattr(assignment_module, "BUILT_IN", _two_courses(tmp_path / "course"))
    assert sorted(discover()) == ["tiny_a", "tiny_b"]
    with pytest.raises(AssignmentError, match=r"several assignments \(tiny_a, tiny_b\)"):
        resolve()
    assert resolve("tiny_b").folder == tmp_path / "course" / "tiny_b"
    out = tmp_path / "out"
    assert main(["grade", str(SOLUTION), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "several assignments (tiny_a, tiny_b)" in err and "--assignment NAME" in err
    assert not out.exists()
    monkeypatch.setenv("GRADER_ASSIGNMENT", "tiny_b")  # a course's default: no need to ask
    assert resolve().folder == tmp_path / "course" / "tiny_b"
    monkeypatch.delenv("GRADER_ASSIGNMENT")
    assert main(["check", str(SOLUTION)]) == 2
    assert "several assignments (tiny_a, tiny_b)" in capsys.readouterr().err
    assert main(["release", "--out", str(out)]) == 2
    assert "several assignments" in capsys.readouterr().err and not out.exists()


def test_an_installed_package_is_found_through_its_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.metadata.entry_points
    offered = importlib.metadata.EntryPoint("tiny", "tiny_course", ENTRY_POINT_GROUP)

    def entry_points(**selection):
        if selection.get("group") == ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([offered])
        return real(**selection)

    built_in = sorted(discover())  # whatever this checkout installs beside the engine
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.syspath_prepend(str(TINY.parent))  # as if installed: `tiny_course` imports
    monkeypatch.delenv("GRADER_ASSIGNMENT", raising=False)
    found = discover()
    assert sorted(found) == sorted([*built_in, "tiny_course"]) and "object_localization" in found
    assert found["tiny_course"].folder == TINY and found["tiny_course"].title == TITLE
    assert resolve("tiny_course") == found["tiny_course"]
    with pytest.raises(AssignmentError, match=r"several assignments \(.*object_localization, tiny"):
        resolve()
