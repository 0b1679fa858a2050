"""Hidden checks of the IoU metric: its value, how it accumulates, its reset, and inside fit.

Each property is isolated: the value is read one example at a time on fresh metrics; the
accumulation, the reset and the run inside ``model.fit`` are compared with the learner's own
per-example values and their own eager run, so a wrong formula costs the value checks only.
"""

import itertools

import numpy as np

from grader.checking import Incorrect, Model, check

from ... import reference as ref
from ..public.helpers import as_float, close, metric_values, one_pair_each
from ..public.mistakes import accumulation_models, iou_range_hint
from ..public.problems import iou_problem
from .helpers import random_boxes


def agrees(got, own, *, values=None) -> bool:
    """The learner's metric against its own values, to 2e-3 of their size (at least 2e-3): a
    formula whose values run far above 1 (a union too small) is the value checks' finding; its
    float32 sums then differ from the exact mean past the third decimal, no fault of how it
    accumulates, resets or runs in fit, and would fail these checks on some hidden boxes only."""
    sizes = np.abs(np.asarray(own if values is None else values, np.float64))
    scale = float(sizes.max()) if sizes.size and np.isfinite(sizes).all() else 1.0
    return close(got, own, 2e-3 * max(1.0, scale))


@check("IoU", 4)
def test_iou_matches_the_reference_on_random_boxes(submission):
    """partial overlaps, disjoint, touching and identical boxes: each example's IoU equals the reference"""
    y_true, y_pred = random_boxes(48, 1)

    def measure(other):
        return metric_values(other, one_pair_each(y_true, y_pred))

    got = measure(submission)
    want = ref.iou(y_true, y_pred)
    if close(got, want, 2e-3):
        return
    raise Incorrect(iou_problem(submission, "on hidden boxes", y_true, y_pred, got, want, measure))


def _own_values(submission, batches) -> list[np.ndarray]:
    """The learner's IoU of each example of each batch, each on a fresh metric."""
    values = metric_values(submission, [p for a, b in batches for p in one_pair_each(a, b)])
    sizes = np.cumsum([0, *(len(a) for a, _ in batches)])
    return [np.asarray(values[s:e]) for s, e in itertools.pairwise(sizes)]


def _numbered_pairs(submission, n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hidden box pairs on which the learner's own metric gives a number (on a fresh
    metric, one pair at a time): the accumulation, reset and fit properties are judged there,
    so that a formula that gives NaN for some boxes costs the value checks, not these. Incorrect
    when it gives no number for most pairs: then none of these properties can hold."""
    y_true, y_pred = random_boxes(3 * n, offset)
    values = np.asarray(metric_values(submission, one_pair_each(y_true, y_pred)))
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) < n:
        raise Incorrect(
            "your metric gives no number for most single pairs of boxes on a fresh metric "
            f"(e.g. {values[~np.isfinite(values)][0]}), so how it accumulates, resets or runs "
            "inside fit cannot be seen",
            hint=iou_range_hint(values),
        )
    chosen = finite[:n]
    return y_true[chosen], y_pred[chosen]


def _batches(submission, sizes, offset: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of these sizes, made of pairs on which the learner's metric gives a number."""
    y_true, y_pred = _numbered_pairs(submission, sum(sizes), offset)
    ends = np.cumsum([0, *sizes])
    return [(y_true[s:e], y_pred[s:e]) for s, e in itertools.pairwise(ends)]


def _fresh_state_is_the_mistake(submission, y_true, y_pred) -> bool:
    """Whether a fresh metric starts from a wrong or random state while reset_state() sets the
    right one: on one batch, a new metric after reset_state() gives the reference's IoU and a
    fresh one does not. That is the value checks' finding; the reset and fit checks then compare
    with a metric after reset_state(), else their verdict would follow the random start, seed by
    seed."""
    fresh = _result(submission, [("update", y_true, y_pred), ("result",)])
    reset = _result(submission, [("reset",), ("update", y_true, y_pred), ("result",)])
    right = float(ref.iou(y_true, y_pred).mean())
    return not agrees(fresh, right) and agrees(reset, right)


def _result(submission, steps) -> float:
    reply = submission.metric(steps)
    if not reply.get("is_metric"):
        raise Incorrect("IoU should subclass keras.metrics.Metric")
    return as_float(reply["results"][-1], "result()")


@check("IoU", 3)
def test_iou_accumulates_over_batches(submission):
    """after several batches, result() is the mean over every example since the last reset"""
    batches = _batches(submission, (5, 12, 7), 2)
    own = _own_values(submission, batches)
    got = _result(submission, [*(("update", a, b) for a, b in batches), ("result",)])
    values = np.concatenate(own)
    want = float(values.mean())
    if agrees(got, want, values=values):
        return
    hint = next(
        (m.hint for m in accumulation_models(own) if agrees(got, m.returns, values=values)),
        "",
    )
    raise Incorrect(
        "after batches of 5, 12 and 7 examples, result() should be the mean IoU of all 24 "
        "(your metric's own values, example by example)",
        expected=round(want, 4),
        got=round(got, 4),
        hint=hint,
    )


@check("IoU", 3)
def test_iou_reset_state_really_resets(submission):
    """after reset_state(), only the batches since count (compared with a fresh metric)"""
    (a, b), (c, d) = _batches(submission, (16, 16), 4)
    fresh = _result(submission, [("update", c, d), ("result",)])
    baseline = "a fresh metric's"
    if _fresh_state_is_the_mistake(submission, c, d):
        fresh = _result(submission, [("reset",), ("update", c, d), ("result",)])
        baseline = "a new metric's after reset_state()"
    for steps, what in (
        ([("update", a, a), ("reset",), ("update", c, d), ("result",)], "after one batch"),
        (
            [("update", a, b), ("update", b, a), ("reset",), ("update", c, d), ("result",)],
            "after two batches",
        ),
        ([("reset",), ("update", c, d), ("result",)], "on a new metric"),
    ):
        got = _result(submission, steps)
        if agrees(got, fresh):
            continue
        carried = _result(submission, [s for s in steps if s[0] != "reset"])
        not_reset = Model(
            carried,
            "state not reset: the earlier batches still count after reset_state(); assign 0 "
            "to every state variable in reset_state (do not create new variables)",
        )
        hint = submission.diagnose(
            "IoU",
            lambda other, steps=steps: _result(other, steps),
            got,
            models=[not_reset],
            same=agrees,
        )
        raise Incorrect(
            f"reset_state() {what}, then one batch: result() should equal {baseline} on that batch",
            expected=round(fresh, 4),
            got=round(got, 4),
            hint=hint,
        )


@check("IoU", 3)
def test_iou_works_inside_model_fit(submission):
    """compiled into a model and fitted, it logs what it computes eagerly, every epoch"""
    epochs = [_batches(submission, (8, 8), 10 + e) for e in range(2)]
    reply = submission.metric_fit(epochs, output="box_out", kwargs={"name": "iou"})
    history = reply.get("history") or {}
    logged = [values for key, values in history.items() if key != "loss"]
    if not logged:
        notes = reply.get("notes") or []
        raise Incorrect(
            "inside model.fit your metric logged no number",
            got="; ".join(notes)[:300] or "nothing",
            hint="result() must return a number computed from the state variables",
        )
    steps = []  # as Keras runs it: a fresh metric, reset before every epoch but the first
    for index, batches in enumerate(epochs):
        steps += [("reset",)] * (index > 0) + [*(("update", a, b) for a, b in batches), ("result",)]
    eager = submission.metric(steps)
    want = [as_float(v, "result()") for v in eager["results"]]
    # a first epoch from a wrong start is the value checks' finding: judged from the first reset
    judged = slice(1 if _fresh_state_is_the_mistake(submission, *epochs[0][0]) else 0, None)
    got, want = list(logged[0])[judged], want[judged]
    if agrees(got, want):
        return
    first_batch = [_result(submission, [("update", *e[0]), ("result",)]) for e in epochs][judged]
    hint = (
        "inside fit only the first batch of each epoch counted: Keras traces update_state "
        "once, so state kept in Python attributes (self.n += 1) is updated only then; keep it "
        "in variables (self.add_variable, then assign_add)"
        if agrees(got, first_batch)
        else ""
    )
    raise Incorrect(
        "inside model.fit the logged value differs from what your metric computes eagerly on "
        "the same batches",
        expected=[round(w, 4) for w in want],
        got=[round(float(g), 4) for g in got],
        hint=hint,
    )
