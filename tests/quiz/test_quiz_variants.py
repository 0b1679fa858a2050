"""Seeded variants: same seed, same quiz; answers computed from the generated numbers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from assignments.object_localization import quiz_generators
from quiz.scoring import score_item
from quiz.variants import build_quiz, concrete_bank, draw, instantiate


def fingerprint(items) -> list:
    return [
        (
            it.qid,
            it.question.prompt,
            it.question.code,
            [(o.text, o.correct) for o in it.question.options],
            it.question.answer,
        )
        for it in items
    ]


def test_same_seed_same_quiz(bank, definition):
    assert fingerprint(build_quiz(bank, definition, 1234)) == fingerprint(
        build_quiz(bank, definition, 1234)
    )


def test_same_seed_same_quiz_in_another_process(bank, definition):
    code = (
        "import json; from quiz.source import quiz_of; from quiz.variants import build_quiz\n"
        "b, d = quiz_of('object_localization').load()\n"
        "print(json.dumps([[it.qid, it.question.prompt, [o.text for o in it.question.options]] for it in build_quiz(b, d, 99)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    mine = [
        [it.qid, it.question.prompt, [o.text for o in it.question.options]]
        for it in build_quiz(bank, definition, 99)
    ]
    assert json.loads(out) == mine


def test_seeds_give_different_quizzes(bank, definition):
    quizzes = {tuple(it.qid for it in build_quiz(bank, definition, s)) for s in range(20)}
    assert len(quizzes) > 10


def test_draw_follows_the_pools(bank, definition):
    for seed in range(30):
        questions = draw(bank, definition, seed)
        assert len(questions) == definition.questions == 10
        assert len({q.id for q in questions}) == 10, "no question twice"
        for pool in definition.pools:
            assert sum(q.topic in pool.topics for q in questions) == pool.draw


def test_options_are_shuffled_per_seed(bank, definition):
    q = bank.get("loc-vs-detection")
    orders = {tuple(o.text for o in build_one(bank, q, s).options) for s in range(12)}
    assert len(orders) > 1
    tf = bank.get("loc-fixed-box")
    assert all(
        tuple(o.text for o in build_one(bank, tf, s).options) == ("True", "False") for s in range(5)
    )


def build_one(bank, q, seed):
    from quiz.variants import shuffled

    return shuffled(instantiate(q, seed, bank.generators), seed)


def independent_iou(a, b):
    ys = max(a[0], b[0]), min(a[2], b[2])
    xs = max(a[1], b[1]), min(a[3], b[3])
    inter = max(0, ys[1] - ys[0]) * max(0, xs[1] - xs[0])
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_iou_generator_answers_are_computed(bank):
    q = bank.get("var-iou-two-boxes")
    seen_zero = False
    for seed in range(60):
        rng = random.Random(f"{seed}:{q.id}")
        p = bank.generators.run("iou_two_boxes", rng).params
        concrete = instantiate(q, seed, bank.generators)
        a = (p["a_row"], p["a_col"], p["a_row"] + p["side"], p["a_col"] + p["side"])
        b = (p["b_row"], p["b_col"], p["b_row"] + p["side"], p["b_col"] + p["side"])
        assert concrete.answer == pytest.approx(independent_iou(a, b), abs=1e-6)
        assert f"A = ({a[0]}, {a[1]}, {a[2]}, {a[3]})" in concrete.prompt
        assert all(0 <= v <= 144 for v in a + b)
        seen_zero |= concrete.answer == 0
    assert seen_zero, "some variants must have disjoint boxes (clamping matters)"


def test_conv_pool_shape_generator(bank):
    q = bank.get("var-conv-pool-shape")
    for seed in range(40):
        c = instantiate(q, seed, bank.generators)
        p = bank.generators.run("conv_pool_shape", random.Random(f"{seed}:{q.id}")).params
        size = p["size"]
        for _ in range(p["blocks"]):
            size = (size - (2 if p["padding"] == "valid" else 0)) // 2
        right = [o.text for o in c.options if o.correct]
        assert right == [f"(None, {size}, {size}, {p['filters'][-1]})"]
        assert len({o.text for o in c.options}) == len(c.options) >= 3
        assert f"Input(shape=({p['size']}, {p['size']}, 3))" in c.code


def test_numeric_generators_agree_with_their_explanations(bank):
    checks = {
        "var-box-label": lambda p: (p["pixel"]) / 144,
        "var-conv-params": lambda p: p["kernel"] ** 2 * p["cin"] * p["filters"] + p["filters"],
        "var-dense-params": lambda p: p["size"] ** 2 * p["channels"] * p["units"] + p["units"],
        "var-lr-after-epochs": lambda p: p["lr0"] * p["factor"] ** (p["epoch"] // p["every"]),
    }
    for qid, expected in checks.items():
        q = bank.get(qid)
        for seed in range(25):
            p = bank.generators.run(q.generator, random.Random(f"{seed}:{q.id}")).params
            assert instantiate(q, seed, bank.generators).answer == pytest.approx(
                expected(p), rel=1e-6
            ), (qid, seed)


def test_early_stopping_generator_matches_keras_rule():
    # Keras: wait += 1; an improvement (strictly lower) resets wait; stop when wait >= patience.
    assert quiz_generators._early_stop([1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.9, 0.9], patience=3) == (
        8,
        5,
    )
    assert quiz_generators._early_stop([1.0, 0.9, 0.9, 0.9], patience=2) == (
        4,
        2,
    )  # equal is no improvement


def test_generated_items_score_with_their_own_answer(bank, definition):
    for seed in range(15):
        for it in build_quiz(bank, definition, seed):
            if it.question.type == "numeric":
                assert score_item(it, it.question.answer).score == it.question.points


def test_concrete_bank_for_export(bank):
    qs = concrete_bank(bank, seed=5, variants=3)
    templates = [q for q in bank.questions if q.is_template]
    assert len(qs) == len(bank.questions) + 2 * len(templates)
    assert all(not q.is_template for q in qs)
    ids = Counter(q.id for q in qs)
    assert max(ids.values()) == 1
    assert {"var-iou-two-boxes-v1", "var-iou-two-boxes-v3"} <= set(ids)
