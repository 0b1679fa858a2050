"""Similarity across a cohort, for the instructor to look at: which submissions' graded code is
alike and whose models behave alike, ranked, with the matching code side by side. Never a
verdict, never a score.

One module per stage, imports flowing one way (``command`` -> ``report`` -> ``pairs`` ->
``code`` / ``behaviour`` -> ``extract``): ``extract`` reads each notebook's graded cells the way
grading does (``grader.ingest``, nothing run); ``code`` fingerprints them with copydetect, the
stubs' given code and the reference excluded as boilerplate; ``behaviour`` compares the model
fingerprints grading stored in the results records; ``pairs`` ranks every pair against the
documented thresholds; ``report`` renders the page (and the section the class summary and the
course server embed); ``command`` is ``grader similarity``.
"""

from __future__ import annotations

from grader.similarity.behaviour import BehaviourMatch, read_fingerprints
from grader.similarity.code import MIN_OWN_CODE, CodeMatch
from grader.similarity.extract import GradedCode, read_all, read_item, read_notebook
from grader.similarity.pairs import (
    BEHAVIOUR_THRESHOLD,
    CODE_THRESHOLD,
    SOURCE_PREFIX,
    Comparison,
    SimilarPair,
    compare_cohort,
)

__all__ = [
    "BEHAVIOUR_THRESHOLD",
    "CODE_THRESHOLD",
    "MIN_OWN_CODE",
    "SOURCE_PREFIX",
    "BehaviourMatch",
    "CodeMatch",
    "Comparison",
    "GradedCode",
    "SimilarPair",
    "compare_cohort",
    "read_all",
    "read_fingerprints",
    "read_item",
    "read_notebook",
]
