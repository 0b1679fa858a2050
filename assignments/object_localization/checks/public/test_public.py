"""Public checks: the learner's self-check runs these; grading runs them too.

Each check tests one property of the task's contract, on several inputs, and compares the
learner's part with itself or with what the task states, never through another graded part. A
failed check says what was expected and what came back; a hint names a mistake only when the
learner's values match what that mistake gives (``Submission.diagnose``).
"""

import numpy as np
from hypothesis import strategies as st

from grader.checking import CheckOutcome, Incorrect, PartialCredit, check, short

from ... import course
from .cost import COST_HINT, mflops, over_budget
from .helpers import (
    CALLBACK_EPOCHS,
    MARGIN,
    SIDE,
    box_matches,
    callback_report,
    close,
    counterexample,
    drawn_box,
    examples,
    expected_box,
    generated,
    locate_tiles,
    metric_values,
    one_pair_each,
    working_model,
)
from .mistakes import FLOOR, HOLD, rule
from .problems import (
    box_problem,
    iou_problem,
    label_problem,
    pixels_of,
    schedule_problem,
    schedule_values,
    thickness_problem,
)

PUBLIC_SEEDS = list(range(100, 112))

# -- create_example


@check("create_example", 3, public=True)
def test_create_example_returns_an_image_and_labels(submission):
    """create_example returns a 144x144x3 uint8 image showing one emoji on white, an integer class id and two numbers"""
    for seed, example in zip(PUBLIC_SEEDS, examples(submission, PUBLIC_SEEDS), strict=True):
        image, class_id = example.image, example.class_id
        if image.shape != (144, 144, 3):
            raise Incorrect(
                "the image has the wrong shape", expected=(144, 144, 3), got=image.shape
            )
        if image.dtype != np.uint8:
            raise Incorrect(
                "the image should be uint8 (0..255), as the tiles are",
                got=image.dtype,
                hint="make the canvas with np.full((144, 144, 3), 255, dtype=np.uint8)",
            )
        if not isinstance(class_id, int) or isinstance(class_id, bool):
            raise Incorrect("class_id should be an integer", got=short(example.class_id))
        if not 0 <= class_id < course.NUM_CLASSES:
            raise Incorrect("class_id is out of range", expected="0..8", got=class_id)
        if not np.isfinite([example.row, example.col]).all():
            raise Incorrect("row and col should be numbers", got=(example.row, example.col))
        located = locate_tiles(image[None])
        if not located.found()[0]:
            raise Incorrect(
                f"for rng seed {seed}, the image does not show one emoji tile on a white canvas",
                hint="paste the whole 72x72 tile, image[row:row + 72, col:col + 72] = "
                "emoji_tiles[class_id], on a canvas of 255s",
            )
        r, c = located.rows[0], located.cols[0]
        outside = image.copy()
        outside[r : r + 72, c : c + 72] = 255
        if (outside != 255).any():
            raise Incorrect(
                f"for rng seed {seed}, the canvas is not white around the emoji",
                hint="start from np.full((144, 144, 3), 255, dtype=np.uint8) and paste one tile",
            )


def _drawn(submission, seeds):
    """(examples, located tiles) for these seeds; only examples whose tile is visible count."""
    found = examples(submission, seeds)
    located = locate_tiles(np.stack([e.image for e in found]) if found else np.zeros((0,)))
    return found, located


@check("create_example", 2, public=True)
def test_create_example_class_names_the_emoji_drawn(submission):
    """the class id names the emoji drawn"""
    found, located = _drawn(submission, PUBLIC_SEEDS)
    visible = located.found()
    if not visible.any():
        raise Incorrect("no emoji tile is visible in the images, so the class cannot be checked")
    for i in np.flatnonzero(visible):
        if found[i].class_id != located.classes[i]:
            drawn = int(located.classes[i])
            raise Incorrect(
                f"for rng seed {PUBLIC_SEEDS[i]}, the image shows class {drawn} "
                f"({course.CLASS_NAMES[drawn]}) but class_id is {short(found[i].class_id)}",
                hint="paste emoji_tiles[class_id] for the class_id you return (draw it once)",
            )


@check("create_example", 3, public=True)
def test_create_example_box_is_where_the_emoji_is(submission):
    """the box label is the top-left corner of the face's box, normalised by 144"""
    found, located = _drawn(submission, PUBLIC_SEEDS)
    visible = located.found()
    if not visible.any():
        raise Incorrect("no emoji tile is visible in the images, so the box cannot be checked")
    seeds = [s for s, v in zip(PUBLIC_SEEDS, visible, strict=True) if v]
    labels = np.array([[found[i].row, found[i].col] for i in np.flatnonzero(visible)])
    rows, cols = located.rows[visible], located.cols[visible]
    want = (np.stack([rows, cols], axis=1) + MARGIN) / 144
    if close(labels, want, 0.5 / 144):
        return

    def measure(other):
        return np.array([[e.row, e.col] for e in examples(other, seeds)])

    places = [f"for rng seed {seed}" for seed in seeds]
    raise Incorrect(
        label_problem(submission, "create_example", places, rows, cols, labels, measure)
    )


# -- plot_bounding_box

#: (true box, predicted box) pairs the public check draws on a white canvas: inside, at the
#: image's edges, and each on the other's side.
BOX_CASES = (
    ((20 / 144, 60 / 144), (70 / 144, 15 / 144)),
    ((MARGIN / 144, (72 + MARGIN) / 144), ((72 + MARGIN) / 144, MARGIN / 144)),
    ((81 / 144, 3 / 144), (4 / 144, 77 / 144)),
)


@check("plot_bounding_box", 5, public=True)
def test_plot_bounding_box_draws_both_boxes(submission):
    """the true box is green and the predicted box red, BOX_SIDE wide, where the coordinates say"""
    image = np.full((144, 144, 3), 255, np.uint8)
    thin = None
    for true_box, pred_box in BOX_CASES:
        alone = pixels_of(submission.call("plot_bounding_box", image, list(true_box)), "the image")
        both = pixels_of(
            submission.call("plot_bounding_box", image, list(true_box), list(pred_box)),
            "the returned image",
        )
        swapped = box_matches(drawn_box(both, "green", alone), expected_box(pred_box))
        # the true box alone first, then the prediction added: each box is read on its own
        for coords, colour, picture, before, args in (
            (true_box, "green", alone, None, [image, list(true_box)]),
            (pred_box, "red", both, alone, [image, list(true_box), list(pred_box)]),
        ):

            def measure(other, args=args, colour=colour):
                drawn = other.call("plot_bounding_box", *args)
                return drawn_box(pixels_of(drawn, "the image"), colour)

            problem = box_problem(
                submission, picture, coords, colour, before, measure, swapped=swapped
            )
            if problem:
                raise Incorrect(problem)
            thin = thin or thickness_problem(picture, colour, before)
    if thin:  # the boxes are where they belong: most of the points
        raise PartialCredit(0.6, thin)


# -- data_generator


@check("data_generator", 5, public=True)
def test_data_generator_yields_dicts_of_the_right_shapes(submission):
    """batches are ({'image': x}, {'class_out': y, 'box_out': box}) with the right shapes, x the pixels / 255"""
    for batch_size in (1, 4, 16):
        (batch,) = generated(submission, batch_size)
        if batch.container:
            raise Incorrect("; ".join(batch.container))
        x, y, box = batch.x, batch.class_out, batch.box_out
        expected = {
            "x": (batch_size, 144, 144, 3),
            "class_out": (batch_size, 9),
            "box_out": (batch_size, 2),
        }
        for name, array in (("x", x), ("class_out", y), ("box_out", box)):
            if array.shape != expected[name]:
                raise Incorrect(
                    f"for batch_size={batch_size}, {name} has the wrong shape",
                    expected=expected[name],
                    got=array.shape,
                )
        if x.dtype.kind != "f":
            raise Incorrect(
                "images should be floats", got=x.dtype, hint="divide the uint8 image by 255"
            )
        if not np.isfinite(x).all():
            raise Incorrect("images should be numbers in [0, 1]", got="NaN or infinity")
        if x.max() > 1.0 + 1e-6 or x.min() < 0:
            hint = (
                "divide by 255"
                if x.max() > 1.5
                else "the images are scaled to [-1, 1]: divide by 255 only"
                if x.min() < -0.9 and x.max() > 0.9
                else ""
            )
            raise Incorrect(
                "images should lie in [0, 1]", got=f"{x.min():.3f}..{x.max():.3f}", hint=hint
            )
        if not np.isfinite(box).all():
            raise Incorrect("box_out should hold numbers", got="NaN or infinity")
        levels = x.astype(np.float64) * 255
        if np.abs(levels - np.round(levels)).max() > 0.02:
            hint = (
                ". Hint: float16 cannot hold every level: use float32"
                if x.dtype == np.float16
                else ". Hint: divide by 255"
                if abs(x.max() * 256 - 255) < 0.01
                else ""
            )
            raise PartialCredit(
                0.6,
                "images should be the 0..255 pixels divided by 255: x * 255 is not a whole "
                f"number of levels (the brightest pixel is {x.max():.4f}){hint}",
            )


# -- IoU

SIDE_N = SIDE / 144
#: The notebook's own cases, each on a fresh metric: (name, y_true, y_pred, IoU).
IOU_CASES = (
    ("identical", (0.2, 0.2), (0.2, 0.2), 1.0),
    ("disjoint", (0.0, 0.0), (0.6, 0.6), 0.0),
    ("touching", (0.2, 0.2), (0.2, 0.2 + SIDE_N), 0.0),
    ("half overlap", (0.2, 0.2), (0.2, 0.2 + SIDE_N / 2), 1 / 3),
    ("side by side", (0.2, 0.0), (0.2, 0.6), 0.0),
)

#: Fresh metrics per case of IOU_CASES: a value that is wrong for one fresh metric in two (a random
#: initial state) passes all of them on 2^-8 of the seeds, per case it changes.
FRESH_METRICS = 8


@check("IoU", 3, public=True)
def test_iou_is_a_keras_metric_named_as_asked(submission):
    """IoU is a keras.metrics.Metric and keeps the name it is given (Keras logs it as box_out_iou)"""
    for name in ("iou", "box_iou"):
        reply = submission.metric_scripts([[("result",)]], kwargs={"name": name})
        if not reply.get("is_metric"):
            raise Incorrect("IoU should subclass keras.metrics.Metric")
        if reply.get("name") != name:
            raise Incorrect(
                f"IoU(name={name!r}).name should be {name!r}",
                got=short(reply.get("name")),
                hint="pass the name on: super().__init__(name=name, **kwargs)",
            )


@check("IoU", 4, public=True)
def test_iou_of_the_notebooks_cases(submission):
    """identical boxes 1, disjoint 0, touching 0, half overlap 1/3, side by side 0, each on a fresh metric"""
    y_true = np.array([case[1] for case in IOU_CASES], np.float32)
    y_pred = np.array([case[2] for case in IOU_CASES], np.float32)
    want = np.array([case[3] for case in IOU_CASES])

    def measure(other):
        # each case on FRESH_METRICS fresh metrics, its most wrong value kept: a state that
        # starts random (a variable made with a random initializer) shows on every hidden seed
        pairs = one_pair_each(
            np.tile(y_true, (FRESH_METRICS, 1)), np.tile(y_pred, (FRESH_METRICS, 1))
        )
        values = np.asarray(metric_values(other, pairs), float).reshape(FRESH_METRICS, len(want))
        off = np.nan_to_num(np.abs(values - want), nan=np.inf)
        return values[off.argmax(axis=0), np.arange(len(want))].tolist()

    got = measure(submission)
    if close(got, want, 2e-3):
        return
    raise Incorrect(
        iou_problem(submission, "the notebook's cases", y_true, y_pred, got, want, measure)
    )


# -- create_model


@check("create_model", 2, public=True)
def test_model_takes_a_144x144_rgb_image_named_image(submission):
    """one input named 'image' of shape (None, 144, 144, 3)"""
    audit = working_model(submission)
    if audit.input_shape != (144, 144, 3):
        raise Incorrect(
            "the model should have one input of shape (None, 144, 144, 3)",
            got=f"(None, {', '.join(map(str, audit.input_shape))})"
            if audit.input_shape
            else f"{len(audit.input_names)} inputs",
        )
    if audit.input_names != ("image",):
        raise Incorrect(
            "the model's input should be named 'image': the generator yields {'image': x} and "
            "Keras matches it to the input by that name",
            got=short(list(audit.input_names)),
            hint="keras.Input(shape=(144, 144, 3), name='image')",
        )


@check("create_model", 3, public=True)
def test_model_has_named_outputs_of_the_right_shapes(submission):
    """outputs named class_out (None, 9) and box_out (None, 2)"""
    found = working_model(submission).outputs
    if set(found) != {"class_out", "box_out"}:
        raise Incorrect(
            "the model's outputs have the wrong names",
            expected="class_out and box_out",
            got=sorted(found),
            hint="name the output layers, Dense(..., name='class_out'), and return them as a "
            "dict: targets are matched to outputs by these names",
        )
    for name, shape in (("class_out", (9,)), ("box_out", (2,))):
        if tuple(found[name]) != shape:
            hint = (
                f"the class head needs one unit per class: Dense({course.NUM_CLASSES}, ...)"
                if name == "class_out"
                else "the box head predicts (row, col): Dense(2, ...)"
            )
            raise Incorrect(
                f"{name} has the wrong shape",
                expected=(None, *shape),
                got=(None, *found[name]),
                hint=hint,
            )


@check("create_model", 2, public=True)
def test_model_cost_fits_the_training_budget(submission):
    """at most the notebook's cost limit per example, so the grader can train it"""
    model = working_model(submission)
    submission.measured("million FLOPs per example", mflops(model))
    problem = over_budget(model)
    if problem:
        raise Incorrect(problem, hint=COST_HINT)


# -- ShowTestImages


@check("ShowTestImages", 3, public=True)
def test_callback_draws_one_figure_per_epoch(submission):
    """inside model.fit, one figure per epoch"""
    report = callback_report(submission)
    created = report.get("figures_created")
    figure = report.get("last_figure")
    if isinstance(figure, np.ndarray) and figure.ndim == 3:
        submission.artifacts.callback_figure = figure  # the report shows what was drawn
    if created == CALLBACK_EPOCHS:
        return
    raise Incorrect(
        f"during a {CALLBACK_EPOCHS}-epoch fit the callback should create one figure per epoch",
        expected=CALLBACK_EPOCHS,
        got=created,
        hint=(
            "no figure was made during the fit: Keras calls on_epoch_end(self, epoch, logs) "
            "after each epoch; draw the figure there"
            if created == 0
            else f"{created} figures in {CALLBACK_EPOCHS} epochs: make one figure per "
            "on_epoch_end call, with all the images as subplots of it"
        ),
    )


# -- lr_schedule

#: (epoch, incoming lr): the learner notebook's own table, then rates on and below the floor.
SCHEDULE_CALLS = (
    (0, 1e-3),
    (1, 1e-3),
    (2, 1e-3),
    (2, 4e-4),
    (3, 1e-3),
    (4, 5e-4),
    (6, 4e-4),
    (8, 1.5e-5),
    (9, 1e-5),
    (20, 3e-6),
)


def schedule_property(submission, epochs, rates, holds) -> None:
    """The schedule's rule on the table's calls of ``epochs``, then on any (epoch, rate) of those
    ranges: Hypothesis searches for the simplest call that breaks it."""
    calls = [(e, lr) for e, lr in SCHEDULE_CALLS if e in epochs]
    got = schedule_values(submission, calls)
    if not all(holds(e, lr, g) for (e, lr), g in zip(calls, got, strict=True)):
        raise Incorrect(schedule_problem(submission, calls, got))

    def broken(call) -> bool:
        epoch, lr = call
        try:
            return not holds(epoch, lr, schedule_values(submission, [call])[0])
        except CheckOutcome:
            return True

    found = counterexample(st.tuples(st.integers(epochs.start, epochs.stop - 1), rates), broken)
    if found is not None:
        raise Incorrect(schedule_problem(submission, [found], schedule_values(submission, [found])))


#: The rates a schedule is given: while it holds, what training starts with (never below the
#: floor); after, from far below the floor to far above any sensible rate.
STARTING_RATES = st.floats(FLOOR, 1.0, allow_nan=False)
RATES = st.floats(1e-7, 1.0, allow_nan=False)


def _right(epoch: int, lr: float, got: float) -> bool:
    want = rule(epoch, lr)
    return abs(got - want) <= 1e-4 * want


@check("lr_schedule", 2, public=True)
def test_lr_schedule_keeps_the_rate_for_three_epochs(submission):
    """epochs 0, 1 and 2 return the incoming rate unchanged"""
    schedule_property(submission, range(0, HOLD), STARTING_RATES, _right)


@check("lr_schedule", 2, public=True)
def test_lr_schedule_halves_the_rate_down_to_the_floor(submission):
    """from epoch 3, each epoch halves the incoming rate, never below MIN_LR = 1e-5"""
    schedule_property(submission, range(HOLD, 1000), RATES, _right)
