"""The original guided project's idioms: the differences table and finding them in a submission.

Why this module exists: many learners arrive from the original guided project (TF 2.4, Keras 2)
and write its idioms, which fail here for reasons they cannot guess. `DIFFERENCES` is the table of
what differs and the line to write, shown in the learner notebook's first cell and the bundle
README (`differences_markdown`, the ``differences`` hook); ingestion calls
`find_original_course` (the ``habits`` hook) and a notebook with two or more kinds of idiom is
told, at the top of its report, the rows that apply (after `INTRO`, the ``habits_intro`` hook).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from grader.ingest import Habit, Parsed, Resolver, Stmt

HEADING = "Coming from the original guided project?"
INTRO = (
    "Your notebook looks written for the original guided project (TF 2.4, Keras 2). "
    "What differs here, and the line to write:"
)


class Difference(Enum):
    """What differs from the original guided project (TF 2.4, Keras 2) that its learners know."""

    RNG = "rng"
    MODEL = "create_model"
    EMOJIS = "emoji_tiles"
    METRIC = "metric"
    PLOT = "pred_coords"
    CALLBACK = "figures"
    SCHEDULE = "schedule"
    KERAS3 = "keras3"


@dataclass(frozen=True)
class Idiom:
    """A line the table says fails (``gone``) or works (``works``) with the TensorFlow and Keras
    installed here: ``shown`` as the table shows it, ``code`` what tests/test_original_course.py
    runs to verify it (with ``tf``, ``keras``, ``np``, a compiled ``model`` and ``batches()``, an
    endless generator of its training batches, defined)."""

    shown: str
    code: str


@dataclass(frozen=True)
class DifferenceRow:
    original: str  # what the original course did
    here: str  # what this course asks
    line: str  # the line to write
    gone: tuple[Idiom, ...] = ()  # what the row says no longer works here
    works: tuple[Idiom, ...] = ()  # what the row says works here


#: The table shown in the notebook's first cell, the bundle README and, for the rows that apply,
#: at the top of the report of a notebook written the original course's way.
DIFFERENCES: dict[Difference, DifferenceRow] = {
    Difference.RNG: DifferenceRow(
        "`create_example()`, `data_generator(batch_size)` draw from `np.random`",
        "they take a seed: `create_example(rng=None)`, `data_generator(batch_size=16, rng=None)`",
        "`rng = np.random.default_rng(rng)`, then `rng.integers(0, 9)` for `np.random.randint(0, 9)`",
    ),
    Difference.MODEL: DifferenceRow(
        "the model is built and compiled in notebook cells (`model = tf.keras.models.Model(...)`)",
        "`create_model()` builds, compiles and returns it; top-level code is not graded",
        "`def create_model():` that builds the model, compiles it (`model.compile`) and returns it",
    ),
    Difference.EMOJIS: DifferenceRow(
        "emojis loaded from PNG files into `emojis[class_id]['image']` by a loop",
        "the set-up cell renders them from the OpenMoji font into `emoji_tiles` (9x72x72x3 uint8)",
        "`emoji_tiles[class_id]` where you wrote `np.array(emojis[class_id]['image'])`",
    ),
    Difference.METRIC: DifferenceRow(
        "`IoU` keeps a tensor made in `update_state` and calls `add_weight` in `reset_state`; "
        "its area is not clamped, so disjoint boxes score ~0.74",
        "state in variables, the value computed in `result()`, reset to zero; disjoint boxes "
        "score 0",
        '`self.total = self.add_variable(shape=(), initializer="zeros", name="total")`; '
        "`self.total.assign_add(...)` in `update_state`; `self.total.assign(0.0)` in "
        "`reset_state`; the overlap's height and width clamped at 0",
        works=(
            Idiom(
                "`add_variable`",
                "class Total(keras.metrics.Metric):\n"
                "    def __init__(self, **kw):\n"
                "        super().__init__(**kw)\n"
                '        self.total = self.add_variable(shape=(), initializer="zeros", name="total")\n'
                "    def update_state(self, y_true, y_pred, sample_weight=None):\n"
                "        self.total.assign_add(keras.ops.sum(y_pred))\n"
                "    def result(self):\n"
                "        return self.total\n"
                "    def reset_state(self):\n"
                "        self.total.assign(0.0)\n"
                "m = Total()\n"
                "m.update_state(np.ones(2), np.ones(2))\n"
                "assert float(m.result()) == 2.0\n"
                "m.reset_state()\n"
                "assert float(m.result()) == 0.0\n",
            ),
        ),
    ),
    Difference.PLOT: DifferenceRow(
        "`plot_bounding_box(image, gt_coords, pred_coords=[], norm=False)`",
        "no prediction is `pred_coords=None`; the caller's image is never changed",
        "`if pred_coords is not None:`; `image = image * 255` (a new array, not `image *= 255`)",
    ),
    Difference.CALLBACK: DifferenceRow(
        "`ShowTestImages.on_epoch_end` draws with `plt.show()`",
        "keep the stub's `__init__(self, test_data=None, num_images=6, show=True)`; keep each "
        "figure",
        "`self.figures.append(...)` with each figure drawn",
    ),
    Difference.SCHEDULE: DifferenceRow(
        "every 5th epoch `lr *= 0.2`, floor `3e-7`",
        "keep `lr` for `HOLD_EPOCHS` epochs, then halve it each epoch, never below `MIN_LR`",
        "`def lr_schedule(epoch, lr):` returning the new rate from `HOLD_EPOCHS` and `MIN_LR` "
        "(the notebook's constants)",
    ),
    Difference.KERAS3: DifferenceRow(
        "Keras 2 (through `tf.keras`): `fit_generator`, `keras.backend.set_value`, "
        "`fit(workers=, use_multiprocessing=)`, `Adam(lr=)`",
        "Keras 3: those APIs are gone; `tf.keras` and `from tensorflow.keras import layers` still "
        "work (they are Keras 3 now), `import keras` is the usual way",
        "`model.fit(generator, ...)`; `model.optimizer.learning_rate.assign(v)`; drop `workers=` "
        "and `use_multiprocessing=`; `Adam(learning_rate=...)`",
        gone=(
            Idiom("`fit_generator`", "model.fit_generator(batches(), steps_per_epoch=1)"),
            Idiom(
                "`keras.backend.set_value`",
                "keras.backend.set_value(model.optimizer.learning_rate, 0.1)",
            ),
            Idiom("`workers=`", "model.fit(batches(), steps_per_epoch=1, workers=2)"),
            Idiom(
                "`use_multiprocessing=`",
                "model.fit(batches(), steps_per_epoch=1, use_multiprocessing=True)",
            ),
            Idiom("`Adam(lr=)`", "keras.optimizers.Adam(lr=0.01)"),
        ),
        works=(
            Idiom("`tf.keras`", "tf.keras.layers.Dense(2); tf.keras.callbacks.Callback()"),
            Idiom(
                "`from tensorflow.keras import layers`",
                "from tensorflow.keras import layers\nlayers.Dense(2)",
            ),
            Idiom("`import keras`", "import keras"),
            Idiom("`model.fit(generator, ...)`", "model.fit(batches(), steps_per_epoch=1)"),
            Idiom(
                "`model.optimizer.learning_rate.assign(v)`",
                "model.optimizer.learning_rate.assign(0.1)",
            ),
            Idiom("`Adam(learning_rate=...)`", "keras.optimizers.Adam(learning_rate=0.01)"),
        ),
    ),
}


def differences_markdown(kinds: Iterator[Difference] | None = None) -> str:
    """The differences table as Markdown (all rows, or those of ``kinds`` in table order)."""
    wanted = set(kinds) if kinds is not None else set(DIFFERENCES)
    rows = [
        "| the original guided project | here | the line to write |",
        "|---|---|---|",
    ]
    rows += [
        f"| {row.original} | {row.here} | {row.line} |"
        for kind, row in DIFFERENCES.items()
        if kind in wanted
    ]
    return "\n".join(rows)


# --------------------------------------------------------------------------- original course

_KERAS2 = re.compile(
    r"\btf\.keras\b|tensorflow\.keras|fit_generator|\bset_value\(|\bworkers\s*=|"
    r"use_multiprocessing\s*=|[(,]\s*lr\s*="
)
_TOP_LEVEL_MODEL = re.compile(r"\b(Model|Sequential)\s*\(|^\s*\w+\.compile\(", re.MULTILINE)


def find_original_course(parsed: Parsed, resolver: Resolver) -> tuple[Habit, ...]:
    """Idioms of the original guided project, each with where it was found (first one only)."""
    found: dict[Difference, Habit] = {}

    def note(kind: Difference, evidence: str, stmt: Stmt) -> None:
        row = DIFFERENCES[kind]
        habit = Habit(
            kind.value, evidence, row.original, row.here, row.line, stmt.cell_index, stmt.line
        )
        found.setdefault(kind, habit)

    for stmt in sorted(parsed.stmts + parsed.imports, key=lambda s: (s.order, s.line)):
        if match := _KERAS2.search(stmt.text):
            note(Difference.KERAS3, f"`{match.group(0).strip(' (,')}`", stmt)
        if stmt.kind != "def" and ".png" in stmt.text.lower():
            note(Difference.EMOJIS, "emoji images read from PNG files", stmt)
        if stmt.kind in ("assign", "other") and _TOP_LEVEL_MODEL.search(stmt.text):
            note(Difference.MODEL, "the model is built or compiled at top level", stmt)
    for name in ("create_example", "data_generator"):
        for stmt in resolver.definitions(name)[-1:]:
            node = stmt.node
            if isinstance(node, ast.FunctionDef) and "rng" not in {
                a.arg for a in node.args.args + node.args.kwonlyargs
            }:
                note(Difference.RNG, f"`{name}` has no `rng` parameter", stmt)
    for stmt in resolver.definitions("plot_bounding_box")[-1:]:
        if isinstance(stmt.node, ast.FunctionDef) and any(
            isinstance(d, ast.List) for d in stmt.node.args.defaults
        ):
            note(Difference.PLOT, "`plot_bounding_box` defaults `pred_coords` to a list", stmt)
    for stmt in resolver.definitions("ShowTestImages")[-1:]:
        if "figures" not in stmt.text:
            note(Difference.CALLBACK, "`ShowTestImages` keeps no `self.figures`", stmt)
    for stmt in resolver.definitions("lr_schedule")[-1:]:
        if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) for n in ast.walk(stmt.node)):
            note(Difference.SCHEDULE, "`lr_schedule` changes the rate every few epochs", stmt)
    for stmt in resolver.definitions("IoU")[-1:]:
        for method in ast.walk(stmt.node):
            if (
                isinstance(method, ast.FunctionDef)
                and method.name == "reset_state"
                and "add_weight" in ast.unparse(method)
            ):
                note(Difference.METRIC, "`reset_state` creates new weights", stmt)
    order = [kind.value for kind in DIFFERENCES]
    return tuple(sorted(found.values(), key=lambda habit: order.index(habit.kind)))
