"""The quiz's parameterised questions (the ``quiz_generators`` hook of ``assignment.yaml``).

Numbers come from a seeded RNG and answers are computed, so every attempt gets its own variant and
its answer is right by construction. The course conventions come from the course's own material
(``course``: the image and tile sides, and the box margin and side it measures from the rendered
glyphs), never restated: 144x144 images, a 72x72 emoji tile pasted at row, col in [0, 72], the
visible glyph's top-left at (row + margin, col + margin), a fixed box side. The glyphs are measured
when a question first needs them, not when this module is imported.
"""

from __future__ import annotations

import math
import random

from quiz.generators import Generated, Generators
from quiz.model import Option

from . import course

IMAGE = course.IMAGE_SIZE
TILE = course.TILE_SIZE

GENERATORS = Generators()


# ---------------------------------------------------------------------------------------------- IoU


@GENERATORS.register("iou_two_boxes", "numeric")
def iou_two_boxes(
    rng: random.Random, side: int | None = None, disjoint_chance: float = 0.2
) -> Generated:
    """IoU of two equal square boxes at seeded positions (sometimes disjoint: clamping matters)."""
    side = side or course.measure_box_geometry().side
    ar, ac = rng.randint(10, 82), rng.randint(10, 82)
    if rng.random() < disjoint_chance:
        dr = rng.choice([-1, 1]) * rng.randint(side, side + 8)
        dc = rng.randint(-20, 20)
    else:
        dr, dc = rng.randint(-side + 4, side - 4), rng.randint(-side + 4, side - 4)
    br = min(max(ar + dr, 0), IMAGE - side)
    bc = min(max(ac + dc, 0), IMAGE - side)
    a = (ar, ac, ar + side, ac + side)
    b = (br, bc, br + side, bc + side)
    ih = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = 2 * side * side - inter
    value = inter / union
    params = {
        "side": side,
        "a_row": ar,
        "a_col": ac,
        "b_row": br,
        "b_col": bc,
        "a_row2": a[2],
        "a_col2": a[3],
        "b_row2": b[2],
        "b_col2": b[3],
        "inter_h": ih,
        "inter_w": iw,
        "inter": inter,
        "union": union,
        "iou": value,
    }
    return Generated(params, answer=value)


# ---------------------------------------------------------------------------------------- labels


@GENERATORS.register("box_label", "numeric")
def box_label(rng: random.Random) -> Generated:
    """The normalised label of the glyph box for a tile pasted at a seeded row/col."""
    margin = course.measure_box_geometry().margin
    row, col = rng.randint(0, IMAGE - TILE), rng.randint(0, IMAGE - TILE)
    axis = rng.choice(["row", "col"])
    pixel = (row if axis == "row" else col) + margin
    value = pixel / IMAGE
    params = {
        "row": row,
        "col": col,
        "axis": axis,
        "pixel": pixel,
        "label": value,
        "margin": margin,
    }
    return Generated(params, answer=value)


# ------------------------------------------------------------------------------ shapes and params


def _conv_pool_model(size: int, channels: int, filters: list[int], padding: str) -> str:
    lines = [f"inputs = keras.Input(shape=({size}, {size}, {channels}))", "x = inputs"]
    for f in filters:
        lines.append(f'x = layers.Conv2D({f}, 3, padding="{padding}", activation="relu")(x)')
        lines.append("x = layers.MaxPool2D(2)(x)")
    return "\n".join(lines)


def _after_blocks(size: int, blocks: int, shrink: int, ceil: bool = False) -> int:
    for _ in range(blocks):
        size -= shrink
        size = math.ceil(size / 2) if ceil else size // 2
    return size


@GENERATORS.register("conv_pool_shape", "code")
def conv_pool_shape(rng: random.Random, paddings: tuple[str, ...] = ("valid", "same")) -> Generated:
    """Output shape after k Conv2D(3x3) + MaxPool2D(2) blocks, distractors from common slips."""
    size = rng.choice([64, 72, 96, 100, 128, 144])
    blocks = rng.randint(2, 4)
    padding = rng.choice(list(paddings))
    base = rng.choice([8, 16, 32])
    filters = [base * 2**i for i in range(blocks)]
    shrink = 2 if padding == "valid" else 0
    right = _after_blocks(size, blocks, shrink)

    def shape(s: int, f: int) -> str:
        return f"(None, {s}, {s}, {f})"

    candidates = [
        (shape(right, filters[-1]), True, "Right: each block shrinks then halves the size."),
        (
            shape(_after_blocks(size, blocks, 2 - shrink), filters[-1]),
            False,
            f'padding="{padding}" decides whether the 3x3 convolution trims 2 pixels.',
        ),
        (
            shape(_after_blocks(size, blocks - 1, shrink) - shrink, filters[-1]),
            False,
            "The last block also ends with MaxPool2D(2), which halves the size.",
        ),
        (
            shape(right, sum(filters)),
            False,
            "Channels are the last Conv2D's filter count; they do not add up across layers.",
        ),
        (
            shape(_after_blocks(size, blocks, shrink, ceil=True), filters[-1]),
            False,
            "MaxPool2D uses padding='valid' by default: odd sizes round down, not up.",
        ),
        (
            shape(size // 2**blocks, filters[-1]),
            False,
            "Check the convolutions too, not only the pooling.",
        ),
    ]
    seen: set[str] = set()
    options: list[Option] = []
    for text, correct, fb in candidates:
        if text not in seen:
            seen.add(text)
            options.append(Option(text, correct, fb))
    options = options[:1] + rng.sample(options[1:], min(3, len(options) - 1))
    params = {
        "size": size,
        "blocks": blocks,
        "padding": padding,
        "filters": filters,
        "last_filters": filters[-1],
        "model_code": _conv_pool_model(size, 3, filters, padding),
        "answer_shape": shape(right, filters[-1]),
        "shrink": shrink,
    }
    return Generated(params, options=tuple(options))


@GENERATORS.register("conv_params", "numeric")
def conv_params(rng: random.Random) -> Generated:
    """Trainable parameters of one Conv2D layer: (k*k*in_channels + 1) * filters."""
    kernel = rng.choice([1, 3, 5])
    cin = rng.choice([3, 8, 16, 32, 64])
    filters = rng.choice([8, 16, 32, 64, 128])
    weights = kernel * kernel * cin * filters
    value = weights + filters
    params = {"kernel": kernel, "cin": cin, "filters": filters, "weights": weights, "count": value}
    return Generated(params, answer=float(value), tolerance=0.0)


@GENERATORS.register("dense_params", "numeric")
def dense_params(rng: random.Random) -> Generated:
    """Parameters of a Dense head on a flattened feature map: in_features * units + units."""
    size = rng.choice([3, 4, 5, 7, 8])
    ch = rng.choice([16, 32, 64])
    units = rng.choice([2, 4, 9, 64, 128])
    features = size * size * ch
    value = features * units + units
    params = {"size": size, "channels": ch, "units": units, "features": features, "count": value}
    return Generated(params, answer=float(value), tolerance=0.0)


# ------------------------------------------------------------------------------ training dynamics


@GENERATORS.register("lr_after_epochs", "numeric")
def lr_after_epochs(rng: random.Random) -> Generated:
    """The learning rate `LearningRateScheduler` uses in epoch k, found by running the schedule."""
    lr0 = rng.choice([0.01, 0.005, 0.002, 0.001])
    factor = rng.choice([0.5, 0.2, 0.1])
    every = rng.choice([2, 3, 4, 5])
    epoch = rng.randint(every, 4 * every + 1)
    lr = lr0
    for e in range(epoch + 1):  # Keras calls schedule(epoch, lr) at the start of each epoch
        if e > 0 and e % every == 0:
            lr = lr * factor
    code = "\n".join(
        [
            "def lr_schedule(epoch, lr):",
            f"    if epoch > 0 and epoch % {every} == 0:",
            f"        return lr * {factor}",
            "    return lr",
            "",
            f"model.compile(optimizer=keras.optimizers.Adam({lr0}), ...)",
            "model.fit(..., callbacks=[keras.callbacks.LearningRateScheduler(lr_schedule)])",
        ]
    )
    drops = epoch // every
    params = {
        "lr0": lr0,
        "factor": factor,
        "every": every,
        "epoch": epoch,
        "drops": drops,
        "lr": lr,
        "schedule_code": code,
    }
    return Generated(params, answer=lr, tolerance=lr * 1e-3)


def _early_stop(losses: list[float], patience: int) -> tuple[int, int]:
    """(epochs run, best epoch), both 1-based, as keras.callbacks.EarlyStopping decides them."""
    best, best_epoch, wait = math.inf, 0, 0
    for epoch, value in enumerate(losses):
        wait += 1
        if value < best:
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch + 1, best_epoch + 1
    return len(losses), best_epoch + 1


@GENERATORS.register("early_stopping_epoch", "numeric")
def early_stopping_epoch(rng: random.Random) -> Generated:
    """After which epoch EarlyStopping(monitor='val_loss', patience=p) stops a planned curve."""
    patience = rng.randint(2, 4)
    n = 15
    while True:
        bottom = rng.randint(3, 8)
        losses = []
        value = round(rng.uniform(0.9, 1.2), 2)
        for e in range(n):
            if e <= bottom:
                value = round(value - rng.uniform(0.05, 0.15), 2)
            else:
                value = round(value + rng.uniform(-0.04, 0.06), 2)
            losses.append(max(value, 0.05))
        stopped, best = _early_stop(losses, patience)
        if stopped < n:
            break
    params = {
        "patience": patience,
        "losses": ", ".join(f"{v:.2f}" for v in losses),
        "stopped": stopped,
        "best": best,
        "epochs": n,
    }
    return Generated(params, answer=float(stopped), tolerance=0.0)
