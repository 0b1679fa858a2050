"""Seeded variants: draw a quiz from topic pools, fill in parameterised questions, shuffle options.

Everything is a pure function of (bank, definition, seed): the web app stores only the seed and
rebuilds the quiz when grading, the terminal prints the seed so a quiz can be reproduced, and
`quiz grade` rebuilds the quiz a learner saw from the seed in their responses. Per-question RNGs are
seeded from strings (`"{seed}:{id}"`), which Python hashes with SHA-512, so adding a question to one
pool does not change the numbers of another question.
"""

from __future__ import annotations

import random
from dataclasses import replace

from quiz.bank import Bank, QuizDefinition
from quiz.generators import NO_GENERATORS, Generators
from quiz.model import Item, Question


def instantiate(
    q: Question, seed: int, generators: Generators = NO_GENERATORS, new_id: str | None = None
) -> Question:
    """The concrete question for ``seed``: generated numbers filled in, answers computed (a
    template's generator comes from ``generators``, the bank's)."""
    if not q.is_template:
        return q if new_id is None else replace(q, id=new_id)
    assert q.generator is not None
    g = generators.run(q.generator, random.Random(f"{seed}:{q.id}"), q.params)
    return replace(
        q,
        id=new_id or q.id,
        prompt=q.prompt.format_map(g.params),
        code=q.code.format_map(g.params),
        explanation=q.explanation.format_map(g.params),
        options=g.options,
        answer=g.answer,
        tolerance=q.tolerance if g.tolerance is None else g.tolerance,
        generator=None,
        params={},
    )


def shuffled(q: Question, seed: int) -> Question:
    """`q` with its options in the seeded display order (unless the bank says shuffle: false)."""
    if not q.shuffle or len(q.options) < 2:
        return q
    options = list(q.options)
    random.Random(f"{seed}:{q.id}:options").shuffle(options)
    return replace(q, options=tuple(options))


def draw(bank: Bank, definition: QuizDefinition, seed: int) -> list[Question]:
    """The bank questions of the quiz for `seed`, pool by pool, without repeats."""
    rng = random.Random(seed)
    chosen: list[Question] = []
    for pool in definition.pools:
        candidates = [q for q in bank.questions if q.topic in pool.topics]
        chosen += rng.sample(candidates, pool.draw)
    return chosen


def build_quiz(bank: Bank, definition: QuizDefinition, seed: int) -> list[Item]:
    """The quiz a learner sees for `seed`: same seed, same questions, numbers and option order."""
    return [
        Item(number=i, qid=q.id, question=shuffled(instantiate(q, seed, bank.generators), seed))
        for i, q in enumerate(draw(bank, definition, seed), start=1)
    ]


def concrete_bank(bank: Bank, seed: int = 0, variants: int = 1) -> list[Question]:
    """Every bank question made concrete, for LMS export (which cannot run our generators).

    Parameterised questions become `variants` copies with ids `<id>-v1`, `<id>-v2`, ... so an LMS
    can draw among them; static questions are exported once, options in bank order.
    """
    out: list[Question] = []
    for q in bank.questions:
        if q.is_template:
            out += [
                instantiate(q, seed + v, bank.generators, f"{q.id}-v{v + 1}")
                for v in range(variants)
            ]
        else:
            out.append(q)
    return out
