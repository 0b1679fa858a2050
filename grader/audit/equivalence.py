"""When a surviving mutant is equivalent: by behaviour, or by the author's word.

By behaviour: every probe reply the checks received (:class:`Probe`: the request and the data that
came back) is recorded for the reference and for the mutant on the same seeds; a mutant whose
replies equal the reference's on all of them behaves the same as far as any check can see. Floats
are compared within float32 rounding (:data:`RTOL`, :data:`ATOL`: a reordered sum is not a
mistake), everything else exactly; timings (keys ending in ``_seconds``) are not behaviour.

By the author's word: the assignment's ``audit.yaml`` lists mutants no check should kill, each
with its reason, matched by part, the original line and the mutated line or the operator (not by
line number or id, so that edits elsewhere in the solution keep the entry)::

    equivalent:
      - part: draw_picture
        original: "canvas = Image.fromarray(np.array(pixels, dtype=np.uint8))"
        operator: copy            # or mutated: "<the mutated line>"
        reason: "fromarray copies the pixels: a view draws on a copy all the same"
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from grader.assignment import AssignmentError
from grader.mutation.operators import OPERATORS

RTOL, ATOL = 1e-5, 1e-6
#: The equivalents file, in the assignment's folder.
EQUIVALENTS_FILE = "audit.yaml"


@dataclass
class Probe:
    """One probe the checks sent, and what came back (a failure as ``{"$failure": kind}``)."""

    op: str
    request: str  # a digest of the request's arguments and arrays
    about: str  # what it asked, for people: "call make_thing" (names come from the request)
    reply: Any
    seconds: float
    check: str  # the check that sent it ("" when none could be told)


def request_digest(op: str, args: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(json.dumps([op, args], sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def same(a: Any, b: Any) -> bool:
    """Whether two replies are the same data (floats within float32 rounding)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k in a if not str(k).endswith("_seconds")}
        if keys != {k for k in b if not str(k).endswith("_seconds")}:
            return False
        return all(same(a[k], b[k]) for k in keys)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)
    return type(a) is type(b) and a == b


def first_difference(reference: list[Probe], mutant: list[Probe]) -> dict[str, Any] | None:
    """The first probe whose request or reply differs from the reference's, or None."""
    for index, (ref, got) in enumerate(zip(reference, mutant, strict=False)):
        if ref.op != got.op or ref.request != got.request:
            why = "the checks asked something else"
        elif not same(ref.reply, got.reply):
            why = "the reply differs"
        else:
            continue
        return {"index": index, "probe": got.about, "check": got.check, "why": why}
    if len(reference) != len(mutant):
        index = min(len(reference), len(mutant))
        extra = (reference if len(reference) > len(mutant) else mutant)[index]
        return {
            "index": index,
            "probe": extra.about,
            "check": extra.check,
            "why": "fewer probes" if len(reference) > len(mutant) else "more probes",
        }
    return None


@dataclass(frozen=True)
class Listed:
    """One entry of the equivalents file."""

    part: str
    original: str
    reason: str
    mutated: str | None = None
    operator: str | None = None
    # Under ``training:``: a mutant only the training checks can judge (an architecture or
    # optimiser choice). Without --training it counts as equivalent; with it, it is graded.
    training: bool = False

    def matches(self, part: str, operator: str, original: str, mutated: str) -> bool:
        return (
            self.part == part
            and _squash(self.original) == _squash(original)
            and (self.mutated is None or _squash(self.mutated) == _squash(mutated))
            and (self.operator is None or self.operator == operator)
        )


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_equivalents(folder: Path, parts: Iterable[str]) -> tuple[Listed, ...]:
    """The entries of ``folder/audit.yaml`` (none when the file is missing); AssignmentError
    on a malformed entry, so that a typo never passes silently."""
    path = folder / EQUIVALENTS_FILE
    if not path.is_file():
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise AssignmentError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict) or set(data) - {"equivalent", "training"}:
        raise AssignmentError(
            f"{path}: expected the keys `equivalent:` and `training:`, each holding a list"
        )
    known = set(parts)
    entries = []
    items = [(item, False) for item in data.get("equivalent") or []]
    items += [(item, True) for item in data.get("training") or []]
    for number, (item, training) in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) - {
            "part", "original", "mutated", "operator", "reason",
        }:  # fmt: skip
            raise AssignmentError(
                f"{path}: entry {number} may only have part, original, mutated, operator, reason"
            )
        text = {k: (str(v).strip() if v is not None else None) for k, v in item.items()}
        entry = Listed(
            part=text.get("part") or "",
            original=text.get("original") or "",
            reason=text.get("reason") or "",
            mutated=text.get("mutated"),
            operator=text.get("operator"),
            training=training,
        )
        problem = (
            f"no graded part {entry.part!r}"
            if entry.part not in known
            else "needs an original line"
            if not entry.original
            else "needs a reason"
            if not entry.reason
            else "needs the mutated line or the operator"
            if entry.mutated is None and entry.operator is None and not training
            else f"unknown operator {entry.operator!r}"
            if entry.operator is not None and entry.operator not in OPERATORS
            else ""
        )
        if problem:
            raise AssignmentError(f"{path}: entry {number} ({entry.part}) {problem}")
        entries.append(entry)
    return tuple(entries)


def listed_reason(entries: Iterable[Listed], part: str, operator: str, original: str,
                  mutated: str, training: bool = False) -> Listed | None:  # fmt: skip
    """The first entry that lists this mutant, if any (``training:`` entries only in an audit
    without the training checks: with them, those mutants are graded)."""
    return next(
        (
            e
            for e in entries
            if not (training and e.training) and e.matches(part, operator, original, mutated)
        ),
        None,
    )
