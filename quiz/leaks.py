"""Find questions whose code gives away another question's answer.

Why: a quiz draws questions from several pools into one page, so a code snippet shown with one
question can answer another drawn beside it (a snippet with a metric's log key answers the
question "monitor=____"). A question's ``answer_patterns`` (bank YAML) name the ways code may
write its answer that a text search cannot find (a formula written with other names).
`quiz check` runs this on the bank and the definition, over several seeds because parameterised
questions generate their code. Only pairs that can be drawn into one quiz are compared: questions
of different pools, or of one pool that draws more than one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from quiz.bank import Bank, QuizDefinition
from quiz.model import Question
from quiz.scoring import fmt_number
from quiz.variants import instantiate


def answer_texts(q: Question) -> list[str]:
    """What would give `q` away if another question showed it: its accepted answers, its right
    options' texts, a distinctive number (short ones such as 1 or 144 occur everywhere)."""
    if q.type == "fill":
        return [a for a in q.accepted if len(a) >= 3]
    if q.type == "numeric":
        text = fmt_number(q.answer) if q.answer is not None else ""
        return [text] if len(text) >= 4 else []
    return [o.text for o in q.options if o.correct and len(o.text) >= 6]


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def answer_leaks(
    bank: Bank, definition: QuizDefinition, seeds: Iterable[int] = range(12)
) -> list[str]:
    """'<a> shows <b>: <answer>' for every question a whose code shows the answer of a question
    b that can be drawn into the same quiz (sorted, without repeats)."""
    pool = {t: i for i, p in enumerate(definition.pools) for t in p.topics}

    def together(a: Question, b: Question) -> bool:
        if a.topic not in pool or b.topic not in pool:
            return False
        return pool[a.topic] != pool[b.topic] or definition.pools[pool[a.topic]].draw > 1

    found: set[str] = set()
    for seed in seeds:
        concrete = [instantiate(q, seed, bank.generators) for q in bank.questions]
        for a, b in itertools.permutations(concrete, 2):
            if not a.code or not together(a, b):
                continue
            code = _squash(a.code)
            for answer in answer_texts(b):
                if re.search(rf"(?<![\w.]){re.escape(_squash(answer))}(?!\w)", code):
                    found.add(f"{a.id} shows {b.id}: {answer}")
            if any(re.search(p, a.code, re.IGNORECASE) for p in b.answer_patterns):
                found.add(f"{a.id} shows {b.id}")
    return sorted(found)
