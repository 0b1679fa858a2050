"""This course's hints for learner code: known causes of errors and what to write instead of
top-level code the grader does not run (the ``known_causes`` and ``dropped_advice`` hooks).

Shipped in the learner bundle: the self-check gives the same hints as grading.
"""

from __future__ import annotations

import re

#: Known causes of a learner exception, by a pattern of its text: (pattern, what to change).
#: Most are idioms of the original guided project (TF 2.4, Keras 2) that Keras 3 rejects.
KNOWN_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), hint)
    for pattern, hint in (
        (
            r"Cannot convert a symbolic|symbolic tf\.Tensor.*numpy|NumPy call",
            "inside model.fit, update_state runs in a compiled graph where tensors have no "
            "values yet: use keras.ops (ops.maximum, ops.minimum, ops.sum) on them, not numpy.",
        ),
        (
            r"with the metric: TypeError: .*NoneType",
            "inside fit the batch size is unknown (None) when Keras compiles update_state: "
            "count with ops.shape(iou)[0], not iou.shape[0] or len().",
        ),
        (
            r"SymbolicTensor|is out of scope and cannot be used here|"
            r"tf\.function.*(create|capture)|Tensor\.op is undefined|EagerTensor",
            "your metric returns (or keeps) a tensor computed in update_state(). Keep the running "
            "totals in variables made in __init__ with self.add_variable(shape=(), "
            'initializer="zeros", name=...), add to them with assign_add() in update_state(), '
            "compute the value from them in result(), and zero them with assign(0.0) in "
            "reset_state().",
        ),
        (
            r"add new elements of state|add_weight.*reset|reset_state.*add_weight",
            "reset_state() must zero the existing variables (self.total.assign(0.0)), not create "
            "new ones with add_weight: Keras 3 does not allow new state after building.",
        ),
        (
            r"fit_generator",
            "model.fit_generator() was removed in Keras 3: write model.fit(generator, "
            "steps_per_epoch=...).",
        ),
        (
            r"set_value|get_value",
            "keras.backend.set_value/get_value were removed in Keras 3: write "
            "model.optimizer.learning_rate.assign(value), or return the new rate from "
            "lr_schedule(epoch, lr).",
        ),
        (
            r"unexpected keyword argument '(workers|use_multiprocessing|max_queue_size)'|"
            r"not recognized.*(workers|use_multiprocessing)",
            "fit() no longer takes workers=, use_multiprocessing= or max_queue_size= in Keras 3: "
            "remove them.",
        ),
        (
            r"not recognized: \{'lr'|has no attribute 'lr'|unexpected keyword argument 'lr'",
            "Keras 3 optimizers take learning_rate=, not lr= (Adam(learning_rate=1e-3); "
            "model.optimizer.learning_rate).",
        ),
        (
            r"unexpected keyword argument 'rng'",
            "the grader calls the function with rng=<seed>, as the notebook's stub does: keep the "
            "stub's signature (def create_example(rng=None), def data_generator(batch_size=16, "
            "rng=None)), start with rng = np.random.default_rng(rng) and draw every random "
            "number from rng.",
        ),
        (
            r"__init__\(\) got an unexpected keyword argument '(test_data|num_images|show)'",
            "keep the stub's def __init__(self, test_data=None, num_images=6, show=True) in "
            "ShowTestImages: the grader passes its own test batch and show=False.",
        ),
        (
            r"No such file or directory.*\.png|\.png.*No such file",
            "the grader has no emoji PNG files: use the course's emoji_tiles[class_id] (a 72x72x3 "
            "uint8 tile per class, made in the set-up cell).",
        ),
        (
            r"len\(pred_coords\)|pred_coords.*NoneType|NoneType.*pred_coords",
            "the grader calls plot_bounding_box(image, gt_coords, pred_coords=None, norm=False) "
            "as the stub does: with no prediction pred_coords is None (not []), so test "
            "`if pred_coords is not None:`.",
        ),
        (
            r"KeyError: '(image|file|name)'",
            "if a loop in your notebook fills this dict, the grader did not run it (only imports, "
            "functions, classes and constants are kept): use the course's emoji_tiles[class_id].",
        ),
    )
)


def dropped_advice(name: str, text: str) -> str | None:
    """What the course provides instead of code the grader does not run (None: nothing
    specific, the engine's general advice applies)."""
    if name == "emoji_tiles" or "render_tiles(" in text:  # the set-up cell, pasted without its tag
        return (
            "This is the course's set-up code: the grader runs it only in a cell tagged `setup`. "
            "Copy the set-up cell from the course notebook as a cell (Edit > Copy Cells keeps its "
            "tag), or give this cell the tag `setup` (View > Cell Toolbar > Tags)."
        )
    if ".png" in text.lower() or "Image.open" in text or name == "emojis":
        return (
            "The course provides `emoji_tiles` instead: `emoji_tiles[class_id]` is the 72x72x3 "
            "uint8 tile of each class, made in the set-up cell (no PNG files)."
        )
    if re.search(r"\b(Model|Sequential)\s*\(|\.compile\(", text) or name == "model":
        return (
            "Build the model inside `create_model()` and return it compiled; a callback reaches "
            "it as `self.model`."
        )
    return None
