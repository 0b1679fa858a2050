"""Names found, not guessed (grader/ingest/names.py).

What learners rely on: a part they renamed by a typo, a case or an underscore is named in the
part's message with the cell it is in, wherever it is in the notebook; a definition of another
kind (a plotting helper that takes a model, a callback near the metric's name) is never offered;
a misspelt method of a graded class (``_init_``) is named once, as such, not at its symptom.
Fast: no TensorFlow, ingestion only.
"""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.assignment import Part, PartKind
from grader.checking.contract import PartContract
from grader.ingest.names import MAX_EDITS, SHORT, edits, name_distance, normalise
from tests.objloc import COURSE, ingest_notebook

# -- the table the limits were measured on -------------------------------------------------------
# Near names: case, underscores, typos (a letter dropped, doubled, swapped or replaced), a plural
# or a digit, the part's name extended or shortened by at least half.
NEAR = {
    "IoU": ["IOU", "iou", "Iou", "io_u", "IoU_", "IoUs", "Iou2", "IoUMetric", "iou_metric"],
    "ShowTestImages": [
        "showTestImages", "show_test_images", "Show_Test_Images", "ShowTestImage",
        "ShowTestImagess", "ShowTestImages2", "ShowTstImages", "ShowTestImgs",
        "ShowTestImagesCallback",
    ],
    "create_model": [
        "create_Model", "createModel", "CreateModel", "create_model2", "create_modle",
        "creat_model", "create_models", "create_mode",
    ],
    "lr_schedule": [
        "lr_scheduler", "lrschedule", "LR_schedule", "lr_shedule", "lr_shcedule", "lr_schedular",
        "lr_sched", "lr_scheduler_fn",
    ],
    "data_generator": [
        "data_gen", "datagenerator", "dataGenerator", "DataGenerator", "data_generater",
        "data_genrator", "data_generator2", "data_generator_fn",
    ],
    "create_example": [
        "create_examples", "createExample", "create_exemple", "create_exmaple", "create_example2",
    ],
    "plot_bounding_box": [
        "plot_bounding_boxes", "plotBoundingBox", "plot_boundingbox", "plot_bouding_box",
        "plot_bounding_box2",
    ],
}  # fmt: skip
# Unrelated names: other words, however close difflib's ratio finds them (up to 0.85).
UNRELATED = {
    "IoU": ["MeanIoU", "get_iou", "my_iou", "compute_iou", "UoI", "IntersectionOverUnion"],
    "ShowTestImages": [
        "ShowImages", "TestImages", "show_images", "PlotTestImages", "DisplayTestImages",
        "ShowPredictions", "test", "LossHistory",
    ],
    "create_model": [
        "test_model", "plot_model", "get_model", "make_model", "build_model", "model_fn",
        "create_dataset", "create_example", "compile_model", "my_model",
    ],
    "lr_schedule": ["scheduler", "schedular", "learning_rate_schedule", "lr_decay", "get_lr", "lr"],
    "data_generator": [
        "generator", "batch_generator", "train_generator", "test_generator", "gen_data",
        "generate_data", "create_dataset", "make_batches",
    ],
    "create_example": ["make_example", "generate_example", "get_example", "create_image"],
    "plot_bounding_box": [
        "bounding_box", "draw_bounding_box", "plot_bbox", "plot_box", "plot_boxes", "get_box",
        "plot_image",
    ],
}  # fmt: skip


@pytest.mark.parametrize("part", sorted(NEAR))
def test_near_names_are_near_and_unrelated_names_are_not(part: str) -> None:
    assert [n for n in NEAR[part] if name_distance(part, n) is None] == []
    assert [n for n in UNRELATED[part] if name_distance(part, n) is not None] == []


def test_the_limits_keep_a_margin_on_the_table() -> None:
    """Typos need at most the edits allowed (one for a short name, MAX_EDITS otherwise);
    unrelated names need at least one more (a prefix or an extension counts apart)."""

    def over_limit(part: str, name: str) -> int:
        allowed = 1 if len(normalise(part)) <= SHORT else MAX_EDITS
        return edits(normalise(part), normalise(name)) - allowed

    def extends(part: str, name: str) -> bool:
        p, n = normalise(part), normalise(name)
        return n != p and (n.startswith(p) or p.startswith(n))

    typos = [over_limit(p, n) for p, names in NEAR.items() for n in names if not extends(p, n)]
    unrelated = [over_limit(p, n) for p, names in UNRELATED.items() for n in names]
    assert len(typos) > 30 and max(typos) == 0
    assert min(unrelated) == 1


# -- near names in the part's message ------------------------------------------------------------

IMPORTS = "import numpy as np\nimport tensorflow as tf\nimport matplotlib.pyplot as plt\n"
PLOTTING_HELPER = """\
def test_model(model, test_datagen):
    example, label = next(test_datagen)
    plt.imshow(model.predict(example['image'])[1])
"""


def missing(cells: list[str], part: str) -> str:
    """The message the checks show for a missing ``part`` of a notebook made of ``cells`` (and
    one other graded part: a notebook with none is refused as a whole)."""
    other = "lr_schedule(epoch, lr)" if part != "lr_schedule" else "create_example(rng=None)"
    cells = [IMPORTS, *cells, f"def {other}:\n    pass\n"]
    ingested = ingest_notebook(new_notebook(cells=[new_code_cell(c) for c in cells]))
    assert part in ingested.missing
    return PartContract(COURSE, ingested).missing_message(part)


def test_a_class_dropped_by_ingestion_is_still_offered_with_its_cell() -> None:
    cell = "class showTestImages(tf.keras.callbacks.Callback):\n    def on_epoch_end(self, e, logs=None):\n        pass\n"
    message = missing([cell], "ShowTestImages")
    assert "class `showTestImages` in the cell that starts `class showTestImages(" in message
    assert "rename it to `ShowTestImages`" in message
    assert "cell 2" not in message.lower()  # a cell is named by what the learner sees


def test_the_graded_cell_is_named_by_its_header() -> None:
    cell = "# GRADED: IoU\nclass IOU(tf.keras.metrics.Metric):\n    pass\n"
    message = missing([cell], "IoU")
    assert "class `IOU` in the cell `# GRADED: IoU`" in message
    assert "rename it to `IoU`" in message


def test_a_definition_nested_in_a_top_level_block_is_found() -> None:
    cell = (
        "try:\n    def lr_scheduler(epoch, lr):\n        return lr\nexcept Exception:\n    pass\n"
    )
    assert "function `lr_scheduler`" in missing([cell], "lr_schedule")


def test_a_definition_in_a_cell_with_a_syntax_error_is_found() -> None:
    cell = "def create_Model():\n    x = (\n"
    message = missing([cell], "create_model")
    assert "function `create_Model`" in message and "rename it to `create_model`" in message


@pytest.mark.parametrize(
    ("part", "cell"),
    [
        # a plotting helper that takes a model is not create_model(): the stub takes nothing
        ("create_model", PLOTTING_HELPER),
        ("create_model", "def plot_model(model):\n    pass\n"),
        # a function near a class part, and a class of another kind near a metric or a callback
        ("IoU", "def plot_iou(history):\n    pass\n"),
        ("IoU", "def iou(a, b):\n    pass\n"),
        ("IoU", "class IouPlotter(tf.keras.callbacks.Callback):\n    pass\n"),
        ("IoU", "class Iou(tf.keras.losses.Loss):\n    pass\n"),
        ("ShowTestImages", "class ShowTestImage(tf.keras.metrics.Metric):\n    pass\n"),
        ("ShowTestImages", "def show_test_images(model):\n    pass\n"),
        # a class near a function part, a schedule taking one argument where two are passed
        ("lr_schedule", "class LRSchedule(tf.keras.callbacks.Callback):\n    pass\n"),
        ("lr_schedule", "def lr_scheduler(epoch):\n    pass\n"),
        # a helper requiring a keyword-only argument the grader never passes
        ("create_model", "def createModel(*, filters):\n    pass\n"),
        # unrelated words
        ("plot_bounding_box", "def bounding_box(image, coords):\n    pass\n"),
        ("data_generator", "def batch_generator(batch_size=16):\n    yield 1\n"),
    ],
)
def test_no_rename_hint_for_a_definition_of_another_kind_or_an_unrelated_name(
    part: str, cell: str
) -> None:
    message = missing([cell], part)
    assert "rename" not in message and "your notebook defines" not in message


@pytest.mark.parametrize(
    ("part", "cell", "name"),
    [
        ("create_model", "def createModel():\n    pass\n", "createModel"),
        ("create_model", "def create_Model(summary=False):\n    pass\n", "create_Model"),
        ("IoU", "class IOU(tf.keras.metrics.Metric):\n    pass\n", "IOU"),
        ("IoU", "class iou:\n    pass\n", "iou"),  # no base written: its kind is unknown
        ("IoU", "class Base(tf.keras.metrics.Metric):\n    pass\nclass IoUMetric(Base):\n    pass\n", "IoUMetric"),
        ("ShowTestImages", "class show_test_images(keras.callbacks.Callback):\n    pass\n", "show_test_images"),
        ("lr_schedule", "def lr_scheduler(epoch, lr):\n    return lr\n", "lr_scheduler"),
        ("lr_schedule", "def LR_schedule(*args):\n    return 0.1\n", "LR_schedule"),
        ("data_generator", "def data_gen(batch_size=16):\n    yield 1\n", "data_gen"),
        ("create_example", "def create_exemple():\n    pass\n", "create_exemple"),
        ("plot_bounding_box", "def plotBoundingBox(image, gt_coords, pred_coords=[], norm=False):\n    pass\n", "plotBoundingBox"),
    ],
)  # fmt: skip
def test_a_near_name_of_the_parts_kind_is_offered(part: str, cell: str, name: str) -> None:
    message = missing([cell, PLOTTING_HELPER], part)
    assert f"`{name}`" in message and f"rename it to `{part}`" in message
    assert "test_model" not in message


def test_several_near_names_are_listed_nearest_first() -> None:
    cells = ["def create_modle():\n    pass\n", "def createModel():\n    pass\n"]
    message = missing(cells, "create_model")
    assert message.index("`createModel`") < message.index("`create_modle`")
    assert "rename the one that is your `create_model` to `create_model`" in message


def test_a_graded_name_is_never_offered_for_another_part() -> None:
    cells = ["def create_example():\n    pass\n"]  # near create_model? it is a part itself
    assert "your notebook defines" not in missing(cells, "create_model")


def test_the_last_definition_of_a_near_name_is_the_one_named() -> None:
    cells = ["def createModel():\n    pass\n", "x = 1\ndef createModel():\n    return 1\n"]
    message = missing(cells, "create_model")
    assert message.count("`createModel`") == 1 and "starts `x = 1`" in message


# -- misspelt methods -----------------------------------------------------------------------------

METRIC = """\
# GRADED: IoU
class IoU(tf.keras.metrics.Metric):
    def {init}(self, **kwargs):
        super().__init__(**kwargs)
        self.num_ex = self.add_weight(name='num_ex', initializer='zeros')

    def {update}(self, y_true, y_pred, sample_weight=None):
        self.num_ex.assign_add(1)

    def {result}(self):
        return self.num_ex

    def {reset}(self):
        self.num_ex.assign(0)
"""
RIGHT = {"init": "__init__", "update": "update_state", "result": "result", "reset": "reset_state"}


def misspelt(source: str) -> list:
    ingested = ingest_notebook(new_notebook(cells=[new_code_cell(IMPORTS), new_code_cell(source)]))
    return [p for p in ingested.problems if p.kind == "misspelt_method"]


@pytest.mark.parametrize(
    ("method", "wrong", "expected"),
    [
        ("init", "_init_", "__init__"),
        ("init", "__init_", "__init__"),
        ("init", "_init__", "__init__"),
        ("init", "__int__", "__init__"),
        ("init", "__init", "__init__"),
        ("init", "__Init__", "__init__"),
        ("update", "update_states", "update_state"),
        ("update", "updatestate", "update_state"),
        ("result", "results", "result"),
        ("reset", "reset_states", "reset_state"),
    ],
)
def test_a_misspelt_method_of_a_metric_is_named_once_on_its_part(
    method: str, wrong: str, expected: str
) -> None:
    (problem,) = misspelt(METRIC.format(**{**RIGHT, method: wrong}))
    assert problem.part == "IoU" and problem.cell_index == 1
    assert f"`{wrong}`, which is not `{expected}`" in problem.message
    assert (
        problem.line
        == METRIC.format(**RIGHT)
        .splitlines()
        .index(next(ln for ln in METRIC.format(**RIGHT).splitlines() if f"def {expected}(" in ln))
        + 1
    )
    if expected == "__init__":
        assert "Python never calls it, so the attributes it sets do not exist" in problem.message


def test_the_misspelt_method_is_what_the_contract_names() -> None:
    ingested = ingest_notebook(
        new_notebook(
            cells=[
                new_code_cell(IMPORTS),
                new_code_cell(METRIC.format(**{**RIGHT, "init": "_init_"})),
            ]
        )
    )
    contract = PartContract(COURSE, ingested)
    assert "`_init_`, which is not `__init__`" in contract.misspelt_message("IoU")
    assert contract.misspelt_message("ShowTestImages") is None


@pytest.mark.parametrize(
    "extra",
    [
        "    def init(self):\n        pass\n",  # a helper, not an attempt at a dunder
        "    def reset(self):\n        pass\n",  # two edits from result
        "    def results(self):\n        pass\n",  # result is defined too
        "    def get_config(self):\n        return {}\n",
        "    def __call__(self, *args):\n        pass\n",
    ],
)
def test_a_metric_with_every_method_right_has_no_misspelt_method(extra: str) -> None:
    assert misspelt(METRIC.format(**RIGHT) + "\n" + extra) == []


CALLBACK = """\
class ShowTestImages(tf.keras.callbacks.Callback):
    def __init__(self, test_data=None, num_images=6, show=True):
        super().__init__()

    def {hook}(self, epoch, logs=None):
        pass
"""


@pytest.mark.parametrize("wrong", ["on_epoch_ends", "on_epochs_end", "On_Epoch_End", "on_epoch_nd"])
def test_a_misspelt_callback_hook_is_named(wrong: str) -> None:
    (problem,) = misspelt(CALLBACK.format(hook=wrong))
    assert problem.part == "ShowTestImages"
    assert f"`{wrong}`, which is not `on_epoch_end`" in problem.message


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_epoch_begin", "on_train_batch_end"])
def test_every_keras_hook_is_a_hook_not_a_misspelling(hook: str) -> None:
    assert misspelt(CALLBACK.format(hook=hook)) == []


def test_a_function_part_has_no_methods_to_misspell() -> None:
    assert (
        misspelt("def lr_schedule(epoch, lr):\n    def _init_():\n        pass\n    return lr\n")
        == []
    )


def test_the_required_methods_come_from_the_parts_kind_not_its_name() -> None:
    """A course whose metric has another name gets the same verdict."""
    from dataclasses import replace

    from grader.ingest import ingest_notebook as engine_ingest

    rules = replace(
        COURSE.ingest_rules(),
        parts=("Score",),
        specs=(Part("Score", PartKind.METRIC, "class Score(Metric)"),),
    )
    source = METRIC.format(**{**RIGHT, "init": "_init_"}).replace("IoU", "Score")
    ingested = engine_ingest(new_notebook(cells=[new_code_cell(source)]), rules)
    (problem,) = [p for p in ingested.problems if p.kind == "misspelt_method"]
    assert problem.part == "Score"
