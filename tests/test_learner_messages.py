"""Messages a learner can act on: an error in their code is shown at their cell and line, with the
change to make when a known cause explains it, and never with a grader frame or a host path."""

import re
import types

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader import worker
from grader.checking import (
    InProcessSubmission,
    ProbeFailure,
    describe_failure,
    known_cause,
    run_checks,
)
from grader.results import as_text
from tests.objloc import CAUSES, GRADED_PARTS, SOLUTION_NOTEBOOK, ingest_notebook

HOST = re.compile(r"/work|\.venv|site-packages|grader/|worker\.py|/tmp/")


@pytest.fixture(autouse=True)
def private_scratch(tmp_path, monkeypatch):
    """The worker writes the learner module into $TMPDIR: one folder per test."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def load(ingested) -> types.ModuleType:
    """Load the ingested source through the worker's own load probe (as the sandbox does)."""
    source = np.frombuffer(ingested.source.encode("utf-8"), dtype=np.uint8)
    worker.OPS["load"]({"names": list(GRADED_PARTS)}, {"source": source}, None)
    return worker.STATE.module


def failure_of(op: str, args: dict, arrays: dict | None = None) -> ProbeFailure:
    with pytest.raises(worker.LearnerFailure) as info:
        worker.OPS[op](args, arrays or {}, None)
    return ProbeFailure(info.value.kind, info.value.message, info.value.tb)


def notebook(*cells: str):
    return ingest_notebook(new_notebook(cells=[new_code_cell(c) for c in cells]))


def test_an_exception_is_shown_at_the_learners_cell_and_line_without_host_paths():
    load(
        notebook(
            "import numpy as np\n",
            "def helper(x):\n    # a comment\n    return x['image']\n",
            "\n\ndef create_example(rng=None):\n    return helper({})\n",
        )
    )
    text = describe_failure(failure_of("call", {"name": "create_example"}), "running it", CAUSES)
    assert "cell 3, line 4, in create_example" in text
    assert "cell 2, line 3, in helper" in text and "return x['image']" in text
    assert "KeyError: 'image'" in text
    assert "Hint:" in text and "emoji_tiles" in text
    assert not HOST.search(text), text


def test_an_exception_inside_a_generator_is_reported_not_shown_as_an_empty_sample():
    load(
        notebook(
            "emojis = {0: {'name': 'happy'}}\n",
            "def data_generator(batch_size=16, rng=None):\n"
            "    while True:\n"
            "        yield emojis[0]['image']\n",
        )
    )
    failure = failure_of("call", {"name": "data_generator", "sample": 2})
    assert "the generator raised on item 1" in failure.message
    assert "cell 2, line 3, in data_generator" in failure.traceback
    assert not HOST.search(describe_failure(failure, "sampling it", CAUSES))


def test_a_function_without_rng_is_told_the_signature_to_write():
    load(notebook("def create_example():\n    return 1\n"))
    failure = failure_of("call", {"name": "create_example", "seed": 3, "rng_arg": "rng"})
    text = describe_failure(failure, "running create_example()", CAUSES)
    assert "unexpected keyword argument 'rng'" in text
    assert "def create_example(rng=None)" in text and "np.random.default_rng(rng)" in text


def test_a_metric_returning_a_tensor_made_in_update_state_gets_the_variables_hint():
    load(
        notebook(
            "import keras\nfrom keras import ops\n",
            "class IoU(keras.metrics.Metric):\n"
            "    def __init__(self, name='iou', **kwargs):\n"
            "        super().__init__(name=name, **kwargs)\n"
            "    def update_state(self, y_true, y_pred, sample_weight=None):\n"
            "        self.value = ops.mean(y_true - y_pred)\n"
            "    def result(self):\n"
            "        return self.value\n"
            "    def reset_state(self):\n"
            "        pass\n",
        )
    )
    box = np.zeros((2, 2), np.float32)
    steps = [{"op": "update", "y_true": "a", "y_pred": "b"}, {"op": "result"}]
    args = {"class": "IoU", "steps": steps, "graph": True}
    failure = failure_of("metric", args, {"a": box, "b": box})
    text = describe_failure(failure, "using your IoU metric", CAUSES)
    assert "add_variable" in text and "result()" in text, text
    assert not HOST.search(text), text


def test_a_history_value_that_is_not_a_number_is_named_and_the_rest_kept():
    class Symbolic:
        def __array__(self, *args, **kwargs):
            raise TypeError("float() argument must be a real number, not 'SymbolicTensor'")

    notes: list[str] = []
    floats = worker.history_floats({"loss": [1.0, 0.5], "box_out_iou": [Symbolic()]}, notes)
    assert floats == {"loss": [1.0, 0.5]}
    (note,) = notes
    assert "`box_out_iou`" in note and "result()" in note
    assert "add_variable" in known_cause(note, CAUSES)


KERAS2 = [
    ("AttributeError: 'Functional' object has no attribute 'fit_generator'", "model.fit("),
    ("AttributeError: module 'keras.backend' has no attribute 'set_value'", "learning_rate.assign"),
    ("ValueError: Argument(s) not recognized: {'lr': 0.001}", "learning_rate="),
    ("AttributeError: 'Adam' object has no attribute 'lr'", "learning_rate"),
    (
        "TypeError: TensorFlowTrainer.fit() got an unexpected keyword argument 'workers'",
        "remove them",
    ),
    (
        "TypeError: Callback.__init__() got an unexpected keyword argument 'test_data'",
        "test_data=None, num_images=6, show=True",
    ),
    ("FileNotFoundError: No such file or directory: 'emojis/1F642.png'", "emoji_tiles"),
]


@pytest.mark.parametrize(("message", "replacement"), KERAS2)
def test_keras2_apis_and_old_contracts_are_told_their_replacement(message, replacement):
    text = describe_failure(ProbeFailure("learner_error", message), "training your model", CAUSES)
    assert "Hint: " in text and replacement in text.split("Hint: ", 1)[1]


def test_a_grader_side_failure_shows_no_grader_traceback():
    tb = 'Traceback:\n  File "/work/main/grader/worker/probes_fit.py", line 9, in op_callback\nTypeError: x'
    failure = ProbeFailure("protocol", "worker failed on 'callback': TypeError: x", tb)
    text = describe_failure(failure, "training your model", CAUSES)
    assert "op_callback" not in text and not HOST.search(text), text


def test_keras_progress_bars_are_shown_as_text():
    bar = "Epoch 1/2\n\x1b[1m1/4\x1b[0m \x1b[32m━━\x1b[0m 0.1s\r\x1b[1m4/4\x1b[0m \x1b[32m━━━━\x1b[0m 1s\n"
    assert as_text(bar) == "Epoch 1/2\n4/4 ━━━━ 1s\n"
    assert as_text("abc\b\bd") == "ad"
    warning = "/work/main/.venv/lib/python3.11/site-packages/keras/src/epoch_iterator.py:74: Warn"
    assert as_text(warning) == "epoch_iterator.py:74: Warn"


def _solution_with_np_random():
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("# GRADED: create_example"))
    cell.source = cell.source.replace(
        "int(rng.integers(0, NUM_CLASSES))", "int(np.random.randint(0, NUM_CLASSES))"
    ).replace("rng.integers(0, MAX_OFFSET + 1, size=2)", "np.random.randint(0, MAX_OFFSET + 1, 2)")
    assert "np.random.randint" in cell.source
    return ingest_notebook(nb)


def test_code_that_ignores_its_rng_fails_the_determinism_check():
    ingested = _solution_with_np_random()
    module = load(ingested)
    submission = InProcessSubmission(dict(module.__dict__), ingested)
    results = {r.name: r for r in run_checks(submission, parts=["create_example"])}
    check = next(r for name, r in results.items() if "same rng seed" in name)
    assert check.score == 0, check
    assert "np.random" in check.message
    others = [r for name, r in results.items() if "same rng seed" not in name]
    assert others and all(r.passed for r in others), [(r.name, r.message) for r in others]


def test_grading_is_still_deterministic_for_code_that_ignores_its_rng():
    def first_examples():
        module = load(_solution_with_np_random())
        worker.STATE.calls = 0
        submission = InProcessSubmission(dict(module.__dict__), None)
        return [submission.call("create_example", seed=7)[1:] for _ in range(3)]

    assert first_examples() == first_examples()
