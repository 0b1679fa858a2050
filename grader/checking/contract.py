"""The parts' contract: what the learner notebook's stubs promise about each graded part, and the
learner's message when a submission breaks it (a part missing or renamed, another signature).

Why a module of its own: these messages are where a learner learns what to write, so they are
worded once, here, from the assignment's manifest (each part's stub and its advice when missing),
and every probe of the submission proxy (``submission``, ``keras_probes``) uses them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from grader.assignment import Assignment
from grader.checking.check_api import Incorrect
from grader.ingest import IngestedNotebook


def found_signature(described: Mapping[str, Any] | None) -> inspect.Signature | None:
    """The learner's signature rebuilt from the worker's description (names and kinds only)."""
    data = (described or {}).get("signature")
    if not isinstance(data, dict) or not isinstance(data.get("params"), list):
        return None
    kinds = {
        k.name: k
        for k in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.VAR_KEYWORD,
        )
    }
    try:
        params = [
            inspect.Parameter(str(name), kinds[kind], **({"default": None} if default else {}))
            for name, kind, default in data["params"]
        ]
        return inspect.Signature(params)
    except (TypeError, ValueError, KeyError):
        return None


def accepts_keyword(signature: inspect.Signature, name: str) -> bool:
    kinds = {p.name: p.kind for p in signature.parameters.values()}
    if kinds.get(name) in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
        return True
    return inspect.Parameter.VAR_KEYWORD in kinds.values()


class PartContract:
    """The stubs' promises for one assignment and one submission (``ingested`` may be None: a
    self-check over a namespace)."""

    def __init__(self, assignment: Assignment, ingested: IngestedNotebook | None) -> None:
        self.assignment = assignment
        self.ingested = ingested

    def missing_message(self, part: str) -> str:
        """What the grader expected, what it found instead (definitions of the part's kind under
        a near name, anywhere in the notebook), and what to write."""
        found = next(
            (p.message for p in self.ingested.problems if p.part == part and p.message), ""
        )
        text = found or f"`{part}` was not found in your notebook."
        text += f" The grader expected `{self.assignment.stub(part)}`"
        near = self.ingested.near_names.get(part, ())
        if len(near) == 1:
            text += f"; {near[0].message}: rename it to `{part}`"
        elif near:
            listed = "; ".join(n.message for n in near)
            text += f"; {listed}: rename the one that is your `{part}` to `{part}`"
        text += "."
        advice = self.assignment.part(part)
        text += " " + (
            advice.missing if advice and advice.missing else "Keep the graded cell's name."
        )
        return text

    def misspelt_message(self, part: str) -> str | None:
        """The misspelt methods of a graded class (``_init_`` for ``__init__``), named as such:
        the cause to show instead of its symptom (an attribute ``__init__`` should have set)."""
        if self.ingested is None:
            return None
        found = [
            p.message
            for p in self.ingested.problems
            if p.kind == "misspelt_method" and p.part == part
        ]
        return " ".join(found) or None

    def signature_problem(
        self, part: str, described: Mapping[str, Any] | None, keyword: str | None
    ) -> str | None:
        """A message when ``part`` (as the worker ``described`` it) does not take the stub's
        ``keyword`` argument (e.g. ``rng``)."""
        signature = found_signature(described)
        if signature is None or keyword is None or accepts_keyword(signature, keyword):
            return None
        return self.signature_message(part, described, f"no `{keyword}` parameter")

    def signature_message(self, part: str, described: Mapping[str, Any] | None, why: str) -> str:
        text = ((described or {}).get("signature") or {}).get("text") or "?"
        return (
            f"`{part}` is not declared as the stub declares it ({why}). The grader expected "
            f"`{self.assignment.stub(part)}`; your notebook defines `{text}`. Keep the stub's "
            "parameters: the grader passes them by these names."
        )

    def bind(
        self,
        part: str,
        described: Mapping[str, Any] | None,
        args: tuple | list,
        kwargs: dict[str, Any],
        optional: tuple = (),
    ) -> dict[str, Any]:
        """Check that the learner's ``part`` accepts this call (Incorrect naming the stub's
        signature otherwise); keyword arguments in ``optional`` that it does not take are
        dropped, so the properties that do not need them can still be checked."""
        signature = found_signature(described)
        if signature is None:
            return kwargs
        kwargs = {
            k: v for k, v in kwargs.items() if k not in optional or accepts_keyword(signature, k)
        }
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise Incorrect(self.signature_message(part, described, str(error))) from None
        return kwargs
