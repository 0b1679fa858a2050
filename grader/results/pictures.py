"""The report's pictures: what a grading drew for the learner, as PNGs with their headings.

Why a module of its own: drawing is the slow, matplotlib-heavy part of a report and the part an
assignment shapes. The engine draws what any assignment has (training curves from the Keras
history, the figure the learner's callback drew); an assignment's ``pictures`` hook adds its own
(this course: its model's predictions on hidden test images) or redraws a default one.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checking import Artifacts


@dataclass(frozen=True)
class Picture:
    """One picture of the report, shown in order under its heading."""

    title: str  # the report's heading
    caption: str  # one plain-text line under the heading ("" for none)
    alt: str  # the image's text alternative
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, from the PNG header; (0, 0) when it is not a PNG."""
        if self.png[:8] != b"\x89PNG\r\n\x1a\n" or len(self.png) < 24:
            return 0, 0
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")


#: The report's pictures are drawn at this resolution and shown at their own size (up to the
#: page's width): 10-point text is then ~14 px high, legible without zooming.
DPI = 100


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes (:data:`DPI`, tight)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def array_png(image: np.ndarray) -> bytes:
    """An (h, w, 3) uint8 array as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.astype(np.uint8))).save(buffer, format="PNG")
    return buffer.getvalue()


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display in a grader)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def curves_picture(
    history: dict[str, list[float]], titles: dict[str, str] | None = None
) -> Picture | None:
    """Training curves from a Keras history: one panel per metric (the last ``_`` word of a key,
    ``val_`` and per-output keys together), the total loss last. ``titles`` names panels."""
    panels: dict[str, list[str]] = {}
    for key in history:
        metric = key.rsplit("_", 1)[-1]
        if metric == "loss" and key not in ("loss", "val_loss"):
            continue  # per-output losses: the total says enough
        panels.setdefault(metric, []).append(key)
    if not panels:
        return None
    order = sorted(panels, key=lambda metric: metric == "loss")
    plt = pyplot()
    figure, axes = plt.subplots(1, len(order), figsize=(3.6 * len(order), 2.8), squeeze=False)
    for ax, metric in zip(axes.flat, order, strict=True):
        for key in panels[metric]:
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
        ax.set_title((titles or {}).get(metric, metric))
        ax.set_xlabel("epoch")
        ax.legend(fontsize=9)
    figure.tight_layout()
    png = figure_png(figure)
    plt.close(figure)
    return Picture(
        "Training curves",
        "Your model, trained by the grader with your architecture, compile settings and schedule.",
        "training curves",
        png,
    )


def report_pictures(
    artifacts: Artifacts, draw: Callable[[Artifacts], dict[str, Picture | None]] | None = None
) -> dict[str, Picture]:
    """The report's pictures by name, in the order shown: the assignment's (``draw``, its
    ``pictures`` hook) first, then the training curves and the callback's figure unless it drew
    them itself; a picture with nothing to draw is left out."""
    pictures: dict[str, Picture | None] = dict(draw(artifacts)) if draw else {}
    if "curves" not in pictures and artifacts.history:
        pictures["curves"] = curves_picture(artifacts.history)
    figure = artifacts.callback_figure
    if "callback" not in pictures and isinstance(figure, np.ndarray):
        pictures["callback"] = Picture(
            "Your callback's last figure", "", "figure drawn by your callback", array_png(figure)
        )
    return {name: picture for name, picture in pictures.items() if picture is not None}
