"""Every pair of a cohort (and every submission against each outside source), ranked.

Why a stage of its own: the ranking and its thresholds are what the instructor reads; the code
and behaviour stages only measure. A pair's ``code`` is how alike its graded code is
(``code``); its ``behaviour`` how alike its models are (``behaviour``: the same layers, the same
predictions on the cohort's hidden images), None when either has no stored fingerprint. Its
``score`` is the higher of the two: a copy with disguised code but the same model ranks as high
as a plain copy, and a copy whose model was changed still ranks by its code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.results.record import Fingerprint
from grader.similarity.behaviour import BehaviourMatch, weighed
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

#: A pair at or above this behaviour is worth a look. Measured on the same cohort's models,
#: built as grading builds them, under two course secrets (tests/test_similarity.py): each
#: disguised copy's model agrees with its original's on all 16 images (1.0); models of different
#: designs agree on none (0.0; the closest differ by 0.075 on their closest image, 50 times the
#: tolerance), even with the same layers; the 20 notebooks that build the solution's model count
#: 0 (the expected answer; weighed by how many share it, they would count 2/20). Confirmed on
#: real sandboxed gradings of 8 of them: copies 1.0, every other pair 0.0. 0.5 lies between: a
#: pair is flagged when its models are the same, not the solution's, and at most four
#: submissions of the cohort share them.
BEHAVIOUR_THRESHOLD = 0.5
MEASURED_BEHAVIOUR_INDEPENDENT_MAX = 0.0
MEASURED_BEHAVIOUR_COPY_MIN = 1.0

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
    model: BehaviourMatch | None = field(default=None, repr=False, compare=False)

    @property
    def score(self) -> float:
        """The higher of code and behaviour (what the pairs are ranked by)."""
        return max(self.code, self.behaviour or 0.0)

    @property
    def flagged(self) -> bool:
        return self.code >= CODE_THRESHOLD or (self.behaviour or 0.0) >= BEHAVIOUR_THRESHOLD

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
    #: submission id -> why it has no fingerprint to compare (no stored grading, another version)
    no_fingerprint: dict[str, str] = field(default_factory=dict)
    fingerprinted: int = 0  # submissions whose stored grading has a fingerprint

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
    fingerprints: Mapping[str, Fingerprint] | None = None,
    no_fingerprint: Mapping[str, str] | None = None,
) -> Comparison:
    """Every pair of ``submissions`` and every submission against every source, the ``given``
    code (stubs, reference) excluded as boilerplate, and the behaviour of every pair of
    submissions that both have ``fingerprints`` (id -> what their grading stored;
    ``no_fingerprint``: id -> why one has none). ``on_pair(total)`` after each comparison."""
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
    models = {i: fingerprints[i] for i in ids if fingerprints and i in fingerprints}
    behaviours = weighed(models)
    pairs = []
    for a, b in todo:
        match = compare(prints[a], prints[b])
        model = behaviours.get((a, b))
        behaviour = None if model is None else model.value
        pairs.append(SimilarPair(a, b, match.score, behaviour, match, model))
        if on_pair is not None:
            on_pair(len(todo))
    pairs.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    codes = {code.id: code for code in (*subs, *outside)}
    missing = {i: (no_fingerprint or {}).get(i, "no fingerprint") for i in ids if i not in models}
    return Comparison(pairs, codes, skipped, len(outside), missing, len(models))
