"""Hidden checks: never shipped to learners; only their messages reach the report."""

import numpy as np
import pytest

from grader.checking import Incorrect, check

from ... import reference as ref
from ..public.helpers import (
    UNCLAMPED_HINT,
    as_array,
    as_float,
    batches,
    box_drawn,
    callback_report,
    colour_mask,
    diagnose_label,
    example,
    generated,
    iou_value_hint,
    metric_value,
    model_summary,
    working_model,
    zero_iou_hint,
)
from .helpers import hidden_batch, random_boxes, unclamped_iou

MAX_PARAMS = 5_000_000  # above this the model cannot train within the grading budget on 2 cores
MIN_PARAMS = 5_000
SIDE = ref.measure_box_geometry().side / ref.IMAGE_SIZE


# -- create_example


@check("create_example", 4)
def test_create_example_covers_classes_and_positions(submission):
    """classes and positions cover their whole ranges over many seeds"""
    margin = ref.measure_box_geometry().margin
    classes, rows, cols = set(), [], []
    for seed in range(1000, 1150):
        _, class_id, row, col = example(submission, seed)
        classes.add(class_id)
        rows.append(round(row * 144 - margin))
        cols.append(round(col * 144 - margin))
    problems = []
    if classes != set(range(9)):
        problems.append(
            f"only classes {sorted(classes)} appeared in 150 examples (expected all of 0..8)"
        )
    for name, values in (("row", rows), ("col", cols)):
        if min(values) < 0 or max(values) > 72:
            problems.append(
                f"tile {name}s went outside 0..72, so the emoji would not fit: {min(values)}..{max(values)}"
            )
        elif min(values) > 4 or max(values) < 66:
            problems.append(
                f"tile {name}s only ranged over {min(values)}..{max(values)} (expected 0..72)"
            )
    if np.corrcoef(rows, cols)[0, 1] > 0.95:
        problems.append("row and col are always equal or nearly so: draw them independently")
    if problems:
        raise Incorrect("; ".join(problems))


@check("create_example", 3)
def test_create_example_is_deterministic_for_a_seed(submission):
    """the same rng seed gives the same example; different seeds differ"""
    problem = submission.signature_problem("create_example", keyword="rng")
    if problem:
        raise Incorrect(problem)
    a, b, c = example(submission, 7), example(submission, 7), example(submission, 8)
    if not (np.array_equal(a[0], b[0]) and a[1:] == b[1:]):
        raise Incorrect(
            "two calls with the same seed gave different examples",
            hint="draw every random number from the rng argument, not from np.random",
        )
    if np.array_equal(a[0], c[0]) and a[1:] == c[1:]:
        raise Incorrect("different seeds gave the same example", hint="use the rng argument")


# -- plot_bounding_box


@check("plot_bounding_box", 3)
def test_plot_bounding_box_does_not_modify_its_input(submission):
    """the caller's image is not changed, with norm=True or not"""
    batch = hidden_batch(1, 3)
    floats = batch.images[0].astype(np.float32) / 255.0
    for image, norm in ((batch.images[0], False), (floats, True)):
        after = submission.call_returning_args(
            "plot_bounding_box", image, batch.boxes[0].tolist(), None, norm
        )
        changed = as_array(after[0] if after else None, "the image argument after the call")
        if changed.shape != image.shape or not np.array_equal(changed, image):
            hint = (
                "`image *= 255` scales the caller's array in place; compute a new array instead"
                if norm
                else "draw on a copy of the image"
            )
            raise Incorrect(
                f"plot_bounding_box changed the image it was given (norm={norm})", hint=hint
            )


@check("plot_bounding_box", 2)
def test_plot_bounding_box_handles_normalised_images(submission):
    """with norm=True a [0, 1] image comes back as a visible 0..255 picture with the box"""
    batch = hidden_batch(1, 4)
    floats = batch.images[0].astype(np.float32) / 255.0
    out = as_array(
        submission.call("plot_bounding_box", floats, batch.boxes[0].tolist(), None, True),
        "the returned image",
    )
    if out.ndim != 3 or out.shape[:2] != (144, 144):
        raise Incorrect("the returned image should be 144x144 RGB", got=out.shape)
    if out[..., :3].astype(float).mean() < 100:
        raise Incorrect(
            "the picture is nearly black: the [0, 1] image was not scaled back to 0..255",
            hint="multiply by 255 when norm=True",
        )
    problem = box_drawn(out[..., :3], batch.boxes[0], "green")
    if problem:
        raise Incorrect(problem)


# -- data_generator


@check("data_generator", 3)
def test_data_generator_class_targets_are_one_hot(submission):
    """class_out is one-hot"""
    (batch,) = generated(submission, 16)
    if batch.encoding:
        raise Incorrect("class_out should be one-hot: a single 1 per row", hint=batch.encoding)
    y = batch.class_out
    if not (np.isin(y, (0, 1)).all() and np.all(y.sum(axis=1) == 1)):
        raise Incorrect(
            "class_out should be one-hot: a single 1 per row", got=np.round(y[0], 3).tolist()
        )


@check("data_generator", 4)
def test_data_generator_labels_match_the_pixels(submission):
    """every example's box and class describe its pixels"""
    ((x, y, box),) = batches(submission, 16, seed=9)
    for i in range(len(x)):
        image = np.round(np.clip(x[i], 0, 1) * 255).astype(np.uint8)
        problem = diagnose_label(image, int(np.argmax(y[i])), float(box[i, 0]), float(box[i, 1]))
        if problem:
            raise Incorrect(f"In example {i} of a batch: {problem}")


@check("data_generator", 3)
def test_data_generator_yields_fresh_batches(submission):
    """consecutive batches are different examples"""
    first, second = batches(submission, 8, count=2)
    if np.array_equal(first[0], second[0]):
        raise Incorrect(
            "two consecutive batches were identical",
            hint="create new examples in every loop iteration",
        )


# -- IoU


def unscaled_iou(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """IoU with normalised corners but a side in pixels (a forgotten * 144)."""
    side = ref.measure_box_geometry().side
    inter = np.prod(np.clip(side - np.abs(y_true - y_pred), 0, None), axis=1)
    return inter / (2 * side * side - inter)


def unclamped(*pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """What the original course's unclamped IoU gives on these pairs, example by example."""
    return np.concatenate([unclamped_iou(a, b) for a, b in pairs])


def expect_mean_iou(
    got: float, expected: np.ndarray, what: str, *, mistakes=(), otherwise: str = ""
) -> None:
    """Incorrect unless ``got`` is the mean of ``expected``; the hint names the first mistake, a
    (per-example IoU, hint) pair, whose mean ``got`` equals, else ``otherwise``."""
    want = float(np.mean(expected))
    if got == pytest.approx(want, abs=2e-3):
        return
    n = len(expected)
    summed = (np.asarray(expected) * n, iou_value_hint(want * n, want, n))
    hint = next(
        (
            text
            for values, text in (*mistakes, summed)
            if got == pytest.approx(float(np.mean(values)), abs=2e-3)
        ),
        iou_value_hint(got, want, len(expected)) if not 0 <= got <= 1 else otherwise,
    )
    raise Incorrect(what, expected=round(want, 4), got=round(got, 4), hint=hint)


@check("IoU", 2)
def test_iou_of_touching_boxes_is_zero(submission):
    """boxes that share an edge or a corner: IoU 0"""
    for pred in ([0.1 + SIDE, 0.1], [0.1, 0.1 + SIDE], [0.1 + SIDE, 0.1 + SIDE]):
        got = metric_value(submission, [[0.1, 0.1]], [pred])
        if got != pytest.approx(0.0, abs=1e-3):
            raise Incorrect(
                "boxes that only touch should have IoU 0",
                expected=0.0,
                got=round(got, 4),
                hint=zero_iou_hint(got, [[0.1, 0.1]], [pred]),
            )


@check("IoU", 4)
def test_iou_matches_the_reference_on_random_boxes(submission):
    """partial overlaps: equals the reference IoU"""
    y_true, y_pred = random_boxes(64, 1)
    expect_mean_iou(
        metric_value(submission, y_true, y_pred),
        ref.iou(y_true, y_pred),
        "mean IoU over 64 random box pairs differs from the reference",
        mistakes=[
            (
                ref.iou(y_true[:, ::-1], y_pred),
                "rows and columns are mixed up between y_true and y_pred",
            ),
            (unclamped((y_true, y_pred)), UNCLAMPED_HINT),
            (
                unscaled_iou(y_true, y_pred),
                "the boxes are normalised but BOX_SIDE is in pixels: multiply row and col by "
                "IMAGE_SIZE (144) before computing the corners",
            ),
        ],
    )


@check("IoU", 3)
def test_iou_accumulates_over_batches(submission):
    """result() is the mean over every example since the last reset"""
    (a, b), (c, d) = random_boxes(16, 2), random_boxes(16, 3)
    reply = submission.metric([("update", a, b), ("update", c, d), ("result",)])
    both = np.concatenate([ref.iou(a, b), ref.iou(c, d)])
    expect_mean_iou(
        as_float(reply["results"][0], "result()"),
        both,
        "after two batches, result() should be the mean IoU of all 32 examples",
        mistakes=[
            (
                ref.iou(c, d),
                "result() returns only the last batch: add each batch into state variables with assign_add",
            ),
            (unclamped((a, b), (c, d)), UNCLAMPED_HINT),
            (
                both * len(both),
                "result() returns the sum of the IoUs: divide by the number of examples seen",
            ),
            (
                both * len(c),
                "result() divides by the number of batches (update_state calls), not by the "
                "number of examples: add ops.shape(iou)[0] to the count",
            ),
            (
                both * 2,
                "result() divides by the last batch's size: count every example since the "
                "reset with assign_add, not assign",
            ),
        ],
    )


@check("IoU", 2)
def test_iou_reset_state_really_resets(submission):
    """after reset_state(), only new batches count"""
    (a, _), (c, d) = random_boxes(16, 4), random_boxes(16, 5)
    # The first batch is perfect (IoU 1), so remembering it after the reset is plain to see.
    reply = submission.metric([("update", a, a), ("reset",), ("update", c, d), ("result",)])
    expect_mean_iou(
        as_float(reply["results"][0], "result() after reset_state()"),
        ref.iou(c, d),
        "after reset_state() the metric still remembers earlier batches",
        mistakes=[
            (
                np.concatenate([np.ones(len(a)), ref.iou(c, d)]),
                "state not reset: the first batch still counts after reset_state(); assign 0 to "
                "every state variable in reset_state (do not create new variables)",
            )
        ],
        otherwise="state not reset: assign 0 to every state variable in reset_state (do not create new variables)",
    )


@check("IoU", 2)
def test_iou_works_in_graph_mode(submission):
    """the metric runs inside a compiled tf.function, as in model.fit"""
    y_true, y_pred = random_boxes(16, 6)
    reply = submission.metric([("update", y_true, y_pred), ("result",)], graph=True)
    expect_mean_iou(
        as_float(reply["results"][0], "result() in graph mode"),
        ref.iou(y_true, y_pred),
        "in graph mode the metric gives a different value",
        mistakes=[(unclamped((y_true, y_pred)), UNCLAMPED_HINT)],
        otherwise="use keras.ops / tensor operations, not numpy or Python ifs on tensors",
    )


# -- create_model


#: The range each activation can output; the box head must reach every label in BOX_RANGE.
ACTIVATION_RANGES = {
    "linear": (-np.inf, np.inf),
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "relu": (0.0, np.inf),
    "relu6": (0.0, 6.0),
    "softplus": (0.0, np.inf),
    "exponential": (0.0, np.inf),
    "elu": (-1.0, np.inf),
    "selu": (-1.76, np.inf),
    "gelu": (-0.17, np.inf),
    "silu": (-0.28, np.inf),
    "swish": (-0.28, np.inf),
    "leaky_relu": (-np.inf, np.inf),
    "tanh": (-1.0, 1.0),
}
BOX_RANGE = (
    ref.measure_box_geometry().margin / ref.IMAGE_SIZE,
    (ref.MAX_OFFSET + ref.measure_box_geometry().margin) / ref.IMAGE_SIZE,
)


def head_problem(name: str, activation) -> str:
    """Why a head with this activation cannot produce its targets ("" when it can, or when the
    activation is not one we know)."""
    activation = str(activation or "").lower()
    if name == "class_out":
        if activation not in ACTIVATION_RANGES:  # softmax, or a layer judged by its outputs
            return ""
        return (
            f"softmax missing: class_out uses {activation!r}, so its outputs are not a probability distribution "
            "over the 9 classes: use activation='softmax' (categorical_crossentropy expects it)"
        )
    if activation == "softmax":
        return (
            "box_out uses 'softmax', which forces row + col = 1: most boxes are out of reach; "
            "use a linear (or sigmoid) output for coordinates"
        )
    low, high = ACTIVATION_RANGES.get(activation, (-np.inf, np.inf))
    if low > BOX_RANGE[0] or high < BOX_RANGE[1]:
        return (
            f"box_out uses {activation!r}, whose outputs lie in [{low:g}, {high:g}] but box "
            f"labels span {BOX_RANGE[0]:.3f}..{BOX_RANGE[1]:.3f}: use a linear (or sigmoid) output"
        )
    return ""


@check("create_model", 3)
def test_class_head_outputs_probabilities(submission):
    """class_out is a softmax distribution and box_out can reach every box"""
    activations = working_model(submission).activations
    for name in ("class_out", "box_out"):
        problem = head_problem(name, activations.get(name))
        if problem:
            raise Incorrect(f"the {name} head cannot produce its targets", hint=problem)
    predictions = model_summary(submission).get("predictions")
    probs = predictions.get("class_out") if isinstance(predictions, dict) else None
    if not isinstance(probs, np.ndarray) or probs.shape != (8, 9):
        raise Incorrect(
            "could not read class_out predictions of shape (8, 9)",
            got=getattr(probs, "shape", type(probs).__name__),
        )
    sums = probs.sum(axis=1)
    if not (np.all(probs >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3)):
        raise Incorrect(
            "class probabilities should be non-negative and sum to 1",
            got=f"row sums {np.round(sums[:3], 3).tolist()}",
            hint="softmax missing: use activation='softmax' on the class head",
        )


@check("create_model", 2)
def test_model_size_trains_within_the_budget(submission):
    """parameter count in the range that trains within the grading budget"""
    params = working_model(submission).params
    if not isinstance(params, int) or not MIN_PARAMS <= params <= MAX_PARAMS:
        raise Incorrect(
            "the model's size is outside what trains in the grading budget",
            expected=f"{MIN_PARAMS:,}..{MAX_PARAMS:,} parameters",
            got=params,
            hint="pool the input down (e.g. AveragePooling2D) and keep the dense layer small",
        )


@check("create_model", 4)
def test_model_is_compiled_with_both_losses_and_the_iou_metric(submission):
    """compiled with a loss for each output and the IoU metric on box_out"""
    working_model(submission)  # compile settings count only for a model that runs
    info = model_summary(submission)
    if not info.get("compiled"):
        raise Incorrect(
            "create_model() should return a compiled model",
            hint="call model.compile(...) before returning it",
        )
    losses = info.get("loss") or {}
    missing = [
        name for name in ("class_out", "box_out") if not losses.get(name) and not losses.get("*")
    ]
    if missing:
        raise Incorrect(
            "a loss is missing for some outputs",
            expected="a loss for class_out and for box_out",
            got=losses,
        )
    class_loss = str(losses.get("class_out", "")).lower()
    if "sparse" in class_loss:
        raise Incorrect(
            "class_out's targets are one-hot",
            got=class_loss,
            hint="use categorical_crossentropy, not the sparse version",
        )
    metrics = (info.get("metrics") or {}).get("box_out") or []
    if not any("iou" in str(m).lower() for m in metrics):
        raise Incorrect(
            "the IoU metric should be attached to box_out",
            got=info.get("metrics"),
            hint="metrics={'class_out': 'accuracy', 'box_out': IoU(name='iou')}",
        )


# -- ShowTestImages


@check("ShowTestImages", 3)
def test_callback_figures_show_boxes(submission):
    """the figure shows the images with green (truth) and red (prediction) boxes"""
    report = callback_report(submission)
    if report.get("signature_problem"):
        raise Incorrect(
            "the figure should show the test images the callback is given: "
            + report["signature_problem"]
        )
    picture = report.get("last_figure")
    if not isinstance(picture, np.ndarray) or picture.ndim != 3:
        raise Incorrect("the callback's figure could not be rendered")
    green, red = colour_mask(picture, "green").sum(), colour_mask(picture, "red").sum()
    if green < 20 or red < 20:
        raise Incorrect(
            "the figure should show each image with its true box in green and the predicted box in red",
            got=f"{green} green and {red} red pixels",
            hint="use plot_bounding_box(image, true_box, predicted_box, norm=True)",
        )
    submission.artifacts.callback_figure = picture


@check("ShowTestImages", 2)
def test_callback_keeps_its_figures(submission):
    """the figures are kept in a list attribute (self.figures)"""
    if not callback_report(submission).get("figure_list_attributes"):
        raise Incorrect(
            "the callback should keep the figures it made in a list attribute",
            hint="append each figure to self.figures",
        )
