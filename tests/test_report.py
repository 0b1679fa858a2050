"""The report a learner reads first: who and what was graded on top, then the problems found in
the notebook, each with its graded part and its cell named as Jupyter lets them find it (never a
cell number); pictures legible at the size shown; "Output of your code" only their own; and the
original-course table true of the TensorFlow and Keras installed here."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.object_localization.original_course import DIFFERENCES
from grader.checking import Artifacts
from grader.grade import _cell_names, grade
from grader.job import GradingJob
from grader.results import (
    GradingResult,
    Picture,
    ReportMaterial,
    ScoredCheck,
    array_png,
    render_report,
    to_gradescope,
)
from grader.results.learner_output import learner_output
from grader.results.locations import CellNames, GradedCell, locate
from grader.worker.probes_fit import _render
from tests.objloc import SOLUTION_NOTEBOOK, ingest_notebook
from tests.server import live

ROOT = Path(__file__).resolve().parents[1]
CELL_NUMBER = re.compile(r"\b[Cc]ell \d+\b")


def _result(**fields) -> GradingResult:
    check = ScoredCheck("1.1", "a: a check", "a", 1.0, 0.0, "expected 1, got 0")
    return GradingResult("internal-id-7f3a", [check], 1.0, "", **fields)


def _report(**material) -> str:
    return render_report(_result(), ReportMaterial(**material))


# -- the header ----------------------------------------------------------------------------------


def test_the_header_names_the_learner_and_the_submission_not_an_internal_id():
    result = _result(
        learner="Jane Doe",
        submission_file="object_localization.ipynb",
        graded_at="2026-05-04T10:20:30+00:00",
        submission_sha256="0123456789abcdef" * 4,
    )
    html = render_report(result)
    header = html[html.index("<h1>") : html.index('class="total"')]
    assert "Jane Doe" in header and "object_localization.ipynb" in header
    assert "2026-05-04 10:20:30 UTC" in header and "0123456789ab" in header
    assert "internal-id-7f3a" not in header
    assert "<title>Jane Doe:" in html
    extra = to_gradescope(result)["extra_data"]
    assert extra["learner"] == "Jane Doe"
    assert extra["submission_file"] == "object_localization.ipynb"


def test_grading_fills_the_file_name_and_passes_the_learner_through(tmp_path):
    path = tmp_path / "my notebook (2).ipynb"
    path.write_bytes(b"")  # unreadable: graded at once, without a sandbox
    outcome = grade(GradingJob.of_file(path, learner="Ada Lovelace"))
    result = outcome.result
    assert result.submission_file == "my notebook (2).ipynb"
    assert result.learner == "Ada Lovelace" and result.graded_at.endswith("+00:00")
    header = outcome.report_html.decode().split('class="total"')[0]
    assert "Ada Lovelace" in header and "my notebook (2).ipynb" in header
    stored = dataclasses.replace(GradingJob.of_file(path), file_name="upload.ipynb")
    assert grade(stored).result.submission_file == "upload.ipynb"


# -- the problems, on top, with their part and cell ----------------------------------------------


def _notebook_with_a_problem_after(part: str) -> nbformat.NotebookNode:
    """The solution with a loop, in the cell after ``part``'s graded cell, that changes a
    constant ``part`` uses (ingestion reports it: the grader does not run that loop)."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    (index,) = [i for i, c in enumerate(nb.cells) if c.source.startswith(f"# GRADED: {part}")]
    nb.cells[index + 1].source += "\nfor _ in range(2):\n    MEAN_BOX = MEAN_BOX * 1.0\n"
    return nb


def test_the_problems_open_the_report_with_their_part_and_the_cell_named_not_numbered(tmp_path):
    nb = _notebook_with_a_problem_after("create_model")
    path = tmp_path / "learner.ipynb"
    nbformat.write(nb, path)
    ingested = ingest_notebook(nb)
    (problem,) = [p for p in ingested.problems if p.kind != "not_attempted"]
    names = _cell_names(path.read_bytes(), ingested)
    located = locate(names, problem.message, problem.part, problem.cell_index)
    assert located.part == "create_model"
    assert "the cell after `# GRADED: create_model`" in located.message + located.where
    assert not CELL_NUMBER.search(located.message + located.where)
    html = _report(problems=[located])
    assert html.index('id="problems"') < html.index("Score per part") < html.index("<h2>Checks")
    section = html[html.index('id="problems"') : html.index("Score per part")]
    assert "<strong>create_model</strong>" in section
    assert "the cell after <code># GRADED: create_model</code>" in section


def test_a_cell_is_named_from_the_graded_cells_around_it_or_by_its_first_line():
    heads = ["# Title", "import numpy as np", "x = 1", "# GRADED: f", "y = f(2)", "", "plot()"]
    names = CellNames([GradedCell("f", 3), GradedCell("g", 9, marked=False)], heads)
    assert names.short(3) == "the `# GRADED: f` cell"
    assert names.short(4) == "the cell after `# GRADED: f`"
    assert names.short(6) == "the 3rd cell after `# GRADED: f`"
    assert names.short(9) == "the cell that defines `g`"
    assert names.short(2) == "the cell before `# GRADED: f`"
    assert names.full(4) == "the cell after `# GRADED: f` (it starts `y = f(2)`)"
    assert names.full(3) == "the `# GRADED: f` cell"
    alone = CellNames([], heads)
    assert alone.short(1) == "the cell that starts `import numpy as np`"
    text = "Cell 5, line 2 sets `x`, which cell 4 defines; cell 99 is not a cell here"
    assert names.in_text(text) == (
        "The cell after `# GRADED: f`, line 2 sets `x`, which the `# GRADED: f` cell defines; "
        "cell 99 is not a cell here"
    )


# -- pictures legible at the size shown ------------------------------------------------------------


def _figure(width: float, height: float, dpi: float):
    from grader.results import pyplot

    figure = pyplot().figure(figsize=(width, height), dpi=dpi)
    figure.suptitle("epoch 5: green is the truth, red the prediction", fontsize=10)
    return figure


def test_the_callbacks_figure_keeps_its_resolution_and_a_big_one_is_redrawn_not_decimated():
    assert _render(_figure(12, 3, 100)).shape == (300, 1200, 3)  # as drawn: every pixel
    big = _render(_figure(24, 6, 100))  # 2400 px wide: drawn again at half the dpi
    assert big.shape == (300, 1200, 3)
    assert np.array_equal(big, _render(_figure(24, 6, 50)))  # the same as drawing it at 50 dpi


def test_pictures_are_shown_at_their_own_size():
    png = array_png(np.zeros((300, 1200, 3), np.uint8))
    picture = Picture("Your callback's last figure", "", "figure", png)
    assert picture.size == (1200, 300)
    html = _report(pictures={"callback": picture})
    assert 'width="1200" height="300"' in html


# -- only the learner's output -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tensorflow_start_up() -> str:
    """What TensorFlow prints on its own on this machine: its import and first operation."""
    run = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and run.stdout.strip() == "3.0", run.stderr[-2000:]
    assert run.stderr.strip(), "TensorFlow printed nothing here: nothing to filter"
    return run.stderr


LEARNER_LINES = [
    "tensorflow version check: ok",
    "WARNING: my model is big",
    "I think 0000 is a fine seed",
    "epoch 1: loss 0.25 (TensorFlow says hi)",
]


def test_tensorflows_own_start_up_lines_are_not_the_learners_output(tensorflow_start_up):
    assert learner_output(tensorflow_start_up).strip() == ""
    mixed = "\n".join(
        f"{mine}\n{theirs}"
        for mine, theirs in zip(LEARNER_LINES, tensorflow_start_up.splitlines(), strict=False)
    )
    assert learner_output(mixed).splitlines() == LEARNER_LINES


def test_the_report_shows_the_learners_output_without_tensorflows(tensorflow_start_up):
    captured = tensorflow_start_up + "\n".join(LEARNER_LINES) + "\n"
    html = _report(artifacts=Artifacts(captured_output=captured))
    shown = html[html.index("Output of your code") :]
    assert all(line in shown for line in LEARNER_LINES)
    assert "absl" not in shown and "cuda" not in shown.lower() and "oneDNN" not in shown


_HELD_BACK = """
import sys
from grader.authoring.selfcheck import library_lines_held_back

with library_lines_held_back():
    import tensorflow as tf

    float(tf.reduce_sum(tf.ones(3)))
    print("WARNING: tensorflow is slow today", file=sys.stderr)
"""


def test_the_self_check_holds_back_tensorflows_lines_and_passes_the_learners_on():
    run = subprocess.run(
        [sys.executable, "-c", _HELD_BACK], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0 and run.stderr == "WARNING: tensorflow is slow today\n", run.stderr


def test_grader_check_shows_no_tensorflow_start_up_line():
    """The solution's imports start TensorFlow in this process (unfiltered, it prints the lines
    of ``tensorflow_start_up`` to the terminal)."""
    run = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(SOLUTION_NOTEBOOK), "--part", "IoU"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "[PASS]" in run.stdout and "[FAIL]" not in run.stdout, run.stdout
    assert learner_output(run.stderr) == run.stderr, run.stderr


# -- the original-course table, true of what is installed ------------------------------------------

_IDIOMS = """
import json, sys
import numpy as np
import tensorflow as tf
import keras

inputs = keras.Input((4,))
model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
model.compile(optimizer="adam", loss="mse")


def batches():
    while True:
        yield np.zeros((2, 4), "float32"), np.zeros((2, 2), "float32")


failed = {}
for code in json.loads(sys.argv[1]):
    try:
        exec(code, {"tf": tf, "keras": keras, "np": np, "model": model, "batches": batches})
        failed[code] = ""
    except Exception as exc:
        failed[code] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def test_every_idiom_the_table_calls_gone_fails_and_every_one_it_says_works_works():
    rows = list(DIFFERENCES.values())
    gone = [idiom for row in rows for idiom in row.gone]
    works = [idiom for row in rows for idiom in row.works]
    assert len(gone) >= 5 and len(works) >= 6
    for row in rows:  # each idiom verified is one the row shows
        text = f"{row.original} {row.here} {row.line}"
        for idiom in (*row.gone, *row.works):
            assert idiom.shown.strip("`") in text, idiom.shown
    run = subprocess.run(
        [sys.executable, "-c", _IDIOMS, json.dumps([i.code for i in gone + works])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    failed = json.loads(run.stdout.strip().splitlines()[-1])
    assert [i.shown for i in gone if not failed[i.code]] == []  # said gone, yet works
    assert {i.shown: failed[i.code] for i in works if failed[i.code]} == {}  # said to work


# -- in a browser: pictures at their own size on a desktop, nothing wider than a phone -------------


@pytest.mark.skipif(bool(live.chromium_missing()), reason=live.chromium_missing() or "")
def test_in_a_browser_pictures_show_at_their_size_and_nothing_scrolls_sideways_on_a_phone(
    tmp_path,
):
    png = array_png(np.full((300, 1200, 3), 200, np.uint8))
    long_line = "bias_initializer=keras.initializers.Constant(" + "x" * 80 + "),"
    check = ScoredCheck("1.1", "a: a check", "a", 1.0, 0.0, f"Traceback:\n    {long_line}")
    located = locate(CellNames([GradedCell("a", 3)]), f"Cell 5, line 1: {long_line}", "a", 4)
    result = GradingResult("s", [check], 1.0, "")
    material = ReportMaterial(
        pictures={"callback": Picture("Your callback's last figure", "", "figure", png)},
        problems=[located],
    )
    path = tmp_path / "report.html"
    path.write_text(render_report(result, material), encoding="utf-8")
    with live.browser() as chromium:
        desk = chromium.new_page(viewport={"width": 1400, "height": 900})
        desk.goto(path.as_uri())
        assert desk.evaluate("document.querySelector('figure.picture img').clientWidth") == 1200
        phone = live.phone_page(chromium)
        phone.goto(path.as_uri())
        assert live.horizontal_overflow(phone) <= 0
        assert live.accessibility_problems(phone) == []
