"""`grader release`: the learner bundle self-checks and holds nothing hidden."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.objloc import SOLUTION_NOTEBOOK
from tests.test_assign import solution_lines

ROOT = Path(__file__).resolve().parent.parent


def hidden_names():
    names = set()
    for path in (ROOT / "assignments" / "object_localization" / "checks" / "hidden").glob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        }
    return names


def test_bundle_has_nothing_hidden_and_its_self_check_works(tmp_path):
    bundle = tmp_path / "bundle"
    run = subprocess.run(
        [sys.executable, "-m", "grader", "release", "--out", str(bundle)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert (bundle / "object_localization.ipynb").exists()
    names = {p.relative_to(bundle).as_posix() for p in files}
    assert not any(
        "reference" in n or "hidden" in n or "solution" in n or "sandbox" in n for n in names
    ), names
    text = "\n".join(p.read_text(errors="replace") for p in files)
    secrets = solution_lines(nbformat.read(SOLUTION_NOTEBOOK, as_version=4))
    assert [line for line in secrets if line in text] == []
    assert [name for name in hidden_names() if name in text] == []
    assert "BEGIN SOLUTION" not in text
    # the seed's variable is named only where the engine declares its variables (no value)
    named = {p.relative_to(bundle).as_posix() for p in files if "HIDDEN_SEED" in p.read_text()}
    assert named <= {"grader/environment.py"}, named
    for path in (p for p in files if p.suffix == ".py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                imported = [getattr(node, "module", None) or ""] + [
                    alias.name for alias in node.names
                ]
                assert not any(
                    word in m for m in imported for word in ("reference", "hidden", "sandbox")
                ), (path, imported)

    # The bundle's own grader package runs the public checks, through the learner's command.
    where = subprocess.run(
        [sys.executable, "-c", "import grader; print(grader.__file__)"],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith(str(bundle)), where.stdout
    untouched = subprocess.run(
        # `python -m grader` in the bundle is the learner's command, as `grader` once installed
        [sys.executable, "-m", "grader", "check", "object_localization.ipynb", "--part", "IoU"],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert untouched.returncode == 1 and "NotImplementedError" in untouched.stdout, (
        untouched.stdout + untouched.stderr
    )
    shutil.copyfile(ROOT / "examples" / "submissions" / "ada_complete.ipynb", bundle / "done.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", "done.ipynb"],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"public checks: (\d+)/\1 points", done.stdout), done.stdout  # full marks
