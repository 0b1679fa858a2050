"""Hidden checks of the model, the callback and the schedule's type.

The model's structure is judged from its Keras config rebuilt in the trusted process (counted only
for a model that runs); each head is judged on its own, whatever the other's shape. The callback is
judged on what its figures show (the images, the boxes, the titles) against the test batch it was
given and what the model predicted after each epoch; its boxes may come from the learner's own
plot_bounding_box, so a plotting mistake is charged to plot_bounding_box only.
"""

import re

import numpy as np

from grader.checking import CheckOutcome, Incorrect, check, short

from ... import course
from ... import reference as ref
from ..public.helpers import (
    CALLBACK_EPOCHS,
    CALLBACK_TEST_IMAGES,
    as_uint8_image,
    box_matches,
    callback_report,
    colour_mask,
    drawn_box,
    expected_box,
    locate_tiles,
    model_summary,
    working_model,
)
from .fingerprint import record_fingerprint

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
    "softmax": (0.0, 1.0),
}
BOX_RANGE = (
    ref.measure_box_geometry().margin / ref.IMAGE_SIZE,
    (ref.MAX_OFFSET + ref.measure_box_geometry().margin) / ref.IMAGE_SIZE,
)


@check("create_model", 2)
def test_class_head_outputs_probabilities(submission):
    """class_out gives a probability distribution (softmax), whatever its number of classes"""
    record_fingerprint(submission)
    activation = str(working_model(submission).activations.get("class_out") or "").lower()
    predictions = model_summary(submission).get("predictions") or {}
    probs = predictions.get("class_out") if isinstance(predictions, dict) else None
    if not isinstance(probs, np.ndarray) or probs.ndim != 2:
        raise Incorrect(
            "the model has no class_out output to judge", got=short(getattr(probs, "shape", probs))
        )
    sums = probs.sum(axis=1)
    if np.all(probs >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3):
        return
    raise Incorrect(
        "class_out should give probabilities: non-negative and summing to 1 over the classes",
        got=f"row sums {np.round(sums[:3], 3).tolist()}",
        hint=f"softmax missing: class_out uses {activation!r}; use activation='softmax' "
        "(categorical_crossentropy expects probabilities)"
        if activation and activation != "softmax"
        else "",
    )


@check("create_model", 1)
def test_box_head_can_reach_every_box(submission):
    """box_out's activation can produce every box label"""
    activation = str(working_model(submission).activations.get("box_out") or "linear").lower()
    low, high = ACTIVATION_RANGES.get(activation, (-np.inf, np.inf))
    if activation == "softmax":
        raise Incorrect(
            "box_out cannot produce most boxes",
            hint="box_out uses 'softmax', which forces row + col = 1: use a linear (or "
            "sigmoid) output for coordinates",
        )
    if low > BOX_RANGE[0] or high < BOX_RANGE[1]:
        raise Incorrect(
            f"box_out uses {activation!r}, whose outputs lie in [{low:g}, {high:g}], but box "
            f"labels span {BOX_RANGE[0]:.3f}..{BOX_RANGE[1]:.3f}",
            hint="use a linear (or sigmoid) output for the box",
        )


def _names(spec) -> list[str]:
    if isinstance(spec, list | tuple):
        return [str(s).lower() for s in spec]
    return [str(spec).lower()] if spec else []


MSE = {"mse", "mean_squared_error", "meansquarederror"}
CATEGORICAL = {"categorical_crossentropy", "categoricalcrossentropy"}


@check("create_model", 2)
def test_model_losses_match_its_heads(submission):
    """categorical cross-entropy for class_out, mean squared error for box_out, neither weighted 0"""
    outputs = list(working_model(submission).outputs)  # compile counts only for a model that runs
    info = model_summary(submission)
    if not info.get("compiled"):
        raise Incorrect(
            "create_model() should return a compiled model",
            hint="call model.compile(...) before returning it",
        )
    losses = info.get("loss") or {}
    for name, allowed, what in (
        ("class_out", CATEGORICAL, "categorical_crossentropy"),
        ("box_out", MSE, "mse (mean squared error)"),
    ):
        given = _names(losses.get(name) or losses.get("*"))
        if not given:
            raise Incorrect(
                f"no loss for {name}",
                expected="loss={'class_out': 'categorical_crossentropy', 'box_out': 'mse'}",
                got=losses,
            )
        if not set(given) & allowed:
            hint = (
                "the targets are one-hot rows: use categorical_crossentropy, not the sparse one"
                if name == "class_out" and any("sparse" in g for g in given)
                else ""
            )
            raise Incorrect(f"{name} should be trained with {what}", got=given, hint=hint)
    for name, weight in _loss_weights(info.get("loss_weights"), outputs).items():
        if name in ("class_out", "box_out") and not (_number(weight) > 0):
            raise Incorrect(
                f"{name}'s loss has the weight {weight}: a head whose loss weighs nothing is "
                "not trained",
                got=info.get("loss_weights"),
                hint="give both heads a weight above zero, loss_weights={'class_out': 1.0, "
                "'box_out': BOX_LOSS_WEIGHT}",
            )


def _loss_weights(weights, outputs: list[str]) -> dict:
    """compile's loss_weights as {output name: weight} (a list is in the outputs' order)."""
    if isinstance(weights, dict):
        return {str(k): v for k, v in weights.items()}
    if isinstance(weights, list | tuple) and len(weights) == len(outputs):
        return dict(zip(outputs, weights, strict=True))
    return {}


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@check("create_model", 1)
def test_compile_settings_name_the_models_outputs(submission):
    """the losses, loss weights and metrics are given for outputs the model has, by their names"""
    outputs = list(working_model(submission).outputs)
    info = model_summary(submission)
    weights = info.get("loss_weights")
    for what, given in (
        ("loss", info.get("loss")),
        ("loss_weights", weights if isinstance(weights, dict) else {}),
        ("metrics", info.get("metrics")),
    ):
        unknown = sorted(str(k) for k in (given or {}) if k != "*" and str(k) not in outputs)
        if unknown:
            raise Incorrect(
                f"compile's {what} names {unknown[0]!r}, which is not an output of the model: "
                "Keras's fit stops there",
                expected=f"keys among the outputs {outputs}",
                got=sorted(map(str, given)),
            )


@check("create_model", 2)
def test_model_logs_the_iou_metric_on_box_out(submission):
    """the IoU metric is compiled on box_out under the name 'iou' (logged as box_out_iou)"""
    working_model(submission)
    info = model_summary(submission)
    metrics = info.get("metrics") or {}
    on_box = _names(metrics.get("box_out") or metrics.get("*"))
    if "iou" in on_box:
        return
    # A name your IoU class gives itself for name="iou" is your IoU's mistake (its name check)
    own = _own_metric_name(submission)
    # (Keras numbers the automatic names of later instances: io_u, io_u_1, ...)
    if own and any(re.fullmatch(re.escape(own.lower()) + r"(_\d+)?", name) for name in on_box):
        return
    elsewhere = [name for name, given in metrics.items() if "iou" in _names(given)]
    raise Incorrect(
        "the IoU metric should be compiled on box_out as IoU(name='iou'), so that Keras logs "
        "box_out_iou",
        got=metrics,
        hint=f"it is compiled on {elsewhere[0]}: metrics={{'class_out': 'accuracy', 'box_out': IoU(name='iou')}}"
        if elsewhere and elsewhere[0] != "box_out"
        else "",
    )


def _own_metric_name(submission) -> str | None:
    """The name the learner's IoU class gives an instance made with name="iou"."""
    try:
        name = submission.metric_scripts([[("result",)]], kwargs={"name": "iou"}).get("name")
    except CheckOutcome:
        return None
    return name if isinstance(name, str) and name else None


# -- ShowTestImages


@check("ShowTestImages", 1)
def test_callback_keeps_its_figures(submission):
    """the figures are kept in self.figures"""
    report = callback_report(submission)
    lists = report.get("figure_list_attributes") or []
    if "figures" in lists:
        return
    raise Incorrect(
        "the callback should keep each figure it made in self.figures",
        hint=f"your figures are in self.{lists[0]}: name the list self.figures"
        if lists
        else "self.figures = [] in __init__, then self.figures.append(fig) in on_epoch_end",
    )


@check("ShowTestImages", 1)
def test_callback_with_show_false_leaves_no_figure_open(submission):
    """with show=False, each figure is closed once drawn (Jupyter displays every open figure)"""
    report = callback_report(submission)
    created, left = report.get("figures_created") or 0, report.get("figures_open") or 0
    if not created:
        raise Incorrect("the callback drew no figure, so how it ends them cannot be checked")
    if left:
        raise Incorrect(
            f"with show=False, {left} of the {created} figures drawn during the fit were left "
            "open: a notebook displays each open figure when the cell ends, so show=False would "
            "still show them",
            hint="plt.show() when self.show is True, otherwise plt.close(fig)"
            if left == created
            else "",
        )


def _panels(report) -> list[list[dict]]:
    """Per figure, its panels that show an image."""
    return [
        [p for p in figure.get("panels") or [] if isinstance(p.get("image"), np.ndarray)]
        for figure in (report.get("figures") or [])[:CALLBACK_EPOCHS]
    ]


def _plot_changes_its_input(submission) -> bool:
    """Whether the learner's plot_bounding_box changes the image it is given (then the
    callback's later figures draw what it left: that is plot_bounding_box's mistake)."""
    image = np.full((144, 144, 3), 0.5, np.float32)
    try:
        after = submission.call_returning_args("plot_bounding_box", image, [0.1, 0.1], None, True)
    except CheckOutcome:
        return False
    return bool(after) and not (
        isinstance(after[0], np.ndarray) and np.array_equal(after[0], image)
    )


def _judged(submission, report) -> list[list[dict]]:
    """The figures judged: every epoch's, or the first only when plot_bounding_box changes its
    input (see :func:`_plot_changes_its_input`)."""
    figures = _panels(report)
    if len(figures) > 1 and _plot_changes_its_input(submission):
        return figures[:1]
    return figures


def _shown(panel) -> np.ndarray | None:
    """The image a panel shows, as 0..255 pixels; None when it is not a 144x144 picture of
    numbers (NaN and infinity show nothing)."""
    image = panel["image"]
    if image.ndim != 3 or image.shape[:2] != (144, 144) or not np.isfinite(image).all():
        return None
    return as_uint8_image(image)


def _same_picture(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Two pictures equal, boxes included (within 3 levels on 99.5% of the pixels)."""
    if a is None or b is None or a.shape != b.shape:
        return False
    return bool((np.abs(a.astype(int) - b.astype(int)) <= 3).all(-1).mean() >= 0.995)


def _similar(a: np.ndarray | None, b: np.ndarray | None, share: float = 0.9) -> bool:
    """Whether two pictures show the same image: of the pixels inked in either (box outlines
    left out), ``share`` are equal within 3 levels."""
    if a is None or b is None or a.shape != b.shape:
        return False
    inked = (a < 250).any(-1) | (b < 250).any(-1)
    for picture in (a, b):
        inked &= ~(colour_mask(picture, "green") | colour_mask(picture, "red"))
    if not inked.any():
        return True
    equal = (np.abs(a.astype(int) - b.astype(int)) <= 3).all(-1)
    return bool(equal[inked].mean() >= share)


def _titles(report) -> list[list[tuple]]:
    """Per figure, each image's title and its colour: what the diagnosis compares."""
    return [
        [
            (str(p.get("title")), tuple(np.round(p.get("title_colour") or (0, 0, 0), 3)))
            for p in panels
        ]
        for panels in _panels(report)
    ]


@check("ShowTestImages", 2)
def test_callback_shows_the_test_images_it_is_given(submission):
    """each figure shows the num_images test images it was given, the same every epoch"""
    report = callback_report(submission)
    if report.get("signature_problem"):
        raise Incorrect(
            "the figure should show the test images the callback is given: "
            + report["signature_problem"]
        )
    tests, truth = report["test_images"], report["test_targets"]["box_out"]
    figures = _judged(submission, report)
    if not figures:
        raise Incorrect("the callback made no figure to look at (see the figure-per-epoch check)")
    for epoch, panels in enumerate(figures, start=1):
        if len(panels) != CALLBACK_TEST_IMAGES:
            raise Incorrect(
                f"with num_images={CALLBACK_TEST_IMAGES}, the figure of epoch {epoch} should show "
                f"{CALLBACK_TEST_IMAGES} images",
                got=f"{len(panels)} images",
                hint="one subplot per test image: plt.subplots(1, len(self.images))",
            )
        predicted = _epoch_boxes(report, epoch - 1)
        for i, panel in enumerate(panels):
            shown = _shown(panel)
            if _similar(shown, tests[i]):
                continue
            if predicted is not None and _drawn_by_own_plot(
                submission, panel, tests[i], truth[i], predicted[0][i]
            ):
                continue  # what the learner's own plot_bounding_box draws: judged there
            hint = ""
            if shown is not None and shown.mean() < 60 < tests[i].mean():
                hint = (
                    "the images are nearly black: the test images are floats in [0, 1], so "
                    "draw them with plot_bounding_box(..., norm=True)"
                )
            elif len(figures) > 1 and not _similar(
                _shown(figures[0][i]), _shown(figures[1][i]), 0.95
            ):
                hint = (
                    "each epoch shows other images: keep the test batch given to __init__ "
                    "(self.images) and draw those same images every epoch"
                )
            elif any(_similar(shown, t) for t in tests):
                hint = (
                    "the images are not in the test batch's order: draw self.images[i] in panel i"
                )
            raise Incorrect(
                f"image {i + 1} of the figure of epoch {epoch} is not test image {i + 1} of the "
                "test batch the callback was given",
                hint=hint,
            )


def _epoch_boxes(report, epoch: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(predicted boxes, predicted classes) of the model after ``epoch`` (0-based)."""
    predictions = report.get("epoch_predictions") or []
    if epoch >= len(predictions) or not isinstance(predictions[epoch], dict):
        return None
    boxes, probs = predictions[epoch].get("box_out"), predictions[epoch].get("class_out")
    if not isinstance(boxes, np.ndarray) or not isinstance(probs, np.ndarray):
        return None
    return boxes, probs.argmax(axis=1)


def _rectangles(panel, colour: str) -> list:
    want = (0, 1) if colour == "green" else (1, 0)
    found = []
    for x, y, w, h, rgb in panel.get("rectangles") or []:
        if rgb and (rgb[1] > rgb[0]) == bool(want[0]):
            found.append((y, x, y + h, x + w))
    return found


def _box_shown(panel, tests_image, coords, colour) -> bool:
    """The panel shows a ``colour`` box at ``coords``: drawn into its pixels or as a patch."""
    want = expected_box(coords)
    if box_matches(drawn_box(panel["image"], colour, tests_image), want):
        return True
    return any(
        all(
            abs(a - b) <= 1.5
            for a, b in zip(r, (want.top, want.left, want.bottom, want.right), strict=True)
        )
        for r in _rectangles(panel, colour)
    )


@check("ShowTestImages", 2)
def test_callback_draws_the_true_and_predicted_boxes(submission):
    """each image has its true box in green and the model's prediction for it in red"""
    report = callback_report(submission)
    tests, truth = report["test_images"], report["test_targets"]["box_out"]
    figures = _judged(submission, report)
    if not any(figures):
        raise Incorrect("the figures show no image, so their boxes cannot be checked")
    for epoch, panels in enumerate(figures):
        predicted = _epoch_boxes(report, epoch)
        if predicted is None:
            raise Incorrect("the model's predictions after each epoch could not be read")
        for i, panel in enumerate(panels):
            other = i >= CALLBACK_TEST_IMAGES or not _similar(_shown(panel), tests[i])
            if other and _boxes_on_other_image(panel):
                continue  # another image than the test batch's: charged by the images check
            if i >= CALLBACK_TEST_IMAGES:
                raise Incorrect(
                    f"image {i + 1} of the figure of epoch {epoch + 1} shows no emoji with a "
                    "green and a red box"
                )
            if _box_shown(panel, tests[i], truth[i], "green") and _box_shown(
                panel, tests[i], predicted[0][i], "red"
            ):
                continue
            if _drawn_by_own_plot(submission, panel, tests[i], truth[i], predicted[0][i]):
                continue
            hint = ""
            if _box_shown(panel, tests[i], truth[i], "red"):
                hint = (
                    "the red box is at the true box: draw the model's prediction, "
                    "self.model.predict(self.images), as the red box"
                )
            elif _box_shown(panel, tests[i], predicted[0][i], "green"):
                hint = "the colours are swapped: the true box is green, the prediction red"
            raise Incorrect(
                f"image {i + 1} of the figure of epoch {epoch + 1} should show its true box in "
                f"green (row, col = {np.round(truth[i], 3).tolist()}) and the prediction in red "
                f"({np.round(predicted[0][i], 3).tolist()})",
                hint=hint,
            )


def _boxes_on_other_image(panel) -> bool:
    """For a panel showing another image than the test batch's (charged by the images check):
    it shows an emoji with a green and a red box drawn on it (where the boxes belong only the
    callback knew)."""
    shown = _shown(panel)
    if shown is None:
        return False
    boxes = colour_mask(shown, "green") | colour_mask(shown, "red")
    clean = np.where(boxes[..., None], 255, shown).astype(np.uint8)
    if not locate_tiles(clean[None]).found(0.15)[0]:
        return False
    drawn = {
        colour: drawn_box(shown, colour) is not None or bool(_rectangles(panel, colour))
        for colour in ("green", "red")
    }
    return drawn["green"] and drawn["red"]


def _drawn_by_own_plot(submission, panel, image, true_box, pred_box) -> bool:
    """The panel is what the learner's own plot_bounding_box draws for this image and boxes (a
    plotting mistake is plot_bounding_box's, not the callback's)."""
    try:
        own = submission.call(
            "plot_bounding_box", image.astype(np.float32) / 255, true_box, pred_box, True
        )
    except CheckOutcome:
        return False
    if not isinstance(own, np.ndarray) or own.ndim != 3 or own.shape[:2] != (144, 144):
        return False
    return _same_picture(_shown(panel), _shown({"image": own}))


def _titled_with_a_class(panel) -> bool:
    title = str(panel.get("title") or "").lower()
    colour = panel.get("title_colour") or [0, 0, 0]
    return any(n.lower() in title for n in course.CLASS_NAMES) and colour[0] != colour[1]


@check("ShowTestImages", 1)
def test_callback_titles_name_the_predicted_class(submission):
    """each image is titled with the predicted class, green when right and red when wrong"""
    report = callback_report(submission)
    truth = report["test_targets"]["class_out"].argmax(axis=1)
    figures = _judged(submission, report)
    if not any(figures):
        raise Incorrect("the figures show no image, so their titles cannot be checked")
    for epoch, panels in enumerate(figures):
        predicted = _epoch_boxes(report, epoch)
        if predicted is None:
            raise Incorrect("the model's predictions after each epoch could not be read")
        for i, panel in enumerate(panels):
            other = i >= CALLBACK_TEST_IMAGES or not _similar(
                _shown(panel), report["test_images"][i]
            )
            if other and _titled_with_a_class(panel):
                continue  # another image than the test batch's: charged by the images check
            if i >= CALLBACK_TEST_IMAGES:
                raise Incorrect(
                    f"image {i + 1} of the figure of epoch {epoch + 1} is not titled with a class"
                )
            name = course.CLASS_NAMES[int(predicted[1][i]) % course.NUM_CLASSES]
            title, colour = str(panel.get("title") or ""), panel.get("title_colour") or [0, 0, 0]
            right = predicted[1][i] == truth[i]
            problems = []
            if name.lower() not in title.lower():
                true_name = course.CLASS_NAMES[int(truth[i])]
                problems.append(
                    f"the title should name the predicted class, {name!r}; it is {title!r}"
                    + (
                        " (the true class: title it with the prediction)"
                        if true_name.lower() in title.lower() and true_name != name
                        else ""
                    )
                )
            green = colour[1] > colour[0]
            red = colour[0] > colour[1]
            if (right and not green) or (not right and not red):
                problems.append(
                    f"the prediction is {'right' if right else 'wrong'}, so the title should be "
                    f"{'green' if right else 'red'}"
                )
            if problems:
                hint = submission.diagnose(
                    "ShowTestImages",
                    lambda other: _titles(callback_report(other)),
                    _titles(report),
                    same=lambda a, b: a == b,
                    mutants=False,
                )
                raise Incorrect(
                    f"image {i + 1} of the figure of epoch {epoch + 1}: " + "; ".join(problems),
                    hint=hint,
                )


# -- lr_schedule

FLOAT_TYPES = {"builtins.float", "numpy.float32", "numpy.float64"}


@check("lr_schedule", 1)
def test_lr_schedule_returns_a_float(submission):
    """it returns a float, as keras.callbacks.LearningRateScheduler requires"""
    for epoch, lr in ((0, 1e-3), (5, 1e-3), (30, 1e-4)):
        reply = submission.call("lr_schedule", epoch, lr, typed=True)
        kind = reply.get("type") if isinstance(reply, dict) else None
        if kind in FLOAT_TYPES:
            continue
        raise Incorrect(
            f"lr_schedule({epoch}, {lr:g}) should return a float: LearningRateScheduler refuses "
            "anything else and stops the training",
            got=f"a value of type {kind}",
            hint="return float(new_lr)" if kind else "",
        )
