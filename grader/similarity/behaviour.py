"""Behaviour: how alike two submissions' models are, from the fingerprints grading stored.

Why from the results record: grading already built each model and ran it (``grader grade``
writes ``<out>/<id>/results.json``); its checks record the model's layers and what it predicts on
images that are the same for the whole cohort (``Submission.fingerprint``). Comparing them here
runs nothing. A fingerprint is used only when its grading graded the same bytes as the notebook
compared (``submission_sha256``): a results.json of an earlier version says nothing of this one.

How two fingerprints compare (:func:`agreement`, 0..1): the share of layers the two architectures
have in common, in order (difflib's ratio over the layer lines), times the share of images on
which their predictions agree (every number within the fingerprint's tolerance). The same model
gives 1 whatever its code looks like; two different designs agree on no image.

Why the solution's model counts 0: like the reference's code, it is the expected answer (the
notebook's guidance leads to it), never evidence of copying; the course's check records whether a
model is the solution's (``expected``). Why a weight for what many share (:func:`weighed`): a
model that many learners build (a common variant of the guidance, a public solution's layers) is
no evidence either. A pair's agreement is multiplied by ``2 / m``, where ``m`` is how many
submissions of the cohort are alike (agreement at least :data:`ALIKE`) to both of the pair, when
more than two are: two alone keep their agreement, a ring of three copies keeps two thirds, ten
learners who build one common model keep a fifth.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.results.record import RESULTS_FILE, Fingerprint, load_results
from grader.similarity.extract import GradedCode

#: Why a submission has no fingerprint when no stored gradings were given.
NO_RESULTS = "no stored gradings given"
#: Two fingerprints this alike (of 1) are the same model, for counting how many share one: the
#: same model measured 1.0, different designs 0.0; 0.9 forgives an image or two at a rounding edge.
ALIKE = 0.9


@dataclass(frozen=True)
class BehaviourMatch:
    """How alike two submissions' models are: ``layers`` the share of layers in common (None:
    not both recorded), ``agreed`` of ``images`` the images whose predictions agree, ``shared``
    how many submissions of the cohort are alike to both, ``expected`` both are the solution's
    model, ``value`` the behaviour (0..1)."""

    layers: float | None
    agreed: int
    images: int
    shared: int
    agreement: float
    value: float
    expected: bool = False


def read_fingerprints(
    codes: Iterable[GradedCode], results: Path | Mapping[str, Path] | None
) -> tuple[dict[str, Fingerprint], dict[str, str]]:
    """id -> fingerprint of each submission whose stored grading has one for the same bytes; id
    -> why not, for the others. ``results``: the folder ``grader grade --out`` wrote (its
    ``<id>/results.json``), or each id's results.json (the course server's)."""
    found: dict[str, Fingerprint] = {}
    missing: dict[str, str] = {}
    for code in codes:
        if results is None:
            missing[code.id] = NO_RESULTS
            continue
        if isinstance(results, Mapping):
            path = results.get(code.id)
        else:
            path = Path(results) / code.id / RESULTS_FILE
        record = load_results(path) if path is not None else None
        if record is None:
            missing[code.id] = f"no readable {RESULTS_FILE} of its grading"
        elif code.sha256 and record.submission_sha256 != code.sha256:
            missing[code.id] = "its stored grading is of another version of the notebook"
        elif record.fingerprint is None:
            missing[code.id] = (
                f"its grading ({record.status}) recorded no fingerprint: the model did not "
                "build or run, or an older grader graded it"
            )
        else:
            found[code.id] = record.fingerprint
    return found, missing


def _layers(a: Fingerprint, b: Fingerprint) -> float | None:
    if not a.architecture or not b.architecture:
        return None
    if a.architecture == b.architecture:
        return 1.0
    return difflib.SequenceMatcher(None, a.architecture, b.architecture, autojunk=False).ratio()


def _agreed(a: Fingerprint, b: Fingerprint) -> tuple[int, int] | None:
    """(images agreed, images) when both predicted on the same images, else None."""
    if not a.predictions or not b.predictions or a.images != b.images:
        return None
    first, second = np.asarray(a.predictions, float), np.asarray(b.predictions, float)
    if first.shape != second.shape:
        return 0, max(len(first), len(second))
    tolerance = max(a.tolerance, b.tolerance) + 1e-9
    return int(np.all(np.abs(first - second) <= tolerance, axis=1).sum()), len(first)


def agreement(a: Fingerprint, b: Fingerprint) -> tuple[float | None, int, int, float] | None:
    """(layers in common, images agreed, images, agreement 0..1) of two fingerprints; None when
    they have nothing comparable."""
    layers, agreed = _layers(a, b), _agreed(a, b)
    if layers is None and agreed is None:
        return None
    share = 1.0 if agreed is None else agreed[0] / max(1, agreed[1])
    value = (1.0 if layers is None else layers) * share
    return layers, *(agreed or (0, 0)), value


def weighed(fingerprints: Mapping[str, Fingerprint]) -> dict[tuple[str, str], BehaviourMatch]:
    """The behaviour of every pair of submissions with fingerprints (keyed ``(a, b)`` in the
    mapping's order), each agreement weighed by how many of the cohort share it."""
    ids = list(fingerprints)
    distinct: dict[Fingerprint, int] = {}
    index = {ident: distinct.setdefault(fingerprints[ident], len(distinct)) for ident in ids}
    keys = list(distinct)
    counts = np.bincount(list(index.values()), minlength=len(keys))
    between = {}
    alike = np.zeros((len(keys), len(keys)), bool)
    for i, first in enumerate(keys):
        for j in range(i, len(keys)):
            found = agreement(first, keys[j])
            between[i, j] = between[j, i] = found
            alike[i, j] = alike[j, i] = found is not None and found[3] >= ALIKE
    # shared[i, j]: the submissions alike to both fingerprints i and j
    shared_by = (alike * counts) @ alike.T.astype(int)
    matches = {}
    for x, a in enumerate(ids):
        i = index[a]
        for b in ids[x + 1 :]:
            j = index[b]
            found = between[i, j]
            if found is None:
                continue
            layers, agreed, images, value = found
            shared = int(shared_by[i, j])
            expected = keys[i].expected and keys[j].expected
            weight = 0.0 if expected else 2 / max(2, shared)
            matches[a, b] = BehaviourMatch(
                layers, agreed, images, shared, round(value, 4), round(value * weight, 4), expected
            )
    return matches
