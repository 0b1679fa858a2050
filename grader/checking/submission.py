"""What the checks talk to: a learner's submission, behind one interface with two implementations.

- ``grader.grade.SandboxedSubmission`` (grading): every call is a probe request to the sandboxed worker; only
  data comes back, and the verdict is computed here, in the trusted process.
- ``grader.checking.in_process.InProcessSubmission`` (self-check): the same probes run in the
  learner's own process over their notebook's namespace; never used for grades.

Replies are cached per request, so several checks can look at the same model or training run. The
probe limits and the learner's messages for a failed probe are in ``grader.checking.probes``, the
messages about the parts' contract in ``grader.checking.contract``. The
worker knows no assignment: every request names the learner's definitions it uses (by default the
assignment's parts of each kind, ``grader.assignment.PartKind``) and the callback's stand-in model
comes from the assignment's ``stand_in`` hook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from grader.assignment import Assignment, resolve
from grader.checking.artifacts import Artifacts
from grader.checking.call_probes import CallProbes
from grader.checking.check_api import LearnerError, NotAttempted
from grader.checking.contract import PartContract
from grader.checking.diagnosis import Diagnoser, Model, agree, first_model
from grader.checking.keras_probes import KerasProbes
from grader.checking.metric_probes import MetricProbes
from grader.checking.probes import Causes, ProbeFailure, describe_failure
from grader.ingest import IngestedNotebook
from grader.wire import FailureKind


class Submission(CallProbes, MetricProbes, KerasProbes):
    """Probe API used by the checks: the core here (loading, requiring a part, one probe with its
    cache and its failure message, diagnosis), the probes by kind in the mixins. Subclasses
    provide :meth:`_request`."""

    def __init__(
        self, ingested: IngestedNotebook | None, assignment: Assignment | None = None
    ) -> None:
        self.ingested = ingested
        self.assignment = resolve(assignment)  # None: the only one installed
        self.causes: Causes = tuple(self.assignment.hook("known_causes", ()))
        self.contract = PartContract(self.assignment, ingested)
        self.artifacts = Artifacts()  # filled by the checks for the report
        self._cache: dict[str, Any] = {}
        self._load: dict[str, Any] | None = None
        self._load_failure: ProbeFailure | None = None
        self._seeded_calls = 0
        self.figures: dict[str, float] = {}  # what the running check measured (``measured``)
        #: the course's secret seed, set by grading (None in the self-check, the audit, bench):
        #: what :meth:`cohort_rng` draws from
        self.course_seed: int | None = None
        #: what the checks recorded of the model's behaviour (:meth:`fingerprint`)
        self.recorded: dict[str, Any] = {}
        #: runs the known mistakes of the reference for a failed check (lazy: the solution is
        #: read on first use, and only where it is available: grading, not the self-check)
        self.diagnoser = Diagnoser(self.assignment)

    # -- implemented by subclasses

    def _request(
        self,
        op: str,
        args: dict[str, Any],
        arrays: dict[str, np.ndarray],
        on_message: Callable | None = None,
    ) -> Any:
        raise NotImplementedError

    # -- shared logic

    def loaded_names(self) -> dict[str, Any]:
        if self._load is None and self._load_failure is None:
            try:
                self._load = self._request("load", {}, {})
            except ProbeFailure as failure:
                self._load_failure = failure
        if self._load_failure is not None:
            raise LearnerError(describe_failure(self._load_failure, "loading it", self.causes))
        return self._load["names"]

    def require(self, part: str) -> None:
        """Raise NotAttempted/LearnerError unless ``part`` exists, was attempted and loads."""
        info = self.ingested.parts.get(part) if self.ingested else None
        if self.ingested is not None and info is None:
            raise NotAttempted(self.contract.missing_message(part))
        if info is not None and not info.attempted:
            raise NotAttempted(
                f"`{part}` still raises NotImplementedError: replace the stub with your code."
            )
        names = self.loaded_names()
        if names.get(part, {}).get("kind", "missing") == "missing":
            raise NotAttempted(
                f"`{part}` is not defined after loading your code. The grader expected "
                f"`{self.assignment.stub(part)}`."
            )

    def diagnose(
        self,
        part: str,
        measure: Callable[[Submission], Any],
        got: Any,
        *,
        models: Iterable[Model] = (),
        same: Callable[[Any, Any], bool] = agree,
        mutants: bool = True,
    ) -> str:
        """The hint of the known mistake whose values match the learner's ``got`` on a failed
        check's inputs, else "": the check's own ``models`` first, then the reference run with
        each known mistake of ``part`` (``grader.checking.diagnosis``), measured by ``measure``
        exactly as the learner's code was (``mutants=False``: the catalogue's mistakes only, for
        a measure that costs seconds)."""
        hint = first_model(models, got, same)
        if hint or self.diagnoser is None:
            return hint
        return self.diagnoser.explain(part, measure, got, same=same, mutants=mutants)

    def measured(self, what: str, value: float) -> float:
        """Record a figure the running check judged (a trained model's accuracy, a cost) and return
        it. ``grader bench`` prints each figure over many hidden seeds of the reference: where a
        check's bands and limits come from. Never shown to learners."""
        self.figures[what] = float(value)
        return value

    def cohort_rng(self, offset: int = 0) -> np.random.Generator | None:
        """A generator that draws the same numbers for every submission of the assignment in
        this course (keyed by the course secret and the assignment's name, never by the
        submission, unlike the hidden seed): the images a :meth:`fingerprint` predicts on, so
        that two submissions' predictions can be compared. None outside grading."""
        if self.course_seed is None:
            return None
        return np.random.default_rng([cohort_seed(self.course_seed, self.assignment.name), offset])

    def solution(self) -> Submission | None:
        """The assignment's solution as a submission the probes can drive, run in this trusted
        process (the diagnoser's copy), with this grading's course seed: what a check compares
        the learner's model with. None where the solution is not available (the self-check)."""
        from grader.checking.diagnosis import IN_PROCESS

        base = self.diagnoser._solution() if self.diagnoser is not None else None
        if base is None or not IN_PROCESS:
            return None
        made = IN_PROCESS[0](dict(base), None, self.assignment)
        made.course_seed = self.course_seed
        return made

    def fingerprint(
        self,
        *,
        architecture: Iterable[str] | None = None,
        predictions: Iterable[Iterable[float]] | None = None,
        tolerance: float = 0.0,
        expected: bool | None = None,
    ) -> None:
        """Record what the model is (``architecture``: a line per layer) and what it predicts
        on the :meth:`cohort_rng` images (a row of numbers per image; two rows agree when each
        number differs by at most ``tolerance``); ``expected``: it is the solution's model (the
        expected answer, never evidence of copying). Grading keeps it in the results record,
        where ``grader similarity`` compares it across a cohort; it never changes a verdict and
        is never shown to learners. Record it compact and rounded."""
        if expected is not None:
            self.recorded["expected"] = bool(expected)
        if architecture is not None:
            self.recorded["architecture"] = [str(line) for line in architecture]
        if predictions is not None:
            self.recorded["predictions"] = [[float(x) for x in row] for row in predictions]
            self.recorded["tolerance"] = float(tolerance)
            seed = (
                cohort_seed(self.course_seed, self.assignment.name)
                if self.course_seed is not None
                else 0
            )
            self.recorded["images"] = hashlib.sha256(f"images:{seed}".encode()).hexdigest()[:8]

    def signature_problem(self, part: str, *, keyword: str | None = None) -> str | None:
        """A message when ``part`` does not take the stub's ``keyword`` argument (e.g. ``rng``)."""
        return self.contract.signature_problem(part, self.loaded_names().get(part), keyword)

    def _bind(
        self, part: str, args: tuple | list, kwargs: dict[str, Any], *, optional: tuple = ()
    ) -> dict[str, Any]:
        """``kwargs`` that the learner's ``part`` takes (see ``PartContract.bind``)."""
        described = self.loaded_names().get(part)
        return self.contract.bind(part, described, args, kwargs, optional)

    def probe(
        self,
        op: str,
        args: dict[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        doing: str,
        cache_key: str | None = None,
        on_message: Callable | None = None,
        part: str | None = None,
    ) -> Any:
        """One request; a failure becomes a LearnerError that tells the learner what happened.

        Replies (and failures) are cached by ``cache_key``, or, for a plain request, by its
        arguments and arrays; a request that talks back (``on_message``) needs an explicit key.
        """
        key = cache_key
        if key is None and not on_message:
            digest = {
                name: (a.shape, str(a.dtype), hash(a.tobytes()))
                for name, a in (arrays or {}).items()
            }
            key = json.dumps([op, args, repr(sorted(digest.items()))], sort_keys=True, default=str)
        if key is not None and key in self._cache:
            cached = self._cache[key]
            if isinstance(cached, LearnerError):
                raise cached
            return cached
        try:
            value = self._request(op, args, dict(arrays or {}), on_message)
        except ProbeFailure as failure:
            message = describe_failure(failure, doing, self.causes)
            misspelt = self.contract.misspelt_message(part) if part else None
            if misspelt:  # the cause, not its symptom (an attribute it should have set)
                message = f"{misspelt}\n(What it caused: {message.splitlines()[0]})"
            error = LearnerError(message, raised=failure.kind is FailureKind.LEARNER_ERROR)
            if key is not None:
                self._cache[key] = error
            raise error from None
        if key is not None:
            self._cache[key] = value
        return value


#: Separates this use of the course seed from the hidden seed's (``grader.secret``).
_COHORT_DERIVATION = b"grader fingerprint inputs of an assignment\0"


def cohort_seed(course_seed: int, assignment: str) -> int:
    """The seed of the inputs every submission of ``assignment`` is fingerprinted on: a keyed
    hash of the assignment's name by the course seed (as ``grader.secret.submission_seed``, with
    no submission in it), so the inputs are unknown without the secret and the same across a
    cohort."""
    key = str(int(course_seed)).encode("ascii")
    message = _COHORT_DERIVATION + assignment.encode("utf-8", "surrogatepass")
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:8], "big") >> 2
