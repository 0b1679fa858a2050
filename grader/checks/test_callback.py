"""ShowTestImages: a Callback that draws one figure per epoch, with boxes."""

import numpy as np

from grader import reference as ref
from grader.check_api import Incorrect, check
from grader.checks.helpers import hidden_batch

EPOCHS = 2


def run(submission):
    batch = hidden_batch(8, 60)
    x, targets = ref.model_inputs(batch)
    test = ref.model_inputs(hidden_batch(4, 61))
    kwargs = {"test_data": [{"image": test[0]}, test[1]], "num_images": 4, "show": False}
    report = submission.callback(batch.images, targets, epochs=EPOCHS, steps=2, kwargs=kwargs)
    if not report.get("is_callback"):
        raise Incorrect("ShowTestImages should subclass keras.callbacks.Callback")
    _ = x
    return report


@check("ShowTestImages", 5, public=True)
def test_callback_draws_one_figure_per_epoch(submission):
    """inside model.fit, one figure per epoch"""
    report = run(submission)
    if report.get("figures_created") != EPOCHS:
        raise Incorrect(
            f"during a {EPOCHS}-epoch fit the callback should create one figure per epoch",
            expected=EPOCHS,
            got=report.get("figures_created"),
            hint="draw in on_epoch_end, once per call",
        )


@check("ShowTestImages", 3)
def test_callback_figures_show_boxes(submission):
    """the figure shows the images with green (truth) and red (prediction) boxes"""
    report = run(submission)
    picture = report.get("last_figure")
    if not isinstance(picture, np.ndarray) or picture.ndim != 3:
        raise Incorrect("the callback's figure could not be rendered")
    r, g, b = (picture[..., i].astype(int) for i in range(3))
    green = ((g > 90) & (r < 90) & (b < 90)).sum()
    red = ((r > 150) & (g < 90) & (b < 90)).sum()
    if green < 20 or red < 20:
        raise Incorrect(
            "the figure should show each image with its true box in green and the predicted box in red",
            got=f"{green} green and {red} red pixels",
            hint="use plot_bounding_box(image, true_box, predicted_box, norm=True)",
        )
    submission.artifacts["callback_figure"] = picture


@check("ShowTestImages", 2)
def test_callback_keeps_its_figures(submission):
    """the figures are kept in a list attribute (self.figures)"""
    report = run(submission)
    if not report.get("figure_list_attributes"):
        raise Incorrect(
            "the callback should keep the figures it made in a list attribute",
            hint="append each figure to self.figures",
        )
