"""``grader check --training``: the self-check trains the model in process with the assignment's
training checks where the install has them (a checkout: the hidden one, on the inputs grading
would use), and says why not where it has none (the learner bundle ships no hidden check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring import release, selfcheck
from grader.learner import main as learner_main

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "tests" / "fixtures" / "keras_course"


def test_the_self_check_trains_the_solution_here_and_scores_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["check", str(COURSE / "solution.ipynb"), "--assignment", str(COURSE), "--training"]
    assert learner_main(argv) == 0
    out = capsys.readouterr().out
    assert "public checks: 8/8 points" in out
    assert "training: after training within the budget, accuracy on hidden test images (4/4)" in out
    assert "training checks (here, not a grade): 4/4 points, 1/1 passed" in out


def test_without_a_model_the_training_check_fails_here_too() -> None:
    results = selfcheck.check_notebook(COURSE / "learner.ipynb", "training", COURSE, training=True)
    assert [r.part for r in results] == ["training"] and not results[0].passed


#: The bundle's command, with the secret module out of reach as on a learner's machine (an
#: editable install of this checkout would otherwise lend it to the bundle's package).
BUNDLE_CHECK = (
    "import sys; sys.modules['grader.secret'] = None; sys.path.insert(0, '.'); "
    "from grader.learner import main; sys.exit(main(sys.argv[1:]))"
)


def test_the_bundle_says_why_it_cannot_train(tmp_path: Path) -> None:
    release.build_release(tmp_path, str(COURSE))
    assert not (tmp_path / "grader" / "secret.py").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADER_ASSIGNMENT")}
    run = subprocess.run(
        [sys.executable, "-c", BUNDLE_CHECK, "check", "learner.ipynb", "--training"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "keras_course has no training check here" in run.stderr
    assert "Submit your notebook to have your model trained and scored" in run.stderr
