"""Helpers for the checks, public and hidden: reading learner values and what their pixels show.

Public code: it ships in the learner bundle, so it uses only the course's given material
(``course``), never the reference solutions. Every reader is lenient about containers (a tuple
comes back as a list) and strict about meaning: what breaks the contract is said once, by the
check of that property. NaN and infinity never satisfy a property.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import hypothesis
import numpy as np
from hypothesis import HealthCheck, Phase, settings

from grader.checking import Incorrect, short

from ... import course

CALLBACK_EPOCHS = 2
SIDE = course.measure_box_geometry().side
MARGIN = course.measure_box_geometry().margin


def as_array(value, what: str, *, ndim: int | None = None) -> np.ndarray:
    """A learner value as an array, or an Incorrect that says what came back instead."""
    if not isinstance(value, np.ndarray):
        raise Incorrect(f"{what} should be a numpy array", got=type(value).__name__)
    if ndim is not None and value.ndim != ndim:
        raise Incorrect(
            f"{what} has the wrong number of dimensions", expected=ndim, got=f"shape {value.shape}"
        )
    return value


def as_float(value, what: str) -> float:
    """A learner number as a float (NaN and infinity are returned as such: a property that
    compares them fails)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Incorrect(f"{what} should be a number", got=short(value))
    return float(value)


#: Hypothesis, as the checks use it: a fixed number of examples, no example database, no
#: deadline (the learner's code may be slow under load), deterministic for a given seed.
SEARCH = settings(
    max_examples=60,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate, Phase.shrink],
)


def counterexample(strategy, broken, seed: int = 0):
    """The simplest value of ``strategy`` for which ``broken`` is true (Hypothesis's search and
    shrinking), or None. The same learner code gets the same answer: the search is seeded."""
    try:
        return hypothesis.find(strategy, broken, settings=SEARCH, random=random.Random(seed))
    except hypothesis.errors.NoSuchExample:
        return None
    except hypothesis.errors.HypothesisException:  # e.g. flaky: the code answers differently
        return None


def close(a, b, tol: float) -> bool:
    """|a - b| <= tol, element-wise all; False for NaN or infinity anywhere."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return bool(np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.abs(a - b) <= tol))


def as_uint8_image(image: np.ndarray) -> np.ndarray:
    """An image as 0..255 uint8, whatever its scale ([0, 1] or [-1, 1] floats are scaled up):
    what it shows is judged apart from how it is scaled."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image[..., :3]
    array = np.nan_to_num(np.asarray(image, np.float64)[..., :3], nan=0.0)
    if array.size and array.min() < -1e-6 and array.min() >= -1 - 1e-6 and array.max() <= 1 + 1e-6:
        array = (array + 1.0) * 127.5  # [-1, 1], as some models take their inputs
    elif array.size and array.max() <= 1.0 + 1e-6:
        array = array * 255.0
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


# -- create_example


@dataclass
class Example:
    """One example as the learner's create_example returned it, read leniently."""

    image: np.ndarray
    class_id: object  # what came back: an int when it is one
    row: float
    col: float


def read_example(value) -> Example:
    """(image, class_id, row, col), or an Incorrect naming what came back instead."""
    if not isinstance(value, list) or len(value) != 4:
        raise Incorrect(
            "create_example(rng) should return a tuple (image, class_id, row, col)",
            got=short(value) if not isinstance(value, list) else f"a tuple of {len(value)} items",
        )
    image = as_array(value[0], "the image", ndim=3)
    class_id = value[1]
    if isinstance(class_id, np.ndarray) and class_id.size == 1:
        class_id = class_id.reshape(()).item()
    if isinstance(class_id, float) and class_id.is_integer():
        class_id = int(class_id)
    return Example(image, class_id, as_float(value[2], "row"), as_float(value[3], "col"))


def examples(submission, seeds: list[int]) -> list[Example]:
    """The learner's create_example for each seed (a fresh Generator each)."""
    return [read_example(v) for v in submission.call_each("create_example", list(seeds))]


# -- what the pixels show: the emoji tile and its position


@dataclass
class Located:
    """Where each image's emoji tile is, found from the pixels: class -1 when none fits."""

    classes: np.ndarray  # (n,) int
    rows: np.ndarray  # (n,) int: the tile's top-left row
    cols: np.ndarray
    distances: np.ndarray  # (n,) mean |difference| of the tile there, in [0, 1]

    def found(self, tolerance: float = 0.02) -> np.ndarray:
        return (self.classes >= 0) & (self.distances < tolerance)


#: What counts as ink: a pixel darker than this in any channel (the canvas is 255).
INK_BELOW = 250


@functools.lru_cache(maxsize=1)
def _ink_offsets() -> np.ndarray:
    """Each tile's first inked row and column, as the images are read: on white, with the same
    threshold (anti-aliased edges lighter than it do not count)."""
    ink = (course.emoji_tiles() < INK_BELOW).any(axis=-1)
    return np.array(
        [(np.argmax(tile.any(axis=1)), np.argmax(tile.any(axis=0))) for tile in ink], dtype=int
    )


def locate_tiles(images: np.ndarray) -> Located:
    """Each image's emoji tile: the first inked row and column, less each glyph's own offset
    (glyphs differ: laughing's tears start further left), then the glyph whose tile fits best
    there. Thousands of images in well under a second."""
    if len(images) and not (isinstance(images, np.ndarray) and images.dtype == np.uint8):
        images = np.stack([as_uint8_image(i) for i in images])
    images = np.asarray(images) if len(images) else np.zeros((0,))
    n = len(images)
    classes = np.full(n, -1)
    rows, cols = np.zeros(n, int), np.zeros(n, int)
    distances = np.full(n, np.inf)
    if n == 0 or images.shape[1:] != (course.IMAGE_SIZE, course.IMAGE_SIZE, 3):
        return Located(classes, rows, cols, distances)
    # the darkest channel, element-wise (a reduction over a 3-wide axis is ~10x slower)
    darkest = np.minimum(np.minimum(images[..., 0], images[..., 1]), images[..., 2])
    inked_rows = darkest.min(axis=2) < INK_BELOW
    inked_cols = darkest.min(axis=1) < INK_BELOW
    first_row, first_col = np.argmax(inked_rows, axis=1), np.argmax(inked_cols, axis=1)
    tiles = course.emoji_tiles().astype(np.int16)
    size, step = course.TILE_SIZE, 3
    grid = np.arange(0, size, step)
    inked = np.flatnonzero(inked_rows.any(axis=1))
    best = np.full(n, np.inf)
    for glyph, (top, left) in enumerate(_ink_offsets()):
        r, c = first_row[inked] - top, first_col[inked] - left
        fits = (r >= 0) & (r <= course.MAX_OFFSET) & (c >= 0) & (c <= course.MAX_OFFSET)
        which, r, c = inked[fits], r[fits], c[fits]
        patches = images[
            which[:, None, None],
            r[:, None, None] + grid[None, :, None],
            c[:, None, None] + grid[None, None, :],
        ]
        fit = np.abs(patches.astype(np.int16) - tiles[glyph][::step, ::step]).mean(axis=(1, 2, 3))
        better = fit < best[which]
        chosen = which[better]
        best[chosen], classes[chosen] = fit[better], glyph
        rows[chosen], cols[chosen] = r[better], c[better]
    for index in np.flatnonzero(classes >= 0):
        patch = images[index, rows[index] : rows[index] + size, cols[index] : cols[index] + size]
        distances[index] = np.abs(patch.astype(np.int16) - tiles[classes[index]]).mean() / 255.0
    return Located(classes, rows, cols, distances)


# -- plot_bounding_box and figures: which pixels a box drew


def colour_mask(image: np.ndarray, colour: str) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    if colour == "green":
        return (g > 90) & (r < 90) & (b < 90)
    return (r > 150) & (g < 90) & (b < 90)


@dataclass
class DrawnBox:
    """The extent of the pixels drawn in one colour: rows top..bottom, cols left..right
    (inclusive) and the outline's thickness."""

    top: int
    left: int
    bottom: int
    right: int
    thickness: int

    def describe(self) -> str:
        return (
            f"rows {self.top}..{self.bottom}, cols {self.left}..{self.right} "
            f"({self.bottom - self.top} x {self.right - self.left} pixels)"
        )


def drawn_box(image: np.ndarray, colour: str, before: np.ndarray | None = None) -> DrawnBox | None:
    """The box drawn in ``colour`` (only pixels that changed from ``before``, when given)."""
    image = as_uint8_image(image)
    mask = colour_mask(image, colour)
    if before is not None and before.shape[:2] == image.shape[:2]:
        mask &= (np.abs(image.astype(int) - as_uint8_image(before).astype(int)) > 8).any(-1)
    if mask.sum() < 8:
        return None
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    middle = (top + bottom) // 2
    thickness = int(mask[middle, left : (left + right) // 2 + 1].sum())
    return DrawnBox(int(top), int(left), int(bottom), int(right), thickness)


def expected_box(coords) -> DrawnBox:
    """Where a box of the course's side at normalised (row, col) is drawn, as plot_bounding_box's
    task says: from (row, col) * 144 to that + BOX_SIDE, inclusive, clipped to the image."""
    top, left = (float(v) * course.IMAGE_SIZE for v in np.asarray(coords, float)[:2])
    last = course.IMAGE_SIZE - 1
    return DrawnBox(
        round(max(top, 0)),
        round(max(left, 0)),
        round(min(top + SIDE, last)),
        round(min(left + SIDE, last)),
        3,
    )


def box_matches(found: DrawnBox | None, want: DrawnBox, tolerance: float = 1.5) -> bool:
    if found is None:
        return False
    return all(
        abs(getattr(found, edge) - getattr(want, edge)) <= tolerance
        for edge in ("top", "left", "bottom", "right")
    )


# -- data_generator


TUPLE_TARGETS_HINT = (
    "yield the targets as a dict {'class_out': y, 'box_out': box}, not a tuple: the model's "
    "outputs are a dict, and Keras pairs a tuple of targets with them in alphabetical order "
    "(box_out first), so each head would learn the other's labels"
)


@dataclass
class GeneratorBatch:
    """One batch from the learner's generator, read as leniently as its meaning allows, with what
    breaks the contract listed in ``container`` (dicts and key names) and ``encoding`` (one-hot):
    each check fails only for the property it tests."""

    x: np.ndarray
    class_out: np.ndarray  # (n, 9), one-hot or converted from integer labels
    box_out: np.ndarray
    container: list[str] = field(default_factory=list)
    encoding: str = ""


def _describe_value(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, dict):
        return "a dict with keys " + str(sorted(map(str, value)))
    if isinstance(value, list):
        return f"a tuple of {len(value)} items"
    return short(value)


def _read_targets(targets, problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(targets, dict):
        if set(targets) == {"class_out", "box_out"}:
            return targets["class_out"], targets["box_out"]
        problems.append(
            "the targets dict has the wrong keys: expected {'class_out', 'box_out'}, got "
            f"{sorted(map(str, targets))}. Hint: the keys must match the model's output names, "
            "or Keras cannot pair targets with outputs"
        )
        values = list(targets.values())
    elif isinstance(targets, list) and len(targets) == 2:
        problems.append(f"the targets are a tuple (class, box). Hint: {TUPLE_TARGETS_HINT}")
        values = targets
    else:
        raise Incorrect(
            "the targets should be a dict {'class_out': y, 'box_out': box}",
            got=_describe_value(targets),
        )
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    boxes = [a for a in arrays if a.ndim == 2 and a.shape[1] == 2]
    classes = [a for a in arrays if not any(a is b for b in boxes)]
    if len(arrays) != 2 or len(boxes) != 1 or len(classes) != 1:
        raise Incorrect(
            "the targets should hold a class array and a box array",
            got=", ".join(_describe_value(v) for v in values),
        )
    return classes[0], boxes[0]


def read_batch(item) -> GeneratorBatch:
    """A batch as (x, class_out, box_out), or an Incorrect when no reading of it makes sense."""
    if not isinstance(item, list) or len(item) != 2:
        raise Incorrect(
            "each batch should be a pair ({'image': x}, {'class_out': y, 'box_out': box})",
            got=_describe_value(item),
        )
    inputs, targets = item
    container: list[str] = []
    if isinstance(inputs, dict):
        if set(inputs) != {"image"}:
            container.append(
                f"the inputs dict has the wrong keys: expected {{'image'}}, got {sorted(map(str, inputs))}"
            )
        x = next(iter(inputs.values()), None) if len(inputs) == 1 else inputs.get("image")
    else:
        container.append("the inputs are a bare array: yield {'image': x}, the model's input name")
        x = inputs
    class_out, box_out = _read_targets(targets, container)
    x = as_array(x, "x", ndim=4)
    class_out = as_array(class_out, "class_out")
    box_out = as_array(box_out, "box_out", ndim=2)
    encoding = ""
    flat = class_out.reshape(-1)
    if class_out.shape in ((len(x),), (len(x), 1)) and np.all(np.mod(flat, 1) == 0):
        encoding = (
            f"class_out holds integer labels ({np.round(flat[:4], 3).tolist()}...), not one-hot "
            "rows: the model's class head has 9 outputs and categorical_crossentropy expects "
            "one-hot targets; use np.eye(9)[class_id] (or set y[i, class_id] = 1)"
        )
        ids = np.clip(flat.astype(int), 0, course.NUM_CLASSES - 1)
        class_out = np.eye(course.NUM_CLASSES, dtype=np.float32)[ids]
    elif class_out.ndim != 2:
        raise Incorrect("class_out should be a 2-D array of one-hot rows", got=class_out.shape)
    return GeneratorBatch(x, class_out, box_out, container, encoding)


@dataclass
class Generated:
    """The first batches of one generator, and which of them it changed while drawing the next."""

    batches: list[GeneratorBatch]
    changed: tuple[int, ...]


def generate(
    submission, batch_size: int, seed: int = 5, count: int = 1, *, as_int: bool = False
) -> Generated:
    """``count`` batches from the learner's data_generator, read by :func:`read_batch`; its
    ``rng`` is a Generator of ``seed``, or with ``as_int`` the seed itself (as the notebook
    calls it)."""
    if as_int:
        value = submission.call("data_generator", batch_size=batch_size, rng=seed, sample=count)
    else:
        value = submission.call("data_generator", batch_size=batch_size, seed=seed, sample=count)
    if not isinstance(value, list) or len(value) < count:
        raise Incorrect(
            "data_generator should be a generator that yields batches forever", got=short(value)
        )
    changed = tuple(getattr(value, "changed", ()))
    return Generated([read_batch(item) for item in value[:count]], changed)


def generated(submission, batch_size: int, seed: int = 5, count: int = 1) -> list[GeneratorBatch]:
    return generate(submission, batch_size, seed, count).batches


# -- IoU


def metric_values(submission, pairs, **kwargs) -> list[float]:
    """The learner's metric on each (y_true, y_pred) batch, each on a fresh instance: one value
    per batch, however its state or reset behaves."""
    reply = submission.metric_scripts([[("update", a, b), ("result",)] for a, b in pairs], **kwargs)
    if not reply.get("is_metric"):
        raise Incorrect("IoU should subclass keras.metrics.Metric")
    return [as_float(results[0], "IoU().result()") for results in reply["scripts"]]


def one_pair_each(y_true, y_pred) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of one example each: the metric's value per example."""
    y_true, y_pred = np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)
    return [(y_true[i : i + 1], y_pred[i : i + 1]) for i in range(len(y_true))]


# -- the model and the callback


def model_summary(submission) -> dict:
    """What the worker says about the learner's model (built once, run on the probe images)."""
    return submission.model()


def working_model(submission):
    """The model's structure rebuilt in the trusted process (``Submission.model_audit``), counted
    only for a model that also runs: finite predictions on the grader's probe images, of the
    shapes its rebuilt structure declares. A look-alike object has no Keras config to rebuild;
    a model with NaN weights does not run."""
    audit = submission.model_audit()
    predictions = model_summary(submission).get("predictions")
    count = len(submission.probe_images())
    if not isinstance(predictions, dict):
        raise Incorrect(
            "your model should predict a dict of outputs on the grader's probe images",
            got=short(predictions) if not isinstance(predictions, np.ndarray) else "one array",
        )
    for name, shape in audit.outputs.items():
        value = predictions.get(name)
        want = (count, *shape)
        if not isinstance(value, np.ndarray) or value.shape != want:
            raise Incorrect(
                f"your model's {name} output did not run as its structure declares",
                expected=f"predictions of shape {want}",
                got=getattr(value, "shape", short(value)),
            )
        if not np.isfinite(value).all():
            raise Incorrect(
                f"your model predicts NaN or infinity for {name} on the grader's probe images, "
                "so its structure cannot earn points",
                hint="check the initialisers and any custom weights: a freshly built model must "
                "predict finite numbers",
            )
    return audit


def fixed_examples(n: int, offset: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n images, one emoji each at a fixed place, with their targets: callback data."""
    images = np.full((n, 144, 144, 3), 255, np.uint8)
    positions = [(8 + 9 * (i + offset) % 60, 60 - 7 * (i + offset) % 55) for i in range(n)]
    classes = (np.arange(n) + offset) % course.NUM_CLASSES
    for image, (row, col), class_id in zip(images, positions, classes, strict=True):
        image[row : row + 72, col : col + 72] = course.emoji_tiles()[class_id]
    boxes = (np.array(positions, np.float32) + MARGIN) / 144
    return images, {"class_out": np.eye(9, dtype=np.float32)[classes], "box_out": boxes}


#: The test batch given to the callback: 4 images it must show, the same every epoch.
CALLBACK_TEST_IMAGES = 4


def callback_report(submission) -> dict:
    """Fit the learner's model for two short epochs with their ShowTestImages; what it drew, and
    what the model predicted on the test images after each epoch."""
    images, targets = fixed_examples(8)
    test_images, test_targets = fixed_examples(CALLBACK_TEST_IMAGES, offset=3)
    floats = test_images.astype(np.float32) / 255
    kwargs = {
        "test_data": [{"image": floats}, test_targets],
        "num_images": CALLBACK_TEST_IMAGES,
        "show": False,
    }
    report = submission.callback(
        images, targets, epochs=CALLBACK_EPOCHS, steps=2, kwargs=kwargs, epoch_images=floats
    )
    if not report.get("is_callback"):
        raise Incorrect("ShowTestImages should subclass keras.callbacks.Callback")
    return {**report, "test_images": test_images, "test_targets": test_targets}
