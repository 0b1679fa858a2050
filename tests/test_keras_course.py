"""A second Keras course, graded by the same engine: ``tests/fixtures/keras_course``.

The course is a single-output classifier of tiny synthetic shapes (``draw_shape``, the
``ClassRecall`` metric made with a constructor argument, ``create_model`` returning one softmax
output, the ``StopAtAccuracy`` callback, a budgeted training with bands). Through the CLI, as a
course would use it: the solution gets full marks in the sandbox, the untouched learner notebook
0, and typical mistakes lose the points of their own part with their hint named. The engine fits
list-output models too (targets as a list), which this course does not need.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.assignment import load
from grader.checking import InProcessSubmission
from tests.test_second_assignment import grader_cli

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "tests" / "fixtures" / "keras_course"
SOLUTION = COURSE / "solution.ipynb"
LEARNER = COURSE / "learner.ipynb"
MAX_SCORE = 24.0

#: Typical mistakes, each an edit of one graded part: (old text, new text).
RESET_KEEPS_COUNTS = ("self.hits.assign(0.0)\n        self.seen.assign(0.0)", "pass")
SIGMOID_OUTPUT = ('activation="softmax", name="shape"', 'activation="sigmoid", name="shape"')
STOPS_THE_CALLBACK = ("self.model.stop_training = True", "self.stop_training = True")


def variant(out: Path, *edits: tuple[str, str]) -> Path:
    """The solution notebook with each (old, new) edit made in its graded cells."""
    nb = nbformat.read(SOLUTION, as_version=4)
    graded = [cell for cell in nb.cells if "graded" in cell.metadata.get("tags", ())]
    for old, new in edits:
        (cell,) = [cell for cell in graded if old in cell.source]
        cell.source = cell.source.replace(old, new)
    nbformat.write(nb, out)
    return out


def results(out: Path, ident: str) -> dict:
    return json.loads((out / ident / "results.json").read_text())


def by_part(document: dict) -> dict[str, list[dict]]:
    parts: dict[str, list[dict]] = {}
    for test in document["tests"]:
        parts.setdefault(test["tags"][0], []).append(test)
    return parts


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `grader grade` run: the solution, the untouched learner notebook, and a notebook with
    three typical mistakes in three parts (a metric that never resets, a sigmoid output, a
    callback that stops itself instead of the fit)."""
    tmp = tmp_path_factory.mktemp("keras_graded")
    learner = shutil.copyfile(LEARNER, tmp / "learner.ipynb")
    mistakes = variant(
        tmp / "mistakes.ipynb", RESET_KEEPS_COUNTS, SIGMOID_OUTPUT, STOPS_THE_CALLBACK
    )
    out = tmp / "out"
    run = grader_cli(
        "grade", "--assignment", str(COURSE), str(SOLUTION), str(learner), str(mistakes),
        "-j", "2", "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 submission(s) of keras_course" in run.stdout
    return out


def test_the_manifest_declares_a_single_output_keras_course() -> None:
    course = load(COURSE)
    assert course.name == "keras_course"
    assert [(p.name, p.kind) for p in course.parts] == [
        ("draw_shape", "function"),
        ("ClassRecall", "metric"),
        ("create_model", "model"),
        ("StopAtAccuracy", "callback"),
    ]
    assert course.groups_after == ("training",)
    assert course.hook("input_scale") is None  # its model rescales the pixels itself


def test_the_learner_notebook_is_generated_from_the_solution() -> None:
    run = grader_cli("generate", "--assignment", str(COURSE), "--check")
    assert run.returncode == 0 and "is up to date" in run.stdout, run.stdout + run.stderr


def test_the_solution_gets_full_marks_in_the_sandbox(graded: Path) -> None:
    document = results(graded, "solution")
    assert [(t["number"], t["status"]) for t in document["tests"] if t["status"] != "passed"] == []
    assert (document["score"], document["max_score"]) == (MAX_SCORE, MAX_SCORE)
    extra = document["extra_data"]
    assert (extra["assignment"], extra["status"]) == ("keras_course", "graded")
    assert extra["isolation"] in ("bwrap", "landlock")
    assert list(by_part(document)) == [
        "draw_shape",
        "ClassRecall",
        "create_model",
        "StopAtAccuracy",
        "training",
    ]


def test_the_untouched_learner_notebook_scores_zero(graded: Path) -> None:
    document = results(graded, "learner")
    assert (document["score"], document["max_score"]) == (0.0, MAX_SCORE)
    for test in document["tests"]:
        assert test["tags"][1] == "not_attempted", test
        assert "still raises NotImplementedError" in test["output"]


def test_each_mistake_loses_its_own_part_s_points_with_its_hint(graded: Path) -> None:
    document = results(graded, "mistakes")
    parts = by_part(document)
    failed = {t["name"].split(":")[0]: t for t in document["tests"] if t["status"] != "passed"}
    assert sorted(failed) == ["ClassRecall", "StopAtAccuracy", "create_model"], failed
    recall, model, callback = (
        failed["ClassRecall"],
        failed["create_model"],
        failed["StopAtAccuracy"],
    )
    assert "after reset_state()" in recall["name"]
    assert "Hint: reset_state leaves the counts as they were" in recall["output"]
    assert "probabilities that sum to 1" in model["name"]
    assert "Hint: the output layer's activation is sigmoid: use softmax" in model["output"]
    assert "stops after its first epoch" in callback["name"]
    assert "Hint: the fit was never stopped" in callback["output"]
    # each hint only where its mistake is
    for test in document["tests"]:
        if test is not callback:
            assert "never stopped" not in test["output"]
        if test is not recall:
            assert "reset_state leaves" not in test["output"]
    # the rest of each part, and the other parts, keep their points
    assert [t["status"] for t in parts["draw_shape"] + parts["training"]] == ["passed"] * 3
    assert document["score"] == MAX_SCORE - 2 - 2 - 2


LIST_OUTPUT_MODEL = """
import keras

def create_model():
    inputs = keras.Input(shape=(16, 16, 1))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = [keras.layers.Dense(3, activation="softmax")(x), keras.layers.Dense(1)(x)]
    model = keras.Model(inputs, outputs)
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"])
    return model

class StopAtAccuracy(keras.callbacks.Callback):
    def __init__(self, target=0.9):
        super().__init__()
"""


def test_a_list_output_model_trains_and_fits_with_a_callback_on_list_targets() -> None:
    namespace = {"__name__": "submission"}
    exec(compile(LIST_OUTPUT_MODEL, "submission", "exec"), namespace)
    submission = InProcessSubmission(namespace, None, load(COURSE))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
    targets = [rng.integers(0, 3, 8), rng.random((8, 1), dtype=np.float32)]
    report = submission.callback(images, targets, epochs=2, steps=1)
    assert (report["model"], report["model_problem"]) == ("yours", "")
    assert len(report["history"]["loss"]) == 2
    trained = submission.train(
        lambda index: (images, targets), images[:5], epochs=2, steps_per_epoch=2, seed=1
    )
    assert trained["steps"] == 4
    assert [np.shape(p) for p in trained["predictions"].values()] == [(5, 3), (5, 1)]
