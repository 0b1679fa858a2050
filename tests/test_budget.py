"""Fixed work, not fixed time: the model audit (cost check before training), the typed grading
status, and determinism of a grading."""

from __future__ import annotations

import json
import sys
import types
from typing import ClassVar

import nbformat
import pytest

from assignments.object_localization.checks.hidden import test_training as training
from grader import worker
from grader.checking import Incorrect, InProcessSubmission, model_audit
from grader.job import GradingJob
from grader.results import Status
from tests.objloc import SOLUTION_NOTEBOOK, ingest_notebook

keras = pytest.importorskip("keras")
layers = keras.layers


def solution_namespace() -> tuple[dict, object]:
    ingested = ingest_notebook(nbformat.read(SOLUTION_NOTEBOOK, as_version=4))
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    return namespace, ingested


def test_worker_and_audit_agree_on_the_largest_config():
    assert worker.MAX_CONFIG_JSON == model_audit.MAX_CONFIG_CHARS


def test_reference_model_is_rebuilt_with_its_structure_and_cost():
    namespace, ingested = solution_namespace()
    submission = InProcessSubmission(namespace, ingested)
    audit = submission.model_audit()
    model = namespace["create_model"]()
    assert audit.input_shape == (144, 144, 3)
    assert audit.outputs == {"class_out": (9,), "box_out": (2,)}
    assert audit.activations == {"class_out": "softmax", "box_out": "linear"}
    assert audit.params == model.count_params()
    assert audit.estimated == ()  # every layer of the reference is counted by a rule
    # the four 3x3 convolutions dominate: 2 * 9 * cin * cout * positions each
    convs = 2 * 9 * (3 * 16 * 72 * 72 + 16 * 32 * 36 * 36 + 32 * 64 * 18 * 18 + 64 * 128 * 9 * 9)
    assert convs < audit.flops_per_example < 1.15 * convs
    assert audit.flops_per_example / 1e6 < training.MAX_MFLOPS_PER_EXAMPLE
    assert submission.model_audit() is audit  # cached


def test_flops_follow_the_documented_rules_on_a_small_model():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)  # 2*9*3*4*64 + bias 256
    x = layers.MaxPooling2D(2)(x)  # pool 4 x 64 outputs
    x = layers.Flatten()(x)  # free
    out = layers.Dense(2, activation="softmax", name="out")(x)  # 2*64*2 + bias 2 + softmax 2
    audit = model_audit.audit_config(keras.Model(inputs, out).to_json())
    assert audit.flops_per_example == (2 * 9 * 3 * 4 * 64 + 256) + 4 * 64 + (2 * 64 * 2 + 2 + 2)
    assert audit.outputs == {"out": (2,)} and audit.activations == {"out": "softmax"}


def test_a_huge_model_is_measured_without_allocating_its_weights():
    inputs = keras.Input((144, 144, 3))
    small = keras.Model(inputs, layers.Dense(2, name="out")(layers.Flatten()(inputs)))
    config = json.loads(small.to_json())
    dense = next(c for c in config["config"]["layers"] if c["class_name"] == "Dense")
    dense["config"]["units"] = 200_000  # 12.4e9 weights: 50 GB if allocated
    audit = model_audit.audit_config(json.dumps(config))
    assert audit.params == 144 * 144 * 3 * 200_000 + 200_000
    assert audit.flops_per_example == 2 * 144 * 144 * 3 * 200_000 + 200_000
    with keras.StatelessScope():  # exiting one initialises Keras's pending variables: none left
        pass
    keras.Model(inputs, layers.Dense(1)(layers.Flatten()(inputs)))


def test_lambda_and_custom_layers_are_refused_without_running_them():
    inputs = keras.Input((4,))
    lam = keras.Model(inputs, layers.Lambda(lambda t: t * 2, output_shape=(4,))(inputs))
    with pytest.raises(model_audit.ModelAuditError, match="Lambda"):
        model_audit.audit_config(lam.to_json())

    class Doubler(layers.Layer):
        def call(self, t):
            return t * 2

    custom = keras.Model(inputs, Doubler()(inputs))
    with pytest.raises(model_audit.ModelAuditError, match="not part of Keras"):
        model_audit.audit_config(custom.to_json())

    def doubled(t):
        return t * 2

    activation = keras.Model(inputs, layers.Dense(1, activation=doubled)(inputs))
    with pytest.raises(model_audit.ModelAuditError, match="`doubled`"):
        model_audit.audit_config(activation.to_json())


def test_a_config_naming_another_module_is_refused_before_importing_it():
    inputs = keras.Input((4,))
    config = json.loads(keras.Model(inputs, layers.Dense(1)(inputs)).to_json())
    config["config"]["layers"][1]["module"] = "objloc_not_a_module_xyz"
    with pytest.raises(model_audit.ModelAuditError, match="objloc_not_a_module_xyz"):
        model_audit.audit_config(json.dumps(config))
    assert "objloc_not_a_module_xyz" not in sys.modules
    with pytest.raises(model_audit.ModelAuditError, match="not valid JSON"):
        model_audit.audit_config("{nope")


def test_training_refuses_a_model_above_the_cost_limit_before_training():
    namespace, ingested = solution_namespace()

    def create_model():
        inputs = keras.Input((144, 144, 3), name="image")
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(inputs)
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)  # ~1.5 GFLOPs
        x = layers.GlobalAveragePooling2D()(x)
        model = keras.Model(
            inputs,
            {
                "class_out": layers.Dense(9, activation="softmax", name="class_out")(x),
                "box_out": layers.Dense(2, name="box_out")(x),
            },
        )
        model.compile(
            optimizer="adam", loss={"class_out": "categorical_crossentropy", "box_out": "mse"}
        )
        return model

    namespace["create_model"] = create_model
    submission = InProcessSubmission(namespace, ingested)
    trained = []
    submission.train = lambda *a, **k: trained.append(1)  # must never be reached
    with pytest.raises(Incorrect) as refused:
        training.trained(submission)
    assert not trained
    message = refused.value.message
    assert f"at most {training.MAX_MFLOPS_PER_EXAMPLE:g} million FLOPs" in message
    figure = submission.model_audit().flops_per_example / 1e6
    assert f"{figure:.1f} million FLOPs per example" in message


# -- the grading's status -------------------------------------------------------------------------


class FailingSandbox:
    """A stand-in for grader.sandbox.Sandbox: probes run in this process over the solution's
    namespace, except those listed, which fail as a real sandbox reports it."""

    failing: ClassVar[dict[str, str]] = {}

    def __init__(self, source, mode="auto", limits=None, graded_names=()):
        namespace, ingested = solution_namespace()
        self.inner = InProcessSubmission(namespace, ingested)
        self.isolation, self.isolation_note, self.output = "bwrap", "", ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _fail_or_run(self, op, args, arrays, on_message):
        from grader.sandbox import ProbeError

        if op in self.failing:
            error = ProbeError("protocol", f"{op}: simulated")
            error.kind = self.failing[op]  # also kinds this sandbox.py may not know yet
            raise error
        value = self.inner._request(op, args, arrays, on_message)
        return types.SimpleNamespace(value=value)

    def start(self):
        return self._fail_or_run("load", {}, {}, None)

    def request(self, op, args=None, arrays=None, *, timeout, on_message=None):
        return self._fail_or_run(op, args or {}, arrays or {}, on_message)


def grade_with_failures(monkeypatch, tmp_path, failing):
    from grader import grade

    failing = {"callback": "learner_error", **failing}  # its short fit is the costly probe here
    monkeypatch.setattr(FailingSandbox, "failing", failing)
    monkeypatch.setattr(grade, "Sandbox", FailingSandbox)
    outcome = grade.grade(GradingJob.of_file(SOLUTION_NOTEBOOK))
    outcome.write(tmp_path / outcome.result.submission_id)
    document = json.loads((tmp_path / outcome.result.submission_id / "results.json").read_text())
    return outcome.result, document


@pytest.mark.parametrize(
    ("failing", "status"),
    [
        ({"train": "timeout"}, Status.TIMEOUT),
        ({"load": "timeout"}, Status.TIMEOUT),
        ({"call": "grader_error", "train": "learner_error"}, Status.ERROR),
    ],
)
def test_a_grading_the_machine_cut_short_is_no_verdict_and_blames_nobody(
    monkeypatch, tmp_path, failing, status
):
    result, document = grade_with_failures(monkeypatch, tmp_path, failing)
    assert result.status is status and not status.is_verdict
    assert document["extra_data"]["status"] == str(status)
    assert document["extra_data"]["status_message"]
    assert document["score"] == 0
    assert "did not finish" in document["output"] and "retried" in document["output"]
    for test in document["tests"]:
        assert test["score"] == 0 and "not_graded" in test["tags"]
        assert "Hint" not in test["output"] and "Your code" not in test["output"]
    html = (tmp_path / result.submission_id / "report.html").read_text()
    assert "did not finish" in html


@pytest.mark.parametrize(
    ("failing", "status"),
    [
        ({"load": "load_error"}, Status.LOAD_ERROR),
        ({"callback": "crashed", "train": "learner_error"}, Status.CRASHED),
        ({"call": "timeout", "train": "learner_error"}, Status.GRADED),  # an endless loop: verdict
    ],
)
def test_a_failure_the_learner_caused_is_a_verdict_with_its_status(
    monkeypatch, tmp_path, failing, status
):
    result, document = grade_with_failures(monkeypatch, tmp_path, failing)
    assert result.status is status and status.is_verdict
    assert document["extra_data"]["status"] == str(status)
    assert "did not finish" not in document["output"]
    if status is not Status.LOAD_ERROR:
        assert 0 < document["score"] < 100  # the parts that worked keep their points


def test_unreadable_file_has_its_status(tmp_path):
    from grader.grade import grade

    path = tmp_path / "learner.ipynb"
    path.write_bytes(b"{broken")
    result = grade(GradingJob.of_file(path)).result
    assert result.status is Status.UNREADABLE and "JSON" in result.status_message


def test_the_train_limit_is_one_documented_setting_with_an_override(monkeypatch):
    from grader.checking import probes

    monkeypatch.delenv(probes.TRAIN_TIMEOUT_ENV, raising=False)
    assert probes.probe_timeout("train") == probes.TRAIN_TIMEOUT
    monkeypatch.setenv(probes.TRAIN_TIMEOUT_ENV, "1234")
    assert probes.probe_timeout("train") == 1234.0
    assert probes.probe_timeout("call") == probes.TIMEOUTS["call"]
    monkeypatch.setenv(probes.TRAIN_TIMEOUT_ENV, "ten minutes")
    with pytest.raises(ValueError, match=probes.TRAIN_TIMEOUT_ENV):
        probes.probe_timeout("train")


def test_the_cpu_rlimit_never_ends_training_before_its_wall_clock_limit(monkeypatch):
    from grader import grade
    from grader.checking import probes
    from grader.sandbox import Limits

    monkeypatch.delenv(probes.TRAIN_TIMEOUT_ENV, raising=False)
    for threads in (1, 2, 4):
        limits = grade._within_budget(Limits(threads=threads, cpu_seconds=600))
        assert limits.cpu_seconds >= (threads + 1) * probes.TRAIN_TIMEOUT
        assert limits.threads == threads
    generous = Limits(cpu_seconds=10**6)
    assert grade._within_budget(generous) is generous


# -- determinism ----------------------------------------------------------------------------------


@pytest.fixture
def small_budget(monkeypatch):
    """The real check with a 40-step budget: cheap, and far from full marks, so its messages
    carry the measured figures (which must then agree to the last digit)."""
    monkeypatch.setattr(training, "EPOCHS", 2)
    monkeypatch.setattr(training, "STEPS_PER_EPOCH", 20)


def test_the_same_submission_gets_identical_scores_and_messages_twice(small_budget):
    from grader.grade import grade_in_detail

    first, material = grade_in_detail(GradingJob.of_file(SOLUTION_NOTEBOOK))
    second, _ = grade_in_detail(GradingJob.of_file(SOLUTION_NOTEBOOK))
    assert first.status is second.status is Status.GRADED
    assert material.artifacts.training.steps == 40  # the reduced budget, all of it
    assert any("mean IoU" in c.message for c in first.checks)  # a figure in a message
    assert [(c.name, c.score, c.message) for c in second.checks] == [
        (c.name, c.score, c.message) for c in first.checks
    ]


def test_a_metric_or_schedule_that_breaks_inside_fit_costs_no_training(small_budget, tmp_path):
    """Metrics do not change what a model learns, and a schedule that raises keeps the rate:
    the training runs its whole budget and its checks judge the model, not the broken parts
    (which lose their own checks)."""
    from grader.grade import grade_in_detail

    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("# GRADED: IoU"):  # works eagerly, fails once compiled
            cell.source = cell.source.replace(
                'self.num_examples.assign_add(ops.cast(ops.shape(iou)[0], "float32"))',
                "self.num_examples.assign_add(float(iou.shape[0]))",
            )
        if cell.source.startswith("# GRADED: lr_schedule"):
            cell.source = cell.source.replace("return max(lr * 0.5, MIN_LR)", "return 1 / 0")
    path = tmp_path / "broken_in_fit.ipynb"
    nbformat.write(nb, path)
    result, material = grade_in_detail(GradingJob.of_file(path))
    assert result.status is Status.GRADED
    assert material.artifacts.training.steps == training.EPOCHS * training.STEPS_PER_EPOCH
    lost = {c.part for c in result.checks if not c.passed}
    assert {"IoU", "lr_schedule"} <= lost
    training_messages = [c.message for c in result.checks if c.part == "training"]
    assert training_messages and not any("error" in m.lower() for m in training_messages)
    assert any("without your metric" in m for m in training_messages if m), training_messages
