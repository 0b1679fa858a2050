"""Every pair of a cohort (and every submission against each outside source), ranked.

Why a stage of its own: the ranking and its threshold are what the instructor reads; the code
stage only measures. A pair's ``score`` is its ``code`` similarity. ``behaviour`` (the same
architecture, the same predictions on hidden images) is ``None``: the results record keeps the
verdicts only, neither the model's architecture nor its predictions, and this command grades
nothing, so there is nothing to compare yet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from grader.similarity.code import NO_MATCH, CodeMatch, boilerplate_hashes, compare, fingerprint
from grader.similarity.extract import GradedCode

#: A pair at or above this code score is worth the instructor's look. Measured on the made-up
#: cohort of tests/test_similarity.py (the solution, typical mistakes, the same mistake made by
#: two learners, three independent implementations of every part): independent pairs score at
#: most 0.29, the three disguised copies (renamed, reordered, recommented) at least 0.87; 0.5
#: leaves 0.2 above the one and 0.37 below the other. It is a reason to look, not a verdict.
CODE_THRESHOLD = 0.5
#: The figures behind it (the page shows them): the highest independent pair, the lowest copy.
MEASURED_INDEPENDENT_MAX = 0.29
MEASURED_COPY_MIN = 0.87

#: The prefix of an outside source's id (``--against``), so it never collides with a submission.
SOURCE_PREFIX = "against:"


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions (or a submission and an outside source) and how alike they are."""

    a: str
    b: str
    code: float
    behaviour: float | None = None
    match: CodeMatch = field(default=NO_MATCH, repr=False, compare=False)

    @property
    def score(self) -> float:
        return self.code

    @property
    def flagged(self) -> bool:
        return self.score >= CODE_THRESHOLD

    def row(self) -> dict[str, Any]:
        """The pair as ``--json`` writes it."""
        return {
            "a": self.a,
            "b": self.b,
            "code": self.code,
            "behaviour": self.behaviour,
            "score": self.score,
        }


@dataclass
class Comparison:
    """A cohort compared: the pairs, highest score first, and what could not be compared."""

    pairs: list[SimilarPair]
    codes: dict[str, GradedCode]  # id -> graded code, submissions and sources
    not_compared: list[GradedCode]  # no graded code (unreadable, no graded part, rejected)
    sources: int = 0

    @property
    def flagged(self) -> list[SimilarPair]:
        return [pair for pair in self.pairs if pair.flagged]

    def rows(self) -> list[dict[str, Any]]:
        return [pair.row() for pair in self.pairs]


def compare_cohort(
    submissions: Iterable[GradedCode],
    sources: Iterable[GradedCode] = (),
    *,
    given: Iterable[GradedCode] = (),
    on_pair: Callable[[int], None] | None = None,
) -> Comparison:
    """Every pair of ``submissions`` and every submission against every source, the ``given``
    code (stubs, reference) excluded as boilerplate. ``on_pair(total)`` after each comparison."""
    submissions, sources = list(submissions), list(sources)
    boilerplate = boilerplate_hashes(code.document for code in given)
    subs = [code for code in submissions if code.cells]
    outside = [
        GradedCode(SOURCE_PREFIX + code.id, code.source, code.cells)
        for code in sources
        if code.cells
    ]
    skipped = [code for code in (*submissions, *sources) if not code.cells]
    prints = {code.id: fingerprint(code.document, boilerplate) for code in (*subs, *outside)}
    ids = [code.id for code in subs]
    todo = list(itertools.combinations(ids, 2))
    todo += [(a, source.id) for a in ids for source in outside]
    pairs = []
    for a, b in todo:
        match = compare(prints[a], prints[b])
        pairs.append(SimilarPair(a, b, match.score, None, match))
        if on_pair is not None:
            on_pair(len(todo))
    pairs.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    codes = {code.id: code for code in (*subs, *outside)}
    return Comparison(pairs, codes, skipped, sources=len(outside))
