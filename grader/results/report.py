"""GradingResult -> one self-contained ``report.html`` (Jinja; pictures inline, no external requests).

The learner reads this page, so it shows what the checks said, their captured output as plain text
(no terminal codes, no host paths), the pictures of their model on hidden test images and the
training curves. The templates are in ``grader/results/templates``; :data:`_ENV` also renders the
batch's ``index.html`` (``grader.batch.gradebook``).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from grader import __version__, reference
from grader.checking import Artifacts, scrub
from grader.files import write_atomically
from grader.results.scoring import GradingResult

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.results", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def as_text(captured: str) -> str:
    """Captured terminal output as plain text: colour and cursor codes removed, a line rewritten
    with carriage returns or backspaces (Keras progress bars) shown as it ended, and host paths
    (library warnings name the venv's files) cut to file names."""
    text = _ANSI.sub("", captured).replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        if "\x08" in line:  # a backspace erases the character before it
            kept: list[str] = []
            for char in line:
                if char != "\x08":
                    kept.append(char)
                elif kept:
                    kept.pop()
            line = "".join(kept)
        lines.append(line)
    return scrub("\n".join(lines))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def predictions_picture(
    images: np.ndarray,
    true_boxes: np.ndarray,
    pred_boxes: np.ndarray,
    true_classes: np.ndarray,
    pred_classes: np.ndarray,
) -> bytes:
    """A grid of hidden test images: truth in green, the learner's prediction in red, as in the course."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    count = len(images)
    columns = min(count, 4)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index in range(count):
        ax = axes.flat[index]
        ax.imshow(reference.draw_boxes(images[index], true_boxes[index], pred_boxes[index]))
        right = pred_classes[index] == true_classes[index]
        iou = reference.iou(true_boxes[index : index + 1], pred_boxes[index : index + 1])[0]
        ax.set_title(
            f"{reference.CLASS_NAMES[pred_classes[index]]}  IoU {iou:.2f}",
            color="green" if right else "red",
            fontsize=9,
        )
    figure.tight_layout()
    png = _figure_png(figure)
    plt.close(figure)
    return png


def curves_picture(history: dict[str, list[float]]) -> bytes | None:
    """Training curves from the learner's history: IoU and class accuracy per epoch."""
    panels = [
        ("box IoU", [key for key in history if key.endswith("iou")]),
        ("class accuracy", [key for key in history if key.endswith("accuracy")]),
        ("loss", [key for key in history if key.endswith("loss") and "_out_" not in key]),
    ]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels, strict=True):
        for key in keys:
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    figure.tight_layout()
    png = _figure_png(figure)
    plt.close(figure)
    return png


def report_pictures(artifacts: Artifacts) -> dict[str, bytes | None]:
    """The report's pictures as PNG bytes, by name (``predictions``, ``curves``, ``callback``),
    drawn from the artifacts the checks kept; a picture with nothing to draw is left out."""
    pictures: dict[str, bytes | None] = {}
    shown = artifacts.predictions
    if shown is not None:
        pictures["predictions"] = predictions_picture(
            shown.images,
            shown.true_boxes,
            shown.pred_boxes,
            shown.true_classes,
            shown.pred_classes,
        )
    if artifacts.history:
        pictures["curves"] = curves_picture(artifacts.history)
    figure = artifacts.callback_figure
    if isinstance(figure, np.ndarray):
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(figure.astype(np.uint8))).save(buffer, format="PNG")
        pictures["callback"] = buffer.getvalue()
    return pictures


def render_report(result: GradingResult) -> str:
    pictures = {name: png_data_uri(png) for name, png in result.pictures.items() if png is not None}
    percent = 100.0 * result.score / result.max_score if result.max_score else 0.0
    return _ENV.get_template("report.html.j2").render(
        result=result,
        percent=percent,
        parts=result.part_scores(),
        pictures=pictures,
        code=result.artifacts.code,
        captured_output=as_text(result.artifacts.captured_output),
        original_course=result.artifacts.original_course,
        plain=as_text,
        problems=result.artifacts.problems,
        extra=result.extra,
        version=__version__,
        credit=reference.OPENMOJI_CREDIT,
    )


def write_report(result: GradingResult, path: Path) -> None:
    write_atomically(path, render_report(result).encode("utf-8"))
