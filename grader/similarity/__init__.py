"""Similarity across a cohort, for the instructor to look at: which submissions' graded code is
alike, ranked, with the matching code side by side. Never a verdict, never a score.

One module per stage, imports flowing one way (``command`` -> ``report`` -> ``pairs`` ->
``code`` / ``extract``): ``extract`` reads each notebook's graded cells the way grading does
(``grader.ingest``, nothing run); ``code`` fingerprints them with copydetect, the stubs' given code
and the reference excluded as boilerplate; ``pairs`` ranks every pair against the documented
threshold; ``report`` renders the page (and the section the class summary embeds); ``command`` is
``grader similarity``.
"""

from __future__ import annotations

from grader.similarity.code import MIN_OWN_CODE, CodeMatch
from grader.similarity.extract import GradedCode, read_all, read_item, read_notebook
from grader.similarity.pairs import (
    CODE_THRESHOLD,
    SOURCE_PREFIX,
    Comparison,
    SimilarPair,
    compare_cohort,
)

__all__ = [
    "CODE_THRESHOLD",
    "MIN_OWN_CODE",
    "SOURCE_PREFIX",
    "CodeMatch",
    "Comparison",
    "GradedCode",
    "SimilarPair",
    "compare_cohort",
    "read_all",
    "read_item",
    "read_notebook",
]
