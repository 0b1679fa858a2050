"""Code similarity with copydetect: winnowed fingerprints of the tokenised code, the given code
excluded as boilerplate.

Why copydetect: it is a maintained implementation of MOSS's winnowing with a Python API. Its
tokeniser (Pygments) drops comments and whitespace and writes every variable, attribute and
parameter name as ``V``, every function name as ``F`` and every class name as ``O``, so renamed
identifiers, changed comments and re-indented code leave the fingerprints as they were; the
fingerprints of a document are a set, so reordered definitions match too. What stays verbatim is
the structure: keywords, operators, numbers, builtins and imported module names.

Boilerplate: every k-gram of the learner notebook's stubs and of the reference solution is
removed from each submission's fingerprints, so that the code everyone was given, and a correct
answer written the way the reference writes it, is never evidence of copying. copydetect removes
boilerplate with ``np.intersect1d(..., assume_unique=True)`` on a list that holds repeated k-grams,
which also drops every repeat of a learner's own k-grams; :func:`fingerprint` therefore takes the
library's fingerprint without boilerplate and removes the boilerplate hashes from it itself.
Python salts ``hash`` per process, so fingerprints are taken and compared in one process.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # copydetect imports matplotlib (~0.5 s): loaded when a comparison runs, not
    from copydetect import CodeFingerprint  # by every `grader` command that builds its parser

#: k-gram length in tokenised characters (copydetect's noise threshold, its default): matches
#: shorter than this are never reported.
K = 25
#: Winnowing window (copydetect's guarantee threshold minus K plus 1): 1 keeps every k-gram,
#: which a notebook's few hundred lines afford.
WINDOW = 1


def fingerprint(code: str, boilerplate: frozenset[int] = frozenset()) -> CodeFingerprint:
    """copydetect's fingerprint of Python ``code`` with the ``boilerplate`` hashes removed."""
    from copydetect import CodeFingerprint
    from copydetect.utils import get_token_coverage

    print_ = CodeFingerprint("code.py", K, WINDOW, fp=io.StringIO(code), language="python")
    if boilerplate:
        kept = {h: i for h, i in print_.hash_idx.items() if h not in boilerplate}
        print_.hash_idx = kept
        print_.hashes = set(kept)
        print_.token_coverage = get_token_coverage(kept, K, len(print_.filtered_code))
    return print_


def boilerplate_hashes(documents: Iterable[str]) -> frozenset[int]:
    """Every k-gram hash of the given code (stubs, reference), as copydetect takes boilerplate."""
    hashes: set[int] = set()
    for document in documents:
        hashes |= fingerprint(document).hashes
    return frozenset(hashes)


#: Own code below this many tokenised characters (about one graded part written by a learner;
#: the cohort's independent implementations average ~200 a part) counts as this many: two
#: notebooks that differ from the reference by the same one-line mistake share all of their own
#: code (50 to 70 characters) and are not copies; measured in tests/test_similarity.py.
MIN_OWN_CODE = 250


@dataclass(frozen=True)
class CodeMatch:
    """How much of two documents' own (non-boilerplate) code matches: ``shared`` tokenised
    characters of the first, ``similarity`` copydetect's matched share of each document's own
    code, ``score`` the mean of the shares with own code counted as at least
    :data:`MIN_OWN_CODE`, 0..1 (high only when each is mostly the other's, on enough code)."""

    shared: int
    similarity: tuple[float, float]
    score: float
    slices: tuple[np.ndarray, np.ndarray]  # copied regions in each raw document (starts, ends)


NO_MATCH = CodeMatch(0, (0.0, 0.0), 0.0, (np.zeros((2, 0), int), np.zeros((2, 0), int)))


def compare(first: CodeFingerprint, second: CodeFingerprint) -> CodeMatch:
    """copydetect's comparison of two fingerprints."""
    if not first.hashes & second.hashes:
        return NO_MATCH
    from copydetect import compare_files

    shared, similarity, slices = compare_files(first, second)
    shares = [
        float(share) * own / max(own, MIN_OWN_CODE)
        for share, own in zip(
            similarity, (first.token_coverage, second.token_coverage), strict=True
        )
    ]
    return CodeMatch(
        int(shared),
        (float(similarity[0]), float(similarity[1])),
        round(sum(shares) / 2, 4),
        slices,
    )
