"""Parts graded on their own: one missing or broken part never costs another's points; a mistake
costs the property it breaks, with a message naming it; alternative correct code gets full marks.

Everything runs in process over the solution notebook with one graded cell replaced (the grader's
checks, part by part; the training check is left out)."""

import ast
import re

import nbformat
import pytest

from grader.checking import InProcessSubmission, run_checks
from tests.objloc import (
    GRADED_PARTS,
    LEARNER_NOTEBOOK,
    SOLUTION_NOTEBOOK,
    STUB_SIGNATURES,
    ingest_notebook,
)

GRADED_CELL = re.compile(r"^# GRADED: (\w+)")


def notebook_with(cells: dict[str, str | None], extra: str = ""):
    """The solution notebook, each named graded cell replaced by new source (None: removed), and
    ``extra`` appended as one more code cell; ingested as the grader would."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    kept = []
    for cell in nb.cells:
        match = GRADED_CELL.match(cell.source)
        name = match.group(1) if match else None
        if name in cells:
            if cells[name] is None:
                continue
            cell.source = cells[name]
        kept.append(cell)
    if extra:
        kept.append(nbformat.v4.new_code_cell(extra))
    nb.cells = kept
    return ingest_notebook(nb)


def solution_cell(name: str) -> str:
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    return next(c.source for c in nb.cells if (m := GRADED_CELL.match(c.source)) and m[1] == name)


def graded(ingested, *parts: str, hints: bool = True):
    """{check name: result} for the checks of ``parts``, run in process (``hints=False``: no
    diagnosis of a failed check, for a test of verdicts only: it runs known mistakes, minutes)."""
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    submission = InProcessSubmission(namespace, ingested)
    if not hints:
        submission.diagnoser = None
    results = run_checks(submission, parts=list(parts))
    assert results, parts
    return {r.name: r for r in results}


def failed(results) -> dict[str, str]:
    return {name: r.message for name, r in results.items() if not r.passed}


# -- one missing or broken part never zeroes another

TOP_LEVEL_MODEL = """
inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
x = layers.Flatten()(layers.AveragePooling2D(8)(inputs))
model = keras.Model(inputs, {"class_out": layers.Dense(9, activation="softmax", name="class_out")(x),
                             "box_out": layers.Dense(2, name="box_out")(x)})
model.compile(optimizer="adam", loss={"class_out": "categorical_crossentropy", "box_out": "mse"})
"""


def test_model_at_top_level_loses_only_the_model_checks_and_says_what_to_write():
    ingested = notebook_with({"create_model": None}, extra=TOP_LEVEL_MODEL)
    results = graded(ingested, "create_model", "ShowTestImages")
    model_checks = {n: r for n, r in results.items() if r.part == "create_model"}
    assert model_checks and all(r.kind == "not_attempted" for r in model_checks.values())
    message = next(iter(model_checks.values())).message
    assert "`create_model()`" in message and "top level" in message and "return model" in message
    assert "rename" not in message  # create_example is another part, not a renamed create_model
    assert failed({n: r for n, r in results.items() if r.part == "ShowTestImages"}) == {}


def test_a_create_model_that_raises_does_not_cost_the_callback():
    broken = solution_cell("create_model").replace(
        "    model.compile(", '    raise ValueError("oops")\n    model.compile('
    )
    results = graded(notebook_with({"create_model": broken}), "ShowTestImages")
    assert failed(results) == {}


def test_a_metric_that_breaks_fit_does_not_cost_the_callback():
    """The original course's metric bug (result() returns a tensor made in update_state) breaks
    a fit of the learner's model; the callback is then run on the stand-in model."""
    iou = solution_cell("IoU").replace(
        "        self.total_iou.assign_add(ops.sum(iou))",
        "        self.last = ops.mean(iou)\n        self.total_iou.assign_add(ops.sum(iou))",
    )
    iou = iou.replace(
        "        return self.total_iou / ops.maximum(self.num_examples, 1.0)",
        "        return self.last",
    )
    results = graded(notebook_with({"IoU": iou}), "ShowTestImages")
    assert failed(results) == {}


# -- signatures: what the grader expected and what it found


def test_create_example_without_rng_costs_only_the_determinism_check():
    source = solution_cell("create_example").replace(
        "def create_example(rng=None):", "def create_example():"
    )
    source = source.replace("rng = np.random.default_rng(rng)", "rng = np.random.default_rng()")
    data_generator = solution_cell("data_generator").replace(
        "create_example(rng)", "create_example()"
    )
    results = graded(
        notebook_with({"create_example": source, "data_generator": data_generator}),
        "create_example",
    )
    lost = failed(results)
    assert len(lost) == 1 and "the same rng seed gives the same example" in next(iter(lost))
    message = next(iter(lost.values()))
    assert "`create_example(rng=None)`" in message and "`create_example()`" in message


def test_a_function_of_another_signature_is_told_the_stubs():
    source = "def lr_schedule(epoch):\n    return 1e-3\n"
    results = graded(
        notebook_with({"lr_schedule": "# GRADED: lr_schedule\n" + source}), "lr_schedule"
    )
    messages = failed(results).values()
    assert messages  # a schedule that cannot take the rate cannot halve it
    for message in messages:
        assert "`lr_schedule(epoch, lr)`" in message and "`lr_schedule(epoch)`" in message


ORIGINAL_CALLBACK = '''# GRADED: ShowTestImages
class ShowTestImages(keras.callbacks.Callback):
    """The original course's way: no __init__, its own test batch at the end of each epoch."""

    def on_epoch_end(self, epoch, logs=None):
        if not hasattr(self, "figures"):
            self.figures = []
        inputs, targets = next(data_generator(batch_size=4, rng=epoch))
        pred = self.model.predict(inputs["image"], verbose=0)
        fig, axes = plt.subplots(1, 4)
        for i, ax in enumerate(axes):
            ax.imshow(plot_bounding_box(inputs["image"][i], targets["box_out"][i],
                                        pred["box_out"][i], norm=True))
        self.figures.append(fig)
        plt.close(fig)
'''


def test_a_callback_without_the_stubs_init_keeps_what_still_holds():
    results = graded(notebook_with({"ShowTestImages": ORIGINAL_CALLBACK}), "ShowTestImages")
    lost = failed(results)
    # its own images each epoch: not the test batch it is given; and the task's titles missing
    assert sorted(lost) == [
        "ShowTestImages: each figure shows the num_images test images it was given, the same every epoch",
        "ShowTestImages: each image is titled with the predicted class, green when right and red when wrong",
    ], lost
    message = lost[sorted(lost)[0]]
    assert "__init__(self, test_data=None, num_images=6, show=True)" in message
    assert "test_data" in message and "ShowTestImages()" in message


def test_a_renamed_part_is_named_in_the_message():
    iou = solution_cell("IoU").replace("class IoU(", "class IOU(")
    model = solution_cell("create_model").replace('IoU(name="iou")', 'IOU(name="iou")')
    results = graded(notebook_with({"IoU": iou, "create_model": model}), "IoU", "create_model")
    iou_messages = [r.message for r in results.values() if r.part == "IoU"]
    assert all("`IOU`" in m and "rename it to `IoU`" in m for m in iou_messages), iou_messages
    assert failed({n: r for n, r in results.items() if r.part == "create_model"}) == {}


def test_stub_signatures_match_the_learner_notebook():
    nb = nbformat.read(LEARNER_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        match = GRADED_CELL.match(cell.source)
        if not match:
            continue
        name = match[1]
        node = next(n for n in ast.parse(cell.source).body if getattr(n, "name", "") == name)
        if isinstance(node, ast.ClassDef):
            init = next(n for n in node.body if getattr(n, "name", "") == "__init__")
            assert f"__init__({ast.unparse(init.args)})" in STUB_SIGNATURES[name]
        else:
            assert STUB_SIGNATURES[name] == f"{name}({ast.unparse(node.args)})"
    assert set(STUB_SIGNATURES) == set(GRADED_PARTS)


# -- each mistake costs the property it breaks, with a hint naming it

GENERATOR = solution_cell("data_generator")
IOU = solution_cell("IoU")
MODEL = solution_cell("create_model")

MISTAKES = [
    pytest.param(
        "data_generator",
        GENERATOR.replace(
            'yield {"image": x}, {"class_out": y, "box_out": box}', 'yield {"image": x}, (y, box)'
        ),
        ["batches are ({'image': x}"],
        "a tuple",
        id="tuple-targets",
    ),
    pytest.param(
        "data_generator",
        GENERATOR.replace("y[i, class_id] = 1.0", "y[i] = class_id").replace(
            "y = np.zeros((batch_size, NUM_CLASSES)", "y = np.zeros((batch_size,)"
        ),
        ["class_out is one-hot"],
        "integer labels",
        id="integer-labels",
    ),
    pytest.param(
        "IoU",
        IOU.replace(
            "return self.total_iou / ops.maximum(self.num_examples, 1.0)", "return self.total_iou"
        ),
        ["mean over every example"],
        "sum",
        id="iou-sum-not-divided",
    ),
    pytest.param(
        "IoU",
        IOU.replace(
            'self.num_examples.assign_add(ops.cast(ops.shape(iou)[0], "float32"))',
            "self.num_examples.assign_add(1.0)",
        ),
        ["mean over every example"],
        "number of batches",
        id="iou-divides-by-batches",
    ),
    pytest.param(
        "IoU",
        IOU.replace(
            'self.num_examples.assign_add(ops.cast(ops.shape(iou)[0], "float32"))',
            'self.num_examples.assign(ops.cast(ops.shape(iou)[0], "float32"))',
        ),
        ["mean over every example"],
        "last batch's size",
        id="iou-divides-by-last-batch",
    ),
    pytest.param(
        "create_model",
        MODEL.replace(
            '        name="box_out",', '        name="box_out",\n        activation="softmax",'
        ),
        ["box_out's activation can produce every box label"],
        "box_out uses 'softmax'",
        id="box-head-softmax",
    ),
    pytest.param(
        "create_model",
        MODEL.replace(
            'activation="softmax", name="class_out"', 'activation="sigmoid", name="class_out"'
        ),
        ["class_out gives a probability distribution"],
        "softmax missing: class_out uses 'sigmoid'",
        id="class-head-sigmoid",
    ),
    pytest.param(
        "lr_schedule",
        "# GRADED: lr_schedule\ndef lr_schedule(epoch, lr):\n"
        "    if (epoch + 1) % 5 == 0:\n        lr *= 0.2\n    return max(lr, 3e-7)\n",
        ["never below"],
        "original course's schedule",
        id="original-course-schedule",
    ),
]


@pytest.mark.parametrize(("part", "source", "lost", "hint"), MISTAKES)
def test_a_mistake_costs_only_the_checks_of_its_property(part, source, lost, hint):
    results = graded(notebook_with({part: source}), part)
    lost_now = failed(results)
    assert sorted(lost_now) == sorted(n for n in results if any(k in n for k in lost)), lost_now
    assert any(hint in message for message in lost_now.values()), lost_now


# -- the same verdict on every hidden seed

PLOT = solution_cell("plot_bounding_box")
EXAMPLE = solution_cell("create_example")
SEED_BOUND = [
    pytest.param(
        "plot_bounding_box",
        PLOT.replace(
            "draw.rectangle((col, row, col + BOX_SIDE, row + BOX_SIDE)",
            "draw.rectangle((col, col + BOX_SIDE, row, row + BOX_SIDE)",
        ),
        ["the true box is green and the predicted box red"],
        id="drawing-that-raises-for-some-boxes",
    ),
    pytest.param(
        "create_example",
        EXAMPLE.replace(
            "rng.integers(0, MAX_OFFSET + 1, size=2)", "rng.integers(-1, MAX_OFFSET + 1, size=2)"
        ),
        ["every class and every tile position"],
        id="example-that-raises-for-some-seeds",
    ),
    pytest.param(
        "IoU",
        IOU.replace(
            'initializer="zeros", name="num_examples"',
            'initializer="glorot_uniform", name="num_examples"',
        ),
        ["identical boxes 1", "each example's IoU equals", "mean over every example"],
        id="metric-that-starts-random",
    ),
]


@pytest.mark.parametrize(("part", "source", "lost"), SEED_BOUND)
def test_a_mistake_met_by_some_inputs_only_costs_the_same_checks_on_every_hidden_seed(
    part, source, lost
):
    """Random inputs meet such a mistake on some seeds only (a box order that raises, a position
    past the edge, a random initial state): the checks give it one verdict whatever the seed."""
    from grader.secret import using_seed

    assert source != solution_cell(part)
    ingested = notebook_with({part: source})
    verdicts = []
    for seed in (11, 2024, 987654321):
        with using_seed(seed):
            results = graded(ingested, part, hints=False)
        verdicts.append(sorted(failed(results)))
    assert verdicts[0] == verdicts[1] == verdicts[2], verdicts
    assert verdicts[0] == sorted(n for n in results if any(k in n for k in lost))


# -- alternative correct implementations get full marks

ALTERNATIVES = {
    "iou-other-ops-and-variables": (
        "IoU",
        """# GRADED: IoU
class IoU(keras.metrics.Metric):
    def __init__(self, name="iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.state = self.add_weight(shape=(2,), initializer="zeros", name="sum_and_count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32") * IMAGE_SIZE
        y_pred = ops.cast(y_pred, "float32") * IMAGE_SIZE
        overlap = ops.relu(BOX_SIDE - ops.abs(y_true - y_pred))  # per axis, clamped by relu
        inter = ops.prod(overlap, axis=-1)
        iou = inter / (2 * BOX_SIDE**2 - inter)
        self.state.assign_add(ops.stack([ops.sum(iou), ops.cast(ops.size(iou), "float32")]))

    def result(self):
        return ops.divide_no_nan(self.state[0], self.state[1])

    def reset_state(self):
        self.state.assign(ops.zeros((2,)))
""",
    ),
    "class-based-generator": (
        "data_generator",
        '''# GRADED: data_generator
class data_generator:
    """An iterator object instead of a generator function."""

    def __init__(self, batch_size=16, rng=None):
        self.batch_size, self.rng = batch_size, np.random.default_rng(rng)

    def __iter__(self):
        return self

    def __next__(self):
        examples = [create_example(self.rng) for _ in range(self.batch_size)]
        x = np.stack([e[0] for e in examples]).astype("float32") / 255
        y = np.eye(NUM_CLASSES, dtype="float32")[[e[1] for e in examples]]
        box = np.array([e[2:] for e in examples], dtype="float32")
        return {"image": x}, {"class_out": y, "box_out": box}
''',
    ),
    "pil-pasting": (
        "create_example",
        """# GRADED: create_example
def create_example(rng=None):
    rng = np.random.default_rng(rng)
    class_id = int(rng.integers(0, NUM_CLASSES))
    row, col = (int(v) for v in rng.integers(0, MAX_OFFSET + 1, size=2))
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), "white")
    canvas.paste(Image.fromarray(emoji_tiles[class_id]), (col, row))
    return np.asarray(canvas), class_id, (row + MARGIN) / IMAGE_SIZE, (col + MARGIN) / IMAGE_SIZE
""",
    ),
    "other-architecture": (
        "create_model",
        """# GRADED: create_model
def create_model():
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = layers.Conv2D(16, 5, strides=4, activation="relu")(inputs)
    x = layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = layers.Conv2D(64, 3, strides=2, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = {
        "class_out": layers.Dense(NUM_CLASSES, name="class_out")(x),
        "box_out": layers.Dense(2, activation="sigmoid", name="box_out")(x),
    }
    outputs["class_out"] = layers.Softmax(name="class_probs")(outputs["class_out"])
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss={"class_out": "categorical_crossentropy", "box_out": "mse"},
        metrics={"class_out": ["accuracy"], "box_out": [IoU()]},
    )
    return model
""",
    ),
}


@pytest.mark.parametrize("name", list(ALTERNATIVES))
def test_alternative_correct_implementations_get_full_marks(name):
    part, source = ALTERNATIVES[name]
    results = graded(notebook_with({part: source}), part)
    assert failed(results) == {}


# -- structure checks that a look-alike cannot pass

LOOK_ALIKE = '''# GRADED: create_model
class _Tensor:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class LookAlike(keras.Model):
    """Claims the course's structure, has no network."""

    @property
    def inputs(self):
        return [_Tensor("image", (None, IMAGE_SIZE, IMAGE_SIZE, 3))]

    @property
    def output(self):
        return {"class_out": _Tensor("class_out", (None, 9)), "box_out": _Tensor("box_out", (None, 2))}

    def count_params(self):
        return 600_000

    def predict(self, x, **kwargs):
        n = len(x)
        return {"class_out": np.full((n, 9), 1 / 9, "float32"), "box_out": np.full((n, 2), 0.3, "float32")}


def create_model():
    return LookAlike()
'''

NAN_WEIGHTS = solution_cell("create_model").replace(
    "    return model\n",
    "    for weight in model.weights:\n"
    "        weight.assign(np.full(weight.shape, np.nan, dtype=weight.dtype))\n"
    "    return model\n",
)


def test_a_model_look_alike_gets_no_structure_points():
    results = graded(notebook_with({"create_model": LOOK_ALIKE}), "create_model")
    assert results and all(r.score == 0 for r in results.values()), {
        n: (r.score, r.message) for n, r in results.items()
    }
    assert all("not part of Keras" in r.message for r in results.values())


def test_a_model_with_nan_weights_gets_no_output_points():
    results = graded(notebook_with({"create_model": NAN_WEIGHTS}), "create_model")
    outputs = next(r for n, r in results.items() if "outputs named" in n)
    assert outputs.score == 0 and "NaN" in outputs.message
    assert all(r.score == 0 and "NaN" in r.message for r in results.values())


def test_the_reference_model_gets_full_marks_on_every_structure_check():
    results = graded(notebook_with({}), "create_model")
    assert len(results) == 8 and failed(results) == {}
