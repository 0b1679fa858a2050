"""Helpers for the checks, public and hidden: reading learner values, probing, diagnosing mistakes.

Public code: it ships in the learner bundle, so it uses only the course's given material
(``course``), never the reference solutions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from grader.checking import Incorrect, short

from ... import course

CALLBACK_EPOCHS = 2


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
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Incorrect(f"{what} should be a number", got=short(value))
    return float(value)


# -- create_example and data_generator


def example(submission, seed: int):
    """(image, class_id, row, col) from the learner's create_example with a seeded rng."""
    value = submission.call("create_example", seed=seed)
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
    if not isinstance(class_id, int) or isinstance(class_id, bool):
        raise Incorrect("class_id should be an integer", got=short(value[1]))
    return image, class_id, as_float(value[2], "row"), as_float(value[3], "col")


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


def generated(submission, batch_size: int, seed: int = 5, count: int = 1) -> list[GeneratorBatch]:
    """``count`` batches from the learner's data_generator, read by :func:`read_batch`."""
    value = submission.call("data_generator", batch_size=batch_size, seed=seed, sample=count)
    if not isinstance(value, list) or len(value) < count:
        raise Incorrect(
            "data_generator should be a generator that yields batches forever", got=short(value)
        )
    return [read_batch(item) for item in value[:count]]


def batches(submission, batch_size: int, seed: int = 5, count: int = 1):
    """``count`` batches as (x, class_out, box_out) arrays, whatever their container."""
    return [(b.x, b.class_out, b.box_out) for b in generated(submission, batch_size, seed, count)]


def tile_at(image: np.ndarray, row: int, col: int) -> np.ndarray | None:
    if not (0 <= row <= course.MAX_OFFSET and 0 <= col <= course.MAX_OFFSET):
        return None
    return image[row : row + course.TILE_SIZE, col : col + course.TILE_SIZE].astype(np.float32)


def best_class(tile: np.ndarray | None) -> tuple[int, float]:
    """Which emoji the pixels show, and how far they are from it (mean abs difference in [0, 1])."""
    if tile is None or tile.shape[:2] != (course.TILE_SIZE, course.TILE_SIZE):
        return -1, float("inf")
    scale = 255.0 if tile.max() > 1.5 else 1.0
    diffs = np.abs(
        course.emoji_tiles().astype(np.float32) / 255.0 - tile[None, ..., :3] / scale
    ).mean(axis=(1, 2, 3))
    return int(diffs.argmin()), float(diffs.min())


def find_tile(image: np.ndarray) -> tuple[int, int] | None:
    """Where the emoji tile really is: the first non-white pixels, less the ink offset of the glyph
    that fits best there (glyphs differ: laughing's tears start further left)."""
    scale = 255.0 if image.max() > 1.5 else 1.0
    ink = (image.astype(np.float32) / scale < 0.98).any(axis=-1)
    if not ink.any():
        return None
    first_row, first_col = np.flatnonzero(ink.any(1))[0], np.flatnonzero(ink.any(0))[0]
    candidates = {
        (int(first_row - top), int(first_col - left)) for top, left, _, _ in course.ink_boxes()
    }
    return min(candidates, key=lambda rc: best_class(tile_at(image, *rc))[1])


def diagnose_label(image: np.ndarray, class_id: int, row: float, col: float) -> str | None:
    """None when the labels match the pixels; otherwise a message naming the likely mistake."""
    margin = course.measure_box_geometry().margin
    label_row, label_col = row * course.IMAGE_SIZE - margin, col * course.IMAGE_SIZE - margin
    r, c = round(label_row), round(label_col)
    drawn, distance = best_class(tile_at(image, r, c))
    if distance < 0.02 and abs(label_row - r) < 0.51 and abs(label_col - c) < 0.51:
        if drawn != class_id:
            return f"the image shows class {drawn} ({course.CLASS_NAMES[drawn]}) but class_id is {class_id}"
        return None
    found = find_tile(image)
    truth = (
        f"the emoji's tile is at row {found[0]}, col {found[1]}" if found else "no emoji is visible"
    )
    got = f"your labels put it at row {label_row:.1f}, col {label_col:.1f} (pixels, after removing the margin)"
    hint = ""
    if found:
        fr, fc = found
        if row > 1.5 or col > 1.5:
            hint = "row and col must be normalised: divide by 144"
        elif abs(label_row - fc) < 1 and abs(label_col - fr) < 1 and fr != fc:
            hint = "rows and columns are swapped: an image is indexed image[row, col], i.e. [y, x]"
        elif abs(row * 144 - fr) < 1 and abs(col * 144 - fc) < 1:
            hint = f"the margin is missing: the box starts MARGIN = {margin} pixels inside the tile"
        elif abs(label_row - fr) < 3 and abs(label_col - fc) < 3:
            hint = "the position is off by a few pixels; use (row + MARGIN) / 144 with the tile's integer row"
    return f"{truth}; {got}." + (f" Hint: {hint}." if hint else "")


# -- plot_bounding_box and figures


def colour_mask(image: np.ndarray, colour: str) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    if colour == "green":
        return (g > 90) & (r < 90) & (b < 90)
    return (r > 150) & (g < 90) & (b < 90)


def _band(box) -> np.ndarray:
    top, left, bottom, right = np.round(course.boxes_to_corners(np.asarray(box))).astype(int)
    inner = np.zeros((144, 144), bool)
    inner[top + 4 : bottom - 3, left + 4 : right - 3] = True
    outer = np.zeros_like(inner)
    outer[max(top - 3, 0) : bottom + 4, max(left - 3, 0) : right + 4] = True
    return outer & ~inner


def box_drawn(image: np.ndarray, box, colour: str) -> str | None:
    """None when a ``colour`` box outline lies where the normalised (row, col) says."""
    drawn = colour_mask(image, colour)
    if not drawn.any():
        return f"no {colour} box was drawn"
    if (drawn & ~_band(box)).sum() / drawn.sum() <= 0.1:
        return None
    top, left, _, _ = course.boxes_to_corners(np.asarray(box))
    hint = ""
    if (drawn & ~_band(np.asarray(box)[::-1])).sum() / drawn.sum() <= 0.1:
        hint = " Hint: rows and columns are swapped; draw.rectangle takes (x0, y0, x1, y1) = (col, row, ...)."
    rows, cols = np.nonzero(drawn)
    return (
        f"the {colour} box is not where the coordinates say: expected its top-left corner at row {top:.0f}, "
        f"col {left:.0f}, got ink from row {rows.min()}, col {cols.min()}.{hint}"
    )


# -- IoU, model, callback


def metric_value(submission, y_true, y_pred) -> float:
    reply = submission.metric([("update", y_true, y_pred), ("result",)])
    if not reply.get("is_metric"):
        raise Incorrect("IoU should subclass keras.metrics.Metric")
    return as_float(reply["results"][0], "IoU().result()")


def course_iou(y_true, y_pred, *, side: float | None = None, clamp: bool = True) -> np.ndarray:
    """Per-example IoU of (row, col) boxes of the course's side; ``clamp=False`` is the original
    course's ``abs()`` intersection, ``side`` another side (e.g. BOX_SIDE + 1), to name mistakes."""
    side = course.measure_box_geometry().side if side is None else side
    gaps = side - np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)) * course.IMAGE_SIZE
    overlap = np.clip(gaps, 0, None) if clamp else np.abs(gaps)
    inter = overlap[:, 0] * overlap[:, 1]
    return inter / (2 * side * side - inter)


UNCLAMPED_HINT = (
    "IoU not clamped: abs(x2 - x1) turns the gap between disjoint boxes into a positive "
    "'overlap'; use max(0, min(...) - max(...)) for each side of the intersection"
)


def zero_iou_hint(got: float, y_true, y_pred) -> str:
    """Why boxes that share no area got a non-zero IoU, when a known mistake explains it."""
    side = course.measure_box_geometry().side
    if got == pytest.approx(float(course_iou(y_true, y_pred, clamp=False).mean()), abs=2e-3):
        return UNCLAMPED_HINT
    if got == pytest.approx(float(course_iou(y_true, y_pred, side=side + 1).mean()), abs=2e-3):
        return (
            "the box is one pixel too large (inclusive pixel counting, side + 1): the box "
            "spans BOX_SIDE pixels, from top to top + BOX_SIDE"
        )
    return iou_value_hint(got, 0.0, len(y_true))


def iou_value_hint(got: float, expected: float, examples: int) -> str:
    """The likely cause of an IoU far from what it should be (an IoU lies in [0, 1])."""
    if expected > 0 and got == pytest.approx(expected * examples, rel=1e-3) and examples > 1:
        return (
            f"result() returned the sum over the {examples} examples: divide the summed IoU by "
            "the number of examples seen (a second state variable, counted in update_state)"
        )
    if got > 1:
        return (
            "an IoU can never exceed 1: result() must divide the summed IoU by the number of "
            "examples, and the union is area1 + area2 - intersection"
        )
    if got < 0:
        return "an IoU can never be negative: clamp each side of the intersection at 0"
    if got == 0 and expected > 0:
        return (
            "result() is 0: update_state should add into the state variables with assign_add, "
            "and result() read them"
        )
    return ""


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


def fixed_examples(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n images, one emoji each at a fixed place, with their targets: callback test data."""
    geometry = course.measure_box_geometry()
    images = np.full((n, 144, 144, 3), 255, np.uint8)
    positions = [(8 + 9 * i % 60, 60 - 7 * i % 55) for i in range(n)]
    classes = np.arange(n) % course.NUM_CLASSES
    for image, (row, col), class_id in zip(images, positions, classes, strict=True):
        image[row : row + 72, col : col + 72] = course.emoji_tiles()[class_id]
    boxes = (np.array(positions, np.float32) + geometry.margin) / 144
    return images, {"class_out": np.eye(9, dtype=np.float32)[classes], "box_out": boxes}


def callback_report(submission) -> dict:
    """Fit the learner's model for two short epochs with their ShowTestImages; what it drew."""
    images, targets = fixed_examples(8)
    test_images, test_targets = fixed_examples(4)
    kwargs = {
        "test_data": [{"image": test_images.astype(np.float32) / 255}, test_targets],
        "num_images": 4,
        "show": False,
    }
    report = submission.callback(images, targets, epochs=CALLBACK_EPOCHS, steps=2, kwargs=kwargs)
    if not report.get("is_callback"):
        raise Incorrect("ShowTestImages should subclass keras.callbacks.Callback")
    return report
