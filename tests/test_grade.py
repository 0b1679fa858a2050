"""Grading one notebook: full marks for the solution, zero with a message for the stub, each typical
mistake loses its points with a hint that names it, the same score twice, Gradescope output."""

import hashlib
import json
import re
import subprocess
import sys

import nbformat
import pytest

from grader.checking import InProcessSubmission, run_checks
from grader.grade import grade, grade_in_detail
from grader.job import GradingJob
from tests.conftest import TEST_HIDDEN_SEED
from tests.objloc import GRADED_PARTS, LEARNER_NOTEBOOK, SOLUTION_NOTEBOOK, ingest_notebook

GRADED_CELL = re.compile(r"^# GRADED: (\w+)")


def solution_with(name: str, old: str, new: str):
    """The solution notebook with edits in one graded cell (``old`` lines separated by `` | ``),
    ingested as the grader would."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if (m := GRADED_CELL.match(c.source)) and m.group(1) == name)
    for before, after in zip(old.split(" | "), new.split(" | "), strict=True):
        assert before in cell.source, f"{before!r} not in {name}"
        cell.source = cell.source.replace(before, after)
    return ingest_notebook(nb)


def checks_for(ingested, part):
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    return {r.name: r for r in run_checks(InProcessSubmission(namespace, ingested), parts=[part])}


MISTAKES = [
    pytest.param(
        "create_example",
        "return image, class_id, (row + MARGIN) / IMAGE_SIZE, (col + MARGIN) / IMAGE_SIZE",
        "return image, class_id, (col + MARGIN) / IMAGE_SIZE, (row + MARGIN) / IMAGE_SIZE",
        "the box label is the top-left corner",
        "rows and columns are swapped",
        id="rows-cols-swapped",
    ),
    pytest.param(
        "create_example",
        "return image, class_id, (row + MARGIN) / IMAGE_SIZE, (col + MARGIN) / IMAGE_SIZE",
        "return image, class_id, row + MARGIN, col + MARGIN",
        "normalised by 144",
        "normalise them",
        id="not-normalised",
    ),
    pytest.param(
        "create_example",
        "return image, class_id, (row + MARGIN) / IMAGE_SIZE, (col + MARGIN) / IMAGE_SIZE",
        "return image, class_id, row / IMAGE_SIZE, col / IMAGE_SIZE",
        "the box label is the top-left corner",
        "margin is missing",
        id="missing-margin",
    ),
    pytest.param(
        "plot_bounding_box",
        "draw.rectangle((col, row, col + BOX_SIDE, row + BOX_SIDE)",
        "draw.rectangle((row, col, row + BOX_SIDE, col + BOX_SIDE)",
        "the true box is green",
        "rows and columns are swapped",
        id="plot-swapped",
    ),
    pytest.param(
        "plot_bounding_box",
        "        pixels = np.clip(pixels * 255.0, 0, 255)",
        "        image *= 255.0\n        pixels = image",
        "the caller's image is not changed",
        "in place",
        id="plot-modifies-input",
    ),
    pytest.param(
        "data_generator",
        'yield {"image": x}, {"class_out": y, "box_out": box}',
        'yield {"image": x}, {"class": y, "box": box}',
        "with the right shapes",
        "must match the model's output names",
        id="wrong-target-keys",
    ),
    pytest.param(
        "data_generator",
        "x = images.astype(np.float32) / 255.0",
        "x = images.astype(np.float32)",
        "with the right shapes",
        "divide by 255",
        id="not-scaled",
    ),
    pytest.param(
        "IoU",
        "inter_h = ops.maximum(0.0, ops.minimum(b1, b2) - ops.maximum(t1, t2)) | "
        "inter_w = ops.maximum(0.0, ops.minimum(r1, r2) - ops.maximum(l1, l2))",
        "inter_h = ops.abs(ops.minimum(b1, b2) - ops.maximum(t1, t2)) | "
        "inter_w = ops.abs(ops.minimum(r1, r2) - ops.maximum(l1, l2))",
        "disjoint 0",
        "IoU not clamped",
        id="iou-unclamped",
    ),
    pytest.param(
        "IoU",
        "        self.total_iou.assign(0.0)\n        self.num_examples.assign(0.0)",
        "        pass",
        "after reset_state()",
        "state not reset",
        id="iou-no-reset",
    ),
    pytest.param(
        "IoU",
        '        self.total_iou.assign_add(ops.sum(iou))\n        self.num_examples.assign_add(ops.cast(ops.shape(iou)[0], "float32"))',
        '        self.total_iou.assign(ops.sum(iou))\n        self.num_examples.assign(ops.cast(ops.shape(iou)[0], "float32"))',
        "mean over every example",
        "only the last batch",
        id="iou-no-accumulation",
    ),
    pytest.param(
        "create_model",
        'layers.Dense(NUM_CLASSES, activation="softmax", name="class_out")',
        'layers.Dense(NUM_CLASSES, name="class_out")',
        "softmax",
        "softmax missing",
        id="softmax-missing",
    ),
    pytest.param(
        "create_model",
        'name="box_out", | model = keras.Model(inputs, {"class_out": class_out, "box_out": box_out})',
        'name="bbox", | model = keras.Model(inputs, [class_out, box_out])',
        "outputs named",
        "name the output layers",
        id="wrong-output-names",
    ),
    pytest.param(
        "lr_schedule",
        "return max(lr * 0.5, MIN_LR)",
        "return lr * 0.5",
        "never below",
        "floor is missing",
        id="no-floor",
    ),
]


@pytest.mark.parametrize(("part", "old", "new", "check", "hint"), MISTAKES)
def test_each_typical_mistake_loses_its_points_with_a_hint_naming_it(part, old, new, check, hint):
    results = checks_for(solution_with(part, old, new), part)
    failing = [r for name, r in results.items() if check in name]
    assert failing, f"no check named like {check!r} in {list(results)}"
    assert all(r.score < r.max_score for r in failing), [(r.name, r.score) for r in failing]
    assert any(hint in r.message for r in failing), [r.message for r in failing]


def test_in_process_solution_passes_every_non_training_check():
    ingested = ingest_notebook(nbformat.read(SOLUTION_NOTEBOOK, as_version=4))
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    parts = list(GRADED_PARTS)
    results = run_checks(InProcessSubmission(namespace, ingested), parts=parts)
    assert {r.part for r in results} == set(parts)
    assert [r.name for r in results if not r.passed] == []


@pytest.fixture(scope="module")
def graded_solution(tmp_path_factory):
    """The reference solution, graded end to end through the sandbox (the CI's one full grading)."""
    folder = tmp_path_factory.mktemp("reports") / "solution"
    outcome = grade(GradingJob.of_file(SOLUTION_NOTEBOOK))
    outcome.write(folder)
    return outcome.result, folder


def test_solution_scores_full_marks_end_to_end(graded_solution):
    result, folder = graded_solution
    assert [(c.name, c.message) for c in result.checks if not c.passed] == []
    assert result.score == result.max_score == 100
    document = json.loads((folder / "results.json").read_text())
    assert document["score"] == document["max_score"] == 100
    for key in ("execution_time", "output", "tests"):
        assert key in document
    for test in document["tests"]:
        assert set(test) >= {
            "name",
            "number",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
            "tags",
        }
        assert test["status"] == "passed"
    extra = document["extra_data"]
    assert extra["isolation"] in ("bwrap", "landlock")
    assert len(extra["submission_sha256"]) == 64
    assert extra["status"] == "graded" and extra["status_message"] == ""
    # the hidden seed is a secret: results.json carries a short fingerprint of it, not the seed
    assert re.fullmatch("[0-9a-f]{8}", extra["seed_fingerprint"])
    assert TEST_HIDDEN_SEED not in json.dumps(document)
    assert {"ingest", "checks", "training"} <= set(extra["timings"])


def test_grading_stores_the_models_fingerprint_on_the_cohorts_images(graded_solution):
    """What ``grader similarity`` compares: the model's layers (from the model audit) and its
    predictions, as built under the cohort's seed, on hidden images drawn from the course secret
    and the assignment, not from the submission (so every submission predicts the same images).
    Built untrained, so it is there with training off too."""
    from grader.checking.submission import cohort_seed
    from grader.results import read_results
    from tests.objloc import COURSE

    result, folder = graded_solution
    found = result.fingerprint
    assert found is not None
    assert read_results((folder / "results.json").read_bytes()).fingerprint == found
    layers = [line.split()[0] for line in found.architecture]
    assert layers.count("Conv2D") == 4 and layers.count("BatchNormalization") == 4
    assert layers.count("Dense") == 3 and found.architecture[0].startswith("InputLayer")
    assert len(found.predictions) == 16 and {len(row) for row in found.predictions} == {9 + 2}
    assert all(abs(sum(row[:9]) - 1) < 0.002 for row in found.predictions)  # probabilities
    tag = hashlib.sha256(f"images:{cohort_seed(int(TEST_HIDDEN_SEED), COURSE.name)}".encode())
    assert found.images == tag.hexdigest()[:8]
    assert 0 < found.tolerance < 0.01
    assert found.expected  # the solution's own model: the expected answer


def test_report_is_self_contained_with_pictures_and_credit(graded_solution):
    _, folder = graded_solution
    html = (folder / "report.html").read_text()
    assert "100 / 100" in html
    assert html.count('src="data:image/png;base64,') >= 3  # predictions, curves, callback figure
    assert not re.search(r'(src|href)="(https?:)?//', html), (
        "the report must make no external requests"
    )
    assert "OpenMoji" in html and "CC BY-SA 4.0" in html
    assert 'name="viewport"' in html
    assert "def create_model" in html  # the learner's graded code


@pytest.mark.slow  # a second full-length training; tests/test_budget.py proves it on a short budget
def test_same_submission_gets_the_same_score_twice(graded_solution):
    first, _ = graded_solution
    second, material = grade_in_detail(GradingJob.of_file(SOLUTION_NOTEBOOK))
    assert [(c.name, c.score, c.message) for c in second.checks] == [
        (c.name, c.score, c.message) for c in first.checks
    ]
    assert material.pictures["predictions"] is not None
    assert second.fingerprint == first.fingerprint  # the same model, the same fingerprint


def test_untouched_learner_notebook_scores_zero_with_a_message_for_every_check(tmp_path):
    result = grade(GradingJob.of_file(LEARNER_NOTEBOOK)).result
    assert result.score == 0 and result.max_score == 100
    for check in result.checks:
        assert check.kind == "not_attempted", (check.name, check.kind)
        assert "NotImplementedError" in check.message or "not attempted" in check.message


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "empty"),
        (b"{broken", "JSON"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a Jupyter notebook"),
    ],
)
def test_bad_files_get_a_clear_zero_and_the_cli_exits_zero(tmp_path, content, phrase):
    path = tmp_path / "learner.ipynb"
    path.write_bytes(content)
    run = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    document = json.loads((tmp_path / "out" / "learner" / "results.json").read_text())
    assert document["score"] == 0 and document["max_score"] == 100
    assert phrase.lower() in document["output"].lower()


def test_grader_check_runs_the_public_checks_and_prints_a_summary():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "check",
            str(LEARNER_NOTEBOOK),
            "--part",
            "lr_schedule",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "[FAIL] 7.1 lr_schedule" in run.stdout and "NotImplementedError" in run.stdout
    assert "public checks: 0/4 points" in run.stdout


def test_one_line_self_check_from_inside_a_notebook(capsys):
    """`from grader.authoring.selfcheck import check; check(part)` runs in the notebook's own namespace."""
    ingested = ingest_notebook(nbformat.read(SOLUTION_NOTEBOOK, as_version=4))
    namespace = {"__name__": "__main__"}
    exec(compile(ingested.source, "notebook", "exec"), namespace)
    exec("from grader.authoring.selfcheck import check\nresults = check('lr_schedule')", namespace)
    assert [r.passed for r in namespace["results"]] == [True, True]
    assert "[PASS] 7.1 lr_schedule" in capsys.readouterr().out
    namespace["lr_schedule"] = lambda epoch, lr: lr  # a learner's wrong redefinition, rerun
    exec("results = check('lr_schedule')", namespace)
    assert [r.passed for r in namespace["results"]] == [True, False]  # holds, never halves
    assert "[FAIL] 7.2" in capsys.readouterr().out
