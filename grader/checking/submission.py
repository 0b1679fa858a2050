"""What the checks talk to: a learner's submission, behind one interface with two implementations.

- ``grader.grade.SandboxedSubmission`` (grading): every call is a probe request to the sandboxed worker; only
  data comes back, and the verdict is computed here, in the trusted process.
- :class:`InProcessSubmission` (self-check): the same probes run in the learner's own process over
  their notebook's namespace. Fast and good enough for a learner checking their own work; never used
  for grades.

Replies are cached per request, so several checks can look at the same model or training run. The
probe limits and the learner's messages for a failed probe are in ``grader.checking.probes``. The
worker knows no assignment: every request names the learner's definitions it uses (by default the
assignment's parts of each kind, ``grader.assignment.PartKind``) and the callback's stand-in model
comes from the assignment's ``stand_in`` hook.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader import wire
from grader.assignment import Assignment, PartKind, resolve
from grader.checking.artifacts import Artifacts
from grader.checking.check_api import Incorrect, LearnerError, NotAttempted
from grader.checking.model_audit import ModelAudit, ModelAuditError, audit_config
from grader.checking.probes import Causes, ProbeFailure, describe_failure
from grader.ingest import IngestedNotebook
from grader.wire import FailureKind


def probe_images(shape: tuple[int, ...], n: int = 8) -> np.ndarray:
    """Fixed, label-free uint8 inputs of ``shape`` for structural probes of a model: it must run
    on them."""
    return np.random.default_rng(0).integers(0, 256, size=(n, *shape), dtype=np.uint8)


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


def _close_names(source: str, part: str, graded: tuple[str, ...]) -> list[str]:
    """Top-level definitions in the kept source whose names look like ``part`` (renamed parts)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    lowered = {name.lower(): name for name in defined if name not in graded}
    matches = difflib.get_close_matches(part.lower(), list(lowered), n=3, cutoff=0.6)
    return [lowered[m] for m in matches]


class Submission:
    """Probe API used by the checks. Subclasses provide :meth:`_request`."""

    def __init__(
        self, ingested: IngestedNotebook | None, assignment: Assignment | None = None
    ) -> None:
        self.ingested = ingested
        self.assignment = resolve(assignment)  # None: the only one installed
        self.causes: Causes = tuple(self.assignment.hook("known_causes", ()))
        self.artifacts = Artifacts()  # filled by the checks for the report
        self._cache: dict[str, Any] = {}
        self._load: dict[str, Any] | None = None
        self._load_failure: ProbeFailure | None = None
        self._seeded_calls = 0

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
            raise NotAttempted(self._missing_message(part))
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

    def _missing_message(self, part: str) -> str:
        """What the grader expected, what it found instead, and what to write."""
        found = next(
            (p.message for p in self.ingested.problems if p.part == part and p.message), ""
        )
        text = found or f"`{part}` was not found in your notebook."
        text += f" The grader expected `{self.assignment.stub(part)}`"
        close = _close_names(self.ingested.source, part, self.assignment.part_names)
        if close:
            text += f"; your notebook defines {', '.join(f'`{n}`' for n in close)}: rename it to `{part}`"
        text += "."
        advice = self.assignment.part(part)
        text += " " + (
            advice.missing if advice and advice.missing else "Keep the graded cell's name."
        )
        return text

    def signature_problem(self, part: str, *, keyword: str | None = None) -> str | None:
        """A message when ``part`` does not take the stub's ``keyword`` argument (e.g. ``rng``)."""
        described = self.loaded_names().get(part)
        signature = found_signature(described)
        if signature is None or keyword is None or accepts_keyword(signature, keyword):
            return None
        return self._signature_message(part, described, f"no `{keyword}` parameter")

    def _signature_message(self, part: str, described: Mapping[str, Any] | None, why: str) -> str:
        text = ((described or {}).get("signature") or {}).get("text") or "?"
        return (
            f"`{part}` is not declared as the stub declares it ({why}). The grader expected "
            f"`{self.assignment.stub(part)}`; your notebook defines `{text}`. Keep the stub's "
            "parameters: the grader passes them by these names."
        )

    def _bind(
        self, part: str, args: tuple | list, kwargs: dict[str, Any], *, optional: tuple = ()
    ) -> dict[str, Any]:
        """Check that the learner's ``part`` accepts this call (Incorrect naming the stub's
        signature otherwise); keyword arguments in ``optional`` that it does not take are
        dropped, so the properties that do not need them can still be checked."""
        described = self.loaded_names().get(part)
        signature = found_signature(described)
        if signature is None:
            return kwargs
        kwargs = {
            k: v for k, v in kwargs.items() if k not in optional or accepts_keyword(signature, k)
        }
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise Incorrect(self._signature_message(part, described, str(error))) from None
        return kwargs

    def probe(
        self,
        op: str,
        args: dict[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        doing: str,
        cache_key: str | None = None,
        on_message: Callable | None = None,
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
            error = LearnerError(describe_failure(failure, doing, self.causes))
            if key is not None:
                self._cache[key] = error
            raise error from None
        if key is not None:
            self._cache[key] = value
        return value

    def call(
        self, name: str, *args: Any, seed: int | None = None, sample: int = 0, **kwargs: Any
    ) -> Any:
        """Call a graded function; ``seed`` is passed as its ``rng`` argument (a new Generator).

        A function without the stub's ``rng`` parameter is called without it (checks that need
        it ask :meth:`signature_problem`); any other argument it cannot take is an Incorrect
        that quotes the stub's signature.
        """
        self.require(name)
        probe_kwargs = dict(kwargs)
        if seed is not None:
            probe_kwargs["rng"] = None  # a placeholder: the worker makes the Generator
        probe_kwargs = self._bind(name, args, probe_kwargs, optional=("rng",))
        with_rng = probe_kwargs.pop("rng", "absent") is None
        tree, arrays = wire.pack({"args": list(args), "kwargs": probe_kwargs})
        request = {"name": name, "args": tree["args"], "kwargs": tree["kwargs"], "sample": sample}
        if seed is not None:
            request["seed"] = seed
            if with_rng:
                request["rng_arg"] = "rng"
            # Every seeded call runs: a cached reply would make two calls with one seed agree
            # even for code that ignores its rng (the determinism checks compare such calls).
            self._seeded_calls += 1
            request["call"] = self._seeded_calls
        return self.probe("call", request, arrays, doing=f"running {name}()")

    def call_returning_args(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a graded function and return its positional arguments as they are afterwards."""
        self.require(name)
        kwargs = self._bind(name, args, kwargs)
        tree, arrays = wire.pack({"args": list(args), "kwargs": kwargs})
        request = {
            "name": name,
            "args": tree["args"],
            "kwargs": tree["kwargs"],
            "return_args": True,
        }
        value = self.probe("call", request, arrays, doing=f"running {name}()")
        return value["args"] if isinstance(value, dict) and "args" in value else []

    def _named(self, name: str | None, kind: PartKind) -> str:
        """``name``, or the assignment's graded part of ``kind``."""
        return name or self.assignment.part_of_kind(kind)

    def probe_images(self) -> np.ndarray:
        """The inputs every structural probe of the model runs on (the ``model_input`` hook)."""
        return probe_images(tuple(self.assignment.hook("model_input")))

    def metric(
        self, steps: list[tuple], *, graph: bool = False, cls: str | None = None
    ) -> dict[str, Any]:
        """Drive the metric class ``cls`` (default: the assignment's metric part) through steps:
        ("update", y_true, y_pred), ("result",), ("reset",)."""
        cls = self._named(cls, PartKind.METRIC)
        self.require(cls)
        arrays: dict[str, np.ndarray] = {}
        script = []
        for step in steps:
            if step[0] == "update":
                names = [f"s{len(arrays)}", f"s{len(arrays) + 1}"]
                arrays[names[0]] = np.asarray(step[1], np.float32)
                arrays[names[1]] = np.asarray(step[2], np.float32)
                script.append({"op": "update", "y_true": names[0], "y_pred": names[1]})
            else:
                script.append({"op": step[0]})
        return self.probe(
            "metric",
            {"class": cls, "steps": script, "graph": graph},
            arrays,
            doing=f"using your {cls} metric",
        )

    def model(
        self, images: np.ndarray | None = None, seed: int = 0, *, factory: str | None = None
    ) -> dict[str, Any]:
        """Build the learner's model with ``factory`` (default: the assignment's model part) and
        describe it, with its predictions on ``images`` (by default :meth:`probe_images`, so that
        every check, and :meth:`model_audit`, judges one build: its config and its predictions
        come from the same model)."""
        factory = self._named(factory, PartKind.MODEL)
        self.require(factory)
        arrays = {"images": self.probe_images() if images is None else images}
        return self.probe(
            "model",
            {"factory": factory, "seed": seed},
            arrays,
            doing=f"building your model with {factory}()",
        )

    def model_audit(self) -> ModelAudit:
        """The model rebuilt in this process from its Keras config (see ``grader.checking.model_audit``).

        Cached. Raises :class:`Incorrect` when the config cannot be rebuilt safely (custom layers,
        Lambda layers, not a Keras model) and LearnerError/NotAttempted as :meth:`model` does.
        """
        cached = self._cache.get("model_audit")
        if cached is None:
            info = self.model()
            try:
                cached = audit_config(info.get("config_json") if isinstance(info, dict) else None)
            except ModelAuditError as error:
                notes = info.get("notes") if isinstance(info, dict) else None
                why = [n for n in notes or [] if isinstance(n, str) and n.startswith("config:")]
                cached = Incorrect(error.message + (f" ({why[0]})" if why else ""))
            self._cache["model_audit"] = cached
        if isinstance(cached, Incorrect):
            raise cached
        return cached

    def callback(
        self,
        x: np.ndarray,
        targets: dict[str, np.ndarray],
        *,
        epochs: int,
        steps: int,
        kwargs: dict | None = None,
        cls: str | None = None,
        factory: str | None = None,
    ) -> dict[str, Any]:
        """Fit with the learner's callback class ``cls``: on their model when ``factory()``
        works, else on the assignment's stand-in model (its ``stand_in`` hook: the callback is
        graded on its own). Keyword arguments the class does not take are left out and listed
        under ``dropped_kwargs``. By default, the assignment's callback and model parts."""
        cls = self._named(cls, PartKind.CALLBACK)
        factory = self._named(factory, PartKind.MODEL)
        self.require(cls)
        stand_in = self.assignment.hook("stand_in")
        wanted = dict(kwargs or {})
        given = self._bind(cls, (), wanted, optional=tuple(wanted))
        tree, arrays = wire.pack(given)
        arrays.update({"x": x, **targets})
        args = {
            "class": cls,
            "factory": factory,
            "targets": list(targets),
            "stand_in": stand_in() if stand_in else None,
            "epochs": epochs,
            "steps": steps,
            "kwargs": tree,
            "seed": 0,
        }
        report = self.probe("callback", args, arrays, doing=f"training with your {cls} callback")
        dropped = sorted(set(wanted) - set(given))
        if dropped and isinstance(report, dict):
            report = {
                **report,
                "dropped_kwargs": dropped,
                "signature_problem": self._signature_message(
                    cls,
                    self.loaded_names().get(cls),
                    "its __init__ does not take " + ", ".join(f"`{k}`" for k in dropped),
                ),
            }
        return report

    def train(
        self,
        batches: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]],
        test_images: np.ndarray,
        *,
        epochs: int,
        steps_per_epoch: int,
        seed: int,
        factory: str | None = None,
        schedule: str | None = None,
    ) -> dict[str, Any]:
        """Exactly ``epochs x steps_per_epoch`` steps on batches made here (no time cut-off) of
        the model ``factory()`` builds, with the learning-rate ``schedule`` when the learner
        defines it; the worker gets the test images without labels. By default, the
        assignment's model part and its schedule part, if it has one."""
        factory = self._named(factory, PartKind.MODEL)
        if schedule is None and any(p.kind == PartKind.SCHEDULE for p in self.assignment.parts):
            schedule = self.assignment.part_of_kind(PartKind.SCHEDULE)
        self.require(factory)

        def answer(header: dict[str, Any], _: dict) -> tuple[dict, dict] | None:
            if header.get("need") != "batch":
                return None
            images, targets = batches(int(header.get("index", 0)))
            return {"ok": True}, {"images": images, **targets}

        args = {
            "factory": factory,
            "schedule": schedule,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "seed": seed,
        }
        return self.probe(
            "train",
            args,
            {"test_images": test_images},
            doing="training your model",
            cache_key=f"train:{factory}:{schedule}:{epochs}:{steps_per_epoch}:{seed}",
            on_message=answer,
        )


class InProcessSubmission(Submission):
    """Self-check: the worker's probes run here, over the learner's namespace."""

    def __init__(
        self,
        namespace: dict[str, Any],
        ingested: IngestedNotebook | None = None,
        assignment: Assignment | None = None,
    ) -> None:
        super().__init__(ingested, assignment)
        from grader import worker

        self._worker = worker
        module = types.ModuleType(worker.LEARNER_MODULE)
        module.__dict__.update(namespace)
        self._module = module

    def _request(self, op, args, arrays, on_message=None):
        worker = self._worker
        worker.STATE.module = self._module
        if op == "load":
            names = {
                name: worker._describe(self._module.__dict__[name])
                if name in self._module.__dict__
                else {"kind": "missing"}
                for name in self.assignment.part_names
            }
            return {"names": names}
        arrays = {name: array.copy() for name, array in arrays.items()}  # as if sent: no aliasing
        try:
            header, reply_arrays = worker.OPS[op](args, arrays, None)
        except worker.LearnerFailure as failure:
            raise ProbeFailure(failure.kind, failure.message, failure.tb) from None
        except Exception as error:  # a bad reply or our own bug: report, don't crash the notebook
            raise ProbeFailure(FailureKind.PROTOCOL, f"{type(error).__name__}: {error}") from None
        return wire.resolve(header.get("result"), reply_arrays)
