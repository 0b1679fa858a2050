"""NaN and infinity never satisfy a property: a notebook whose every part returns NaN, +inf or
-inf where numbers belong (in the right shapes and types) earns nothing from any check of a value.

Only properties that are not about values may pass: the metric's name, that the caller's image is
left unchanged, the callback's figure count and list, and the schedule's return type (NaN is a
float). Graded in process, every part."""

from __future__ import annotations

import nbformat
import pytest

from tests.objloc import COURSE, SOLUTION_NOTEBOOK, ingest_notebook
from tests.test_mistakes import graded

#: Checks whose property is not a value: (part, words of the check's name).
NOT_ABOUT_VALUES = {
    ("IoU", "keeps the name it is given"),
    ("plot_bounding_box", "the caller's image is not changed"),
    ("ShowTestImages", "one figure per epoch"),
    ("ShowTestImages", "kept in self.figures"),
    ("ShowTestImages", "each figure is closed once drawn"),
    ("lr_schedule", "returns a float"),
}

PARTS = {
    "create_example": """
def create_example(rng=None):
    rng = np.random.default_rng(rng)
    return np.full((144, 144, 3), V), 0, V, V
""",
    "plot_bounding_box": """
def plot_bounding_box(image, gt_coords, pred_coords=None, norm=False):
    return np.full((144, 144, 3), V)
""",
    "data_generator": """
def data_generator(batch_size=16, rng=None):
    while True:
        yield {"image": np.full((batch_size, 144, 144, 3), V, np.float32)}, {
            "class_out": np.full((batch_size, 9), V, np.float32),
            "box_out": np.full((batch_size, 2), V, np.float32),
        }
""",
    "IoU": """
class IoU(keras.metrics.Metric):
    def __init__(self, name="iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign(V)

    def result(self):
        return self.total

    def reset_state(self):
        self.total.assign(V)
""",
    "create_model": """
def create_model():
    inputs = keras.Input(shape=(144, 144, 3), name="image")
    x = layers.Flatten()(layers.AveragePooling2D(8)(inputs))
    init = keras.initializers.Constant(V)
    model = keras.Model(inputs, {
        "class_out": layers.Dense(9, activation="softmax", name="class_out", kernel_initializer=init)(x),
        "box_out": layers.Dense(2, name="box_out", kernel_initializer=init)(x),
    })
    model.compile(optimizer="adam", loss={"class_out": "categorical_crossentropy", "box_out": "mse"},
                  metrics={"class_out": "accuracy", "box_out": IoU(name="iou")})
    return model
""",
    "ShowTestImages": """
class ShowTestImages(keras.callbacks.Callback):
    def __init__(self, test_data=None, num_images=6, show=True):
        super().__init__()
        self.num_images = num_images
        self.figures = []

    def on_epoch_end(self, epoch, logs=None):
        fig, axes = plt.subplots(1, self.num_images)
        for ax in axes:
            ax.imshow(np.full((144, 144, 3), V))
            ax.set_title(str(V), color="green")
        self.figures.append(fig)
        plt.close(fig)
""",
    "lr_schedule": """
def lr_schedule(epoch, lr):
    return V
""",
}


def non_finite_notebook(value: str):
    """The solution notebook with every graded cell returning ``value`` where numbers belong."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        header = cell.source.split("\n", 1)[0]
        if header.startswith("# GRADED: "):
            part = header.removeprefix("# GRADED: ").strip()
            cell.source = f"{header}\nV = {value}\n{PARTS[part]}"
    return ingest_notebook(nb)


@pytest.mark.parametrize("value", ['float("nan")', 'float("inf")', '-float("inf")'])
def test_non_finite_values_earn_nothing(value):
    results = graded(non_finite_notebook(value), COURSE.part_names)
    assert len(results) > 20
    passed = {
        r.name
        for r in results
        if r.score > 0
        and not any(r.part == part and words in r.name for part, words in NOT_ABOUT_VALUES)
    }
    assert passed == set(), passed
