"""The checks' own models of typical mistakes (checks/public/mistakes.py): on the inputs the checks
use, each model is told apart from the right answer and from every other model, so that a hint
fires for its mistake and for no other; and the readers they rest on find what the reference draws,
wherever it draws it (properties over Hypothesis-drawn inputs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assignments.object_localization import reference as ref
from assignments.object_localization.checks.hidden.helpers import random_boxes
from assignments.object_localization.checks.public import mistakes, test_public
from assignments.object_localization.checks.public.helpers import (
    MARGIN,
    box_matches,
    close,
    drawn_box,
    expected_box,
    locate_tiles,
)
from grader.checking import agree
from grader.checking.diagnosis import first_model
from grader.secret import using_seed

POSITIONS = st.tuples(st.integers(0, ref.MAX_OFFSET), st.integers(0, ref.MAX_OFFSET))


def distinct(models, right, same, *, every: bool = True) -> None:
    """A learner whose values are a model's gets that model's hint and no other's (with
    ``every=False``, possibly none: inputs where two mistakes agree name neither). A model that
    gives the right answer on these inputs is not seen there (the check passes) and is skipped."""
    seen = [m for m in models if not same(m.returns, right)]
    assert seen, "none of the mistakes shows on these inputs"
    for model in seen:
        hint = first_model(models, model.returns, same)
        assert hint == model.hint or (not every and hint == ""), (model.hint, hint)


def positions(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Where the reference draws the tiles of these rng seeds (the learner's draws are alike)."""
    drawn = np.array([ref.make_batch(1, seed).positions[0] for seed in seeds])
    return drawn[:, 0], drawn[:, 1]


def test_label_models_each_fire_on_the_public_checks_examples():
    rows, cols = positions(test_public.PUBLIC_SEEDS)
    right = (np.stack([rows, cols], axis=1) + MARGIN) / 144
    distinct(mistakes.label_models(rows, cols), right, lambda a, b: close(a, b, 0.5 / 144))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), min_size=12, max_size=12, unique=True))
def test_label_models_never_name_another_mistake(seeds):
    rows, cols = positions(seeds)
    right = (np.stack([rows, cols], axis=1) + MARGIN) / 144
    same = lambda a, b: close(a, b, 0.5 / 144)  # noqa: E731
    distinct(mistakes.label_models(rows, cols), right, same, every=False)


def test_iou_models_each_fire_on_the_notebooks_cases():
    y_true = np.array([c[1] for c in test_public.IOU_CASES], np.float32)
    y_pred = np.array([c[2] for c in test_public.IOU_CASES], np.float32)
    right = ref.iou(y_true, y_pred)
    distinct(mistakes.iou_models(y_true, y_pred), right, lambda a, b: close(a, b, 2e-3))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**62))
def test_iou_models_each_fire_on_any_hidden_boxes(seed):
    with using_seed(seed):
        y_true, y_pred = random_boxes(48, 1)
    right = ref.iou(y_true, y_pred)
    distinct(mistakes.iou_models(y_true, y_pred), right, lambda a, b: close(a, b, 2e-3))


def test_schedule_models_each_fire_on_the_table():
    calls = list(test_public.SCHEDULE_CALLS)
    right = [mistakes.rule(e, lr) for e, lr in calls]
    distinct(mistakes.schedule_models(calls), right, agree)


@pytest.mark.parametrize("case", test_public.BOX_CASES)
def test_box_models_each_fire_for_each_drawn_box(case):
    for coords in case:
        distinct(mistakes.box_models(coords), expected_box(coords), mistakes.same_box)


def test_accumulation_models_each_fire_on_the_checks_batches():
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, n) for n in (5, 12, 7)]
    right = float(np.concatenate(batches).mean())
    distinct(mistakes.accumulation_models(batches), right, lambda a, b: close(a, b, 2e-3))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, ref.NUM_CLASSES - 1), POSITIONS)
def test_a_tile_is_found_wherever_it_is_pasted(class_id, position):
    image = np.full((144, 144, 3), 255, np.uint8)
    row, col = position
    image[row : row + 72, col : col + 72] = ref.emoji_tiles()[class_id]
    found = locate_tiles(image[None])
    assert found.found()[0]
    assert (found.classes[0], found.rows[0], found.cols[0]) == (class_id, row, col)


@settings(max_examples=30, deadline=None)
@given(POSITIONS, st.floats(-3, 3))
def test_the_reference_drawing_is_where_the_checks_expect_it(position, shift):
    coords = (np.array(position, float) + MARGIN + shift) / 144
    drawn = ref.draw_boxes(np.full((144, 144, 3), 255, np.uint8), true_box=coords, width=3)
    assert box_matches(drawn_box(drawn, "green"), expected_box(coords))
