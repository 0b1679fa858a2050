"""`grader generate`: the learner notebook is generated, in sync, and holds no solution text."""

import subprocess
import sys

import nbformat
import pytest

from grader.authoring import assign
from tests.objloc import GRADED_PARTS as GRADED
from tests.objloc import LEARNER_NOTEBOOK, SOLUTION_NOTEBOOK


def run_grader(*args):
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True)


def solution_lines(nb):
    """Non-trivial lines that occur only inside solution regions (not also in demo cells)."""
    inside_lines, outside_lines = [], set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside:
                inside_lines.append(line.strip())
            else:
                outside_lines.add(line.strip())
    return [line for line in inside_lines if len(line) > 12 and line not in outside_lines]


def test_checked_in_learner_notebook_is_up_to_date():
    result = run_grader("generate", "--check")
    assert result.returncode == 0, result.stderr


def test_learner_notebook_has_stubs_and_no_solution_text():
    solution = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    learner = nbformat.read(LEARNER_NOTEBOOK, as_version=4)
    text = "\n".join(cell.source for cell in learner.cells)
    hidden = solution_lines(solution)
    assert len(hidden) > 40
    leaked = [line for line in hidden if line in text]
    assert leaked == []
    assert "SOLUTION" not in text
    graded = [c for c in learner.cells if "graded" in c.metadata.get("tags", [])]
    assert [c.source.splitlines()[0] for c in graded] == [f"# GRADED: {name}" for name in GRADED]
    for cell in graded:
        assert "# YOUR CODE HERE\n" in cell.source and "raise NotImplementedError()" in cell.source
    # Same cells, same ids and tags, no outputs.
    assert [c.get("id") for c in learner.cells] == [c.get("id") for c in solution.cells]
    assert all(not c.get("outputs") for c in learner.cells if c.cell_type == "code")


def test_stub_keeps_the_indentation_of_its_region():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
            )
        ]
    )
    out = assign.make_learner_notebook(nb)
    assert (
        out.cells[0].source
        == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )


def test_markdown_solution_blocks_are_removed():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "Why flatten?\n<!-- BEGIN SOLUTION -->\nBecause pooling forgets where.\n<!-- END SOLUTION -->"
            )
        ]
    )
    out = assign.make_learner_notebook(nb)
    assert out.cells[0].source == "Why flatten?\nYOUR ANSWER HERE"


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            [nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2")],
            "cell 1 (code), line 2: BEGIN SOLUTION is never closed",
        ),
        (
            [nbformat.v4.new_markdown_cell("a"), nbformat.v4.new_code_cell("### END SOLUTION")],
            "cell 2 (code), line 1: END SOLUTION without a BEGIN",
        ),
        (
            [nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nsecret\n### END SOLUTION")],
            "cell 1 (markdown), line 1: marker of the wrong kind",
        ),
        (
            [nbformat.v4.new_raw_cell("### BEGIN SOLUTION")],
            "cell 1 (raw): solution markers are only allowed",
        ),
    ],
)
def test_bad_markers_are_refused_naming_the_cell_and_nothing_is_written(tmp_path, cells, message):
    source, out = tmp_path / "solution.ipynb", tmp_path / "learner.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), source)
    result = run_grader("generate", "--solution", str(source), "--out", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("content", [b"", b"{not json", b"\x89PNG\r\n\x1a\n"])
def test_not_a_notebook_is_refused(tmp_path, content):
    source = tmp_path / "solution.ipynb"
    source.write_bytes(content)
    result = run_grader("generate", "--solution", str(source), "--out", str(tmp_path / "out.ipynb"))
    assert result.returncode == 2 and "not a valid Jupyter notebook" in result.stderr
    assert not (tmp_path / "out.ipynb").exists()


def test_check_names_the_first_out_of_date_cell(tmp_path):
    out = tmp_path / "learner.ipynb"
    assert run_grader("generate", "--out", str(out)).returncode == 0
    nb = nbformat.read(out, as_version=4)
    nb.cells[5].source += "\nprint('edited by hand')"
    nbformat.write(nb, out)
    result = run_grader("generate", "--check", "--out", str(out))
    assert result.returncode == 1
    assert "cell 6" in result.stderr
