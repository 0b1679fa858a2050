"""A way in for the original guided project's learners: a notebook written its way (the fixture,
written for these tests from the course's public description) is recognised, told what differs
with the line to write, and its messages never show a grader frame or a host path."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from assignments.object_localization.original_course import (
    DIFFERENCES,
    HEADING,
    INTRO,
    Difference,
    differences_markdown,
)
from grader.authoring import build_release
from grader.checking import Artifacts, HabitsFound, InProcessSubmission, known_cause, run_checks
from grader.grade import grade
from grader.ingest import habit_rows, habits_text
from grader.job import GradingJob
from grader.results import GradingResult, ReportMaterial, render_report
from tests.objloc import CAUSES, LEARNER_NOTEBOOK, SOLUTION_NOTEBOOK, ingest, ingest_notebook
from tests.test_learner_messages import load, private_scratch  # noqa: F401 (autouse fixture)

ORIGINAL = Path(__file__).parent / "fixtures" / "original_course" / "object_localization.ipynb"
HOST = re.compile(r"/work|\.venv|site-packages|grader/|worker\.py|/tmp/|/root")
FAST_PARTS = ["create_example", "plot_bounding_box", "data_generator", "IoU", "lr_schedule"]


def test_the_original_course_notebook_is_recognised_with_where_each_idiom_is():
    ingested = ingest(ORIGINAL)
    assert ingested.shows_habits
    found = {Difference(h.kind): h for h in ingested.habits}
    assert set(found) == {
        Difference.RNG,
        Difference.MODEL,
        Difference.EMOJIS,
        Difference.PLOT,
        Difference.CALLBACK,
        Difference.SCHEDULE,
        Difference.KERAS3,
    }
    assert "data_generator" in found[Difference.RNG].evidence
    assert (found[Difference.EMOJIS].cell_index, found[Difference.EMOJIS].line) == (2, 1)
    text = habits_text(INTRO, ingested.habits)
    assert "emoji_tiles[class_id]" in text and "rng = np.random.default_rng(rng)" in text


def test_the_course_notebooks_do_not_look_original():
    for path in (SOLUTION_NOTEBOOK, LEARNER_NOTEBOOK):
        assert ingest(path).habits == ()


def test_the_dropped_emoji_loop_is_named_with_what_the_course_provides():
    ingested = ingest(ORIGINAL)
    (problem,) = [p for p in ingested.problems if p.kind == "dropped_statement"]
    assert (problem.cell_index, problem.line, problem.part) == (3, 1, "create_example")
    assert "Cell 4, line 1" in problem.message and "`emojis`" in problem.message
    assert "emoji_tiles" in problem.message


def test_the_set_up_cell_pasted_without_its_tag_says_how_to_keep_it():
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    (setup,) = [
        c for c in nb.cells if "setup" in c.metadata.get("tags", []) and "emoji_tiles" in c.source
    ]
    setup.metadata["tags"] = []  # pasted as text into a cell of the learner's own
    ingested = ingest_notebook(nb)
    (problem,) = [p for p in ingested.problems if "emoji_tiles" in p.message]
    assert problem.kind == "dropped_dependency" and problem.part == "create_example"
    assert "tagged `setup`" in problem.message and "Copy Cells" in problem.message
    # and the check's NameError says where to look
    hint = known_cause("NameError: name 'emoji_tiles' is not defined", CAUSES)
    assert hint is not None and "problem list" in hint


def test_a_loop_filling_a_list_through_a_method_is_reported_too():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("TILES = []\n"),
            nbformat.v4.new_code_cell("for i in range(9):\n    TILES.append(load(i))\n"),
            nbformat.v4.new_code_cell("def create_example(rng=None):\n    return TILES[0]\n"),
        ]
    )
    (problem,) = [p for p in ingest_notebook(nb).problems if p.kind == "dropped_statement"]
    assert "`TILES`" in problem.message and problem.cell_index == 1


def test_the_table_is_in_the_notebooks_first_cell_and_the_bundle_readme(tmp_path):
    table = differences_markdown()
    assert len(table.splitlines()) == 2 + len(DIFFERENCES)
    for path in (SOLUTION_NOTEBOOK, LEARNER_NOTEBOOK):
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and table in first.source
    build_release(tmp_path)
    assert table in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_the_report_opens_with_the_relevant_rows_only_for_an_original_notebook():
    rows = habit_rows(ingest(ORIGINAL).habits)
    habits = HabitsFound(HEADING, INTRO, rows)
    result = GradingResult("s", [], 1.0, "summary")
    html = render_report(result, ReportMaterial(Artifacts(habits=habits)))
    assert "Coming from the original guided project?" in html
    assert html.index('id="habits"') < html.index("Score per part")
    assert "self.figures.append(...)" in html
    assert "Coming from the original" not in render_report(GradingResult("s", [], 1.0, ""))


def _messages_of_in_process_grading(ingested) -> list[str]:
    submission = InProcessSubmission(dict(load(ingested).__dict__), ingested)
    return [r.message for r in run_checks(submission, parts=FAST_PARTS)]


def test_no_check_message_shows_a_grader_frame_or_a_host_path():
    broken = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    for cell in broken.cells:
        cell.source = cell.source.replace("rng.integers(0, NUM_CLASSES)", "rng.integers(0, 99)")
        cell.source = cell.source.replace("ops.cast(y[:, 0]", "ops.cast(y[:, 5]")
    gradings = [ingest(ORIGINAL), ingest(LEARNER_NOTEBOOK), ingest_notebook(broken)]
    messages = [m for ingested in gradings for m in _messages_of_in_process_grading(ingested)]
    assert sum(bool(m) for m in messages) >= 10  # the gradings did fail checks with messages
    leaks = [m for m in messages if HOST.search(m)]
    assert not leaks, leaks


def test_the_original_notebooks_first_errors_name_the_change():
    ingested = ingest(ORIGINAL)
    messages = _messages_of_in_process_grading(ingested)
    text = "\n".join(messages)
    assert "KeyError: 'image'" in text and "emoji_tiles" in text
    # a function without rng is still called (parts graded on their own); the report's opening
    # rows name the signature to write
    assert "data_generator(batch_size=16, rng=None)" in habits_text(INTRO, ingested.habits)
    assert "if pred_coords is not None:" in text
    assert "cell 5, line 6, in create_example" in text


@pytest.mark.slow
def test_grading_the_original_notebook_end_to_end(tmp_path):
    """Sandboxed, with training: the summary opens with the table, every lost check has a
    message, and none shows a grader frame or a host path."""
    document = json.loads(grade(GradingJob.of_file(ORIGINAL)).results_json)
    assert document["output"].startswith("Your notebook looks written for the original")
    lost = [t for t in document["tests"] if t["score"] < t["max_score"]]
    assert lost and all(t["output"] for t in lost)
    assert not HOST.search(json.dumps(document["tests"]))
    (tmp_path / "results.json").write_text(json.dumps(document, indent=1))
