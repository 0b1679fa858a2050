"""The adaptation of an original-course notebook to the stubs' contract (tests/learner_notebooks.py).

What the lead relies on when reading its table: the adapted notebook declares every part as the
stubs do (so no check fails on the contract), and keeps the learner's logic (so every check that
still fails, fails on their code). Fast: ingestion and ASTs only, no grading.
"""

from __future__ import annotations

import ast
import inspect
import re

import nbformat
import pytest

from grader.assignment import PartKind
from tests.learner_notebooks import adapt
from tests.objloc import COURSE, ingest_notebook
from tests.test_original_course import ORIGINAL


def adapted(replacements: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(ORIGINAL, as_version=4)
    for cell in nb.cells:
        for old, new in (replacements or {}).items():
            cell.source = cell.source.replace(old, new)
    return adapt(nb, COURSE)


def definitions(nb: nbformat.NotebookNode) -> dict[str, ast.AST]:
    ingested = ingest_notebook(nb)
    assert ingested.missing == ()
    return {name: ast.parse(info.source).body[0] for name, info in ingested.parts.items()}


def binds(init: ast.FunctionDef, stub_params: str) -> bool:
    """Whether the learner's ``__init__`` takes every argument of the stub's, by name."""
    namespace: dict = {}
    exec(f"def init({ast.unparse(init.args)}): pass", namespace)
    stub: dict = {}
    exec(f"def init({stub_params}): pass", stub)
    wanted = [p for p in inspect.signature(stub["init"]).parameters.values() if p.name != "self"]
    try:
        inspect.signature(namespace["init"]).bind(
            None, **{p.name: None for p in wanted if p.kind is p.POSITIONAL_OR_KEYWORD}
        )
    except TypeError:
        return False
    return True


def test_the_adapted_notebook_declares_every_part_as_the_stubs_do() -> None:
    found = definitions(adapted())
    for part in COURSE.parts:
        node = found[part.name]
        if part.kind in (PartKind.CLASS, PartKind.METRIC, PartKind.CALLBACK):
            assert isinstance(node, ast.ClassDef), part.name
            init = next(m for m in node.body if getattr(m, "name", "") == "__init__")
            stub_params = re.search(r"__init__\((.*)\)$", part.stub)[1]
            assert binds(init, stub_params), (part.name, ast.unparse(init.args))
        else:
            assert isinstance(node, ast.FunctionDef), part.name
            assert f"{node.name}({ast.unparse(node.args)})" == part.stub


def test_the_seed_replaces_numpys_global_draws_and_reaches_create_example() -> None:
    found = definitions(adapted())
    for name in ("create_example", "data_generator"):
        source = ast.unparse(found[name])
        assert "rng = np.random.default_rng(rng)" in source
        assert "np.random.randint" not in source
    assert "rng.integers(0, 72)" in ast.unparse(found["create_example"])
    assert "create_example(rng=rng)" in ast.unparse(found["data_generator"])


def test_the_learners_logic_is_kept() -> None:
    found = definitions(adapted())
    metric = ast.unparse(found["IoU"])
    assert "tf.math.abs(x2 - x1) * tf.math.abs(y2 - y1)" in metric  # the unclamped area stays
    model = ast.unparse(found["create_model"])
    assert "Dense(9, activation='softmax', name='class_out')" in model
    assert "model.compile(" in model and model.rstrip().endswith("return model")
    callback = ast.unparse(found["ShowTestImages"])
    assert "test(self.model)" in callback  # its own drawing, not the course's
    plot = ast.unparse(found["plot_bounding_box"])
    # the stub's pred_coords=None, the learner's [] where it is None: `len(pred_coords)` still works
    assert "pred_coords = [] if pred_coords is None else pred_coords" in plot
    assert "emoji_tiles[class_id]" in ast.unparse(found["create_example"])


def test_a_model_built_at_top_level_becomes_the_factory() -> None:
    nb = nbformat.read(ORIGINAL, as_version=4)
    nb.cells = [c for c in nb.cells if "def create_model" not in c.source]
    for cell in nb.cells:
        cell.source = cell.source.replace("model = create_model()\n", "")
        if "model = tf.keras.models.Model" in cell.source:
            build = cell.source
    compile_cell = (
        "model.compile(loss={'class_out': 'categorical_crossentropy', 'box_out': 'mse'},\n"
        "              optimizer=tf.keras.optimizers.Adam(lr=1e-3),\n"
        "              metrics={'class_out': 'accuracy', 'box_out': IoU(name='iou')})\n"
    )
    index = next(i for i, c in enumerate(nb.cells) if "class IoU" in c.source)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(compile_cell))
    factory = ast.unparse(definitions(adapt(nb, COURSE))["create_model"])
    assert "model.summary()" in build and "summary" not in factory
    assert "Adam(learning_rate=0.001)" in factory  # Keras 3's name for the rate
    assert factory.rstrip().endswith("return model")


@pytest.mark.parametrize(
    ("renames", "part"),
    [
        ({"class IoU(": "class IOU(", "IoU(name=": "IOU(name=", "super(IoU": "super(IOU"}, "IoU"),
        ({"class ShowTestImages(": "class showTestImages("}, "ShowTestImages"),
    ],
)
def test_a_part_under_a_near_name_takes_the_parts_name(renames: dict, part: str) -> None:
    found = definitions(adapted(renames))
    assert isinstance(found[part], ast.ClassDef)


def test_keras_3_renames_only_what_keras_3_requires() -> None:
    nb = adapted(
        {
            "def reset_state(self):": "def reset_states(self):",
            "self.num_ex.assign(0.0)": "self.num_ex = self.add_weight(name='num_ex', initializer='zeros')",
            "self.iou_value = tf.math.divide": "self.iou = tf.math.divide",
            "return self.iou_value": "return self.iou",
        }
    )
    metric = ast.unparse(definitions(nb)["IoU"])
    assert "def reset_state(self):" in metric and "reset_states" not in metric
    assert "self.num_ex.assign(0.0)" in metric  # add_weight again fails in Keras 3
    assert "self.iou.assign(tf.math.divide(self.total_iou, self.num_ex))" in metric
    assert "self.num_ex.assign_add(1)" in metric  # what already works is untouched


def test_a_misspelt_init_stays_the_learners_and_no_unfinished_stub_is_pasted() -> None:
    nb = adapted({"def __init__(self, **kwargs):": "def _init_(self, **kwargs):"})
    metric = ast.unparse(definitions(nb)["IoU"])
    assert "def _init_(self, **kwargs):" in metric  # their bug, theirs to fix
    assert "NotImplementedError" not in metric and "def __init__" not in metric


def test_the_graded_model_is_the_one_compiled_with_the_graded_metric() -> None:
    nb = nbformat.read(ORIGINAL, as_version=4)
    nb.cells = [c for c in nb.cells if "def create_model" not in c.source]
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "model = tf.keras.models.Model(input_, [class_out, box_out])\n"
            "model.compile(loss='mse', metrics={'box_out': IoU(name='iou')})\n"
            "probe = tf.keras.Sequential([Dense(2)])\nprobe.compile(loss='mse')\n"
        )
    )
    factory = ast.unparse(definitions(adapt(nb, COURSE))["create_model"])
    assert factory.rstrip().endswith("return model") and "probe" not in factory
