"""What the checks talk to: a learner's submission, behind one interface with two implementations.

- ``grader.grade.SandboxedSubmission`` (grading): every call is a probe request to the sandboxed worker; only
  data comes back, and the verdict is computed here, in the trusted process.
- :class:`InProcessSubmission` (self-check): the same probes run in the learner's own process over
  their notebook's namespace. Fast and good enough for a learner checking their own work; never used
  for grades.

Replies are cached per request, so several checks can look at the same model or training run.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader import wire
from grader.check_api import Incorrect, LearnerError, NotAttempted
from grader.model_audit import ModelAudit, ModelAuditError, audit_config
from grader.notebook import GRADED_PARTS, IngestedNotebook

# The train probe's wall-clock limit, in seconds. Not a budget: training always runs its full step
# budget (grader/checks/hidden/test_training.py); this limit only ends a grading the machine could
# not finish, with status `timeout` (retried on rerun), never with fewer points. Measured with
# benchmarks/bench_grading.py at -j 1 on this 2-core machine: the reference's 1000 steps take 206 s
# with 2 threads and 328 s with 1 thread when it is quiet (4.8 / 3.1 steps/s), 308-822 s with
# 2 threads while other jobs kept the load average at 4-15. x4 for a loaded 2-core machine
# grading 2 at once: ~830 s (2 threads) / ~1310 s (1 thread); 3600 s is 2.7x-4.4x that, and
# leaves room for a model at the cost limit (test_training.MAX_MFLOPS_PER_EXAMPLE, 2.4x the
# reference). Override with $OBJLOC_TRAIN_TIMEOUT (seconds). The batch's per-submission
# timeout (grader.batch) must stay above this one.
TRAIN_TIMEOUT_ENV = "OBJLOC_TRAIN_TIMEOUT"
TRAIN_TIMEOUT = 3600.0

# How long each probe may take, in seconds (the worker is restarted after a timeout).
TIMEOUTS = {"call": 30.0, "metric": 60.0, "model": 90.0, "callback": 120.0, "train": TRAIN_TIMEOUT}


def probe_timeout(op: str) -> float:
    """The wall-clock limit of one probe; the train probe's can be set with $OBJLOC_TRAIN_TIMEOUT."""
    if op == "train" and os.environ.get(TRAIN_TIMEOUT_ENV):
        try:
            return max(1.0, float(os.environ[TRAIN_TIMEOUT_ENV]))
        except ValueError:
            raise ValueError(
                f"${TRAIN_TIMEOUT_ENV} should be a number of seconds, "
                f"not {os.environ[TRAIN_TIMEOUT_ENV]!r}"
            ) from None
    return TIMEOUTS.get(op, 60.0)


class ProbeFailure(Exception):
    """A probe produced no data; ``kind`` as in ``grader.sandbox.ProbeError``."""

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.traceback = kind, message, traceback


def describe_failure(failure: ProbeFailure, doing: str) -> str:
    what = {
        "timeout": f"Your code took too long while {doing} and was stopped.",
        "crashed": f"Your code crashed the grader's worker while {doing}: {failure.message}",
        "protocol": f"Your code returned something the grader could not read while {doing}: {failure.message}",
        "load_error": f"Your notebook's code could not be loaded: {failure.message}",
    }.get(failure.kind, f"Your code raised an error while {doing}: {failure.message}")
    if failure.traceback:
        what += "\n" + failure.traceback.strip()[-1500:]
    return what


class Submission:
    """Probe API used by the checks. Subclasses provide :meth:`_request`."""

    def __init__(self, ingested: IngestedNotebook | None) -> None:
        self.ingested = ingested
        self.artifacts: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}
        self._load: dict[str, Any] | None = None
        self._load_failure: ProbeFailure | None = None

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
            raise LearnerError(describe_failure(self._load_failure, "loading it"))
        return self._load["names"]

    def require(self, part: str) -> None:
        """Raise NotAttempted/LearnerError unless ``part`` exists, was attempted and loads."""
        info = self.ingested.parts.get(part) if self.ingested else None
        if self.ingested is not None and info is None:
            raise NotAttempted(
                f"`{part}` was not found in your notebook. Keep the graded cell's name."
            )
        if info is not None and not info.attempted:
            raise NotAttempted(
                f"`{part}` still raises NotImplementedError: replace the stub with your code."
            )
        names = self.loaded_names()
        if names.get(part, {}).get("kind", "missing") == "missing":
            raise NotAttempted(f"`{part}` is not defined after loading your code.")

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
            error = LearnerError(describe_failure(failure, doing))
            if key is not None:
                self._cache[key] = error
            raise error from None
        if key is not None:
            self._cache[key] = value
        return value

    def call(
        self, name: str, *args: Any, seed: int | None = None, sample: int = 0, **kwargs: Any
    ) -> Any:
        """Call a graded function; ``seed`` is passed as its ``rng`` argument (a new Generator)."""
        self.require(name)
        tree, arrays = wire.pack({"args": list(args), "kwargs": kwargs})
        request = {"name": name, "args": tree["args"], "kwargs": tree["kwargs"], "sample": sample}
        if seed is not None:
            request.update(seed=seed, rng_arg="rng")
        return self.probe("call", request, arrays, doing=f"running {name}()")

    def call_returning_args(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a graded function and return its positional arguments as they are afterwards."""
        self.require(name)
        tree, arrays = wire.pack({"args": list(args), "kwargs": kwargs})
        request = {
            "name": name,
            "args": tree["args"],
            "kwargs": tree["kwargs"],
            "return_args": True,
        }
        value = self.probe("call", request, arrays, doing=f"running {name}()")
        return value["args"] if isinstance(value, dict) and "args" in value else []

    def metric(self, steps: list[tuple], *, graph: bool = False) -> dict[str, Any]:
        """Drive ``IoU`` through steps: ("update", y_true, y_pred), ("result",), ("reset",)."""
        self.require("IoU")
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
            "metric", {"steps": script, "graph": graph}, arrays, doing="using your IoU metric"
        )

    def model(self, images: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
        self.require("create_model")
        arrays = {"images": images} if images is not None else {}
        return self.probe(
            "model", {"seed": seed}, arrays, doing="building your model with create_model()"
        )

    def model_audit(self) -> ModelAudit:
        """The model rebuilt in this process from its Keras config (see ``grader.model_audit``).

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
    ) -> dict[str, Any]:
        self.require("ShowTestImages")
        self.require("create_model")
        tree, arrays = wire.pack(kwargs or {})
        arrays.update({"x": x, **targets})
        args = {"epochs": epochs, "steps": steps, "kwargs": tree, "seed": 0}
        return self.probe(
            "callback", args, arrays, doing="training with your ShowTestImages callback"
        )

    def train(
        self,
        batches: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]],
        test_images: np.ndarray,
        *,
        epochs: int,
        steps_per_epoch: int,
        seed: int,
    ) -> dict[str, Any]:
        """Exactly ``epochs x steps_per_epoch`` steps on batches made here (no time cut-off); the
        worker gets the test images without labels."""
        self.require("create_model")

        def answer(header: dict[str, Any], _: dict) -> tuple[dict, dict] | None:
            if header.get("need") != "batch":
                return None
            images, targets = batches(int(header.get("index", 0)))
            return {"ok": True}, {"images": images, **targets}

        args = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "seed": seed}
        return self.probe(
            "train",
            args,
            {"test_images": test_images},
            doing="training your model",
            cache_key=f"train:{epochs}:{steps_per_epoch}:{seed}",
            on_message=answer,
        )


class InProcessSubmission(Submission):
    """Self-check: the worker's probes run here, over the learner's namespace."""

    def __init__(self, namespace: dict[str, Any], ingested: IngestedNotebook | None = None) -> None:
        super().__init__(ingested)
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
                for name in GRADED_PARTS
            }
            return {"names": names}
        arrays = {name: array.copy() for name, array in arrays.items()}  # as if sent: no aliasing
        try:
            header, reply_arrays = worker.OPS[op](args, arrays, None)
        except worker.LearnerFailure as failure:
            raise ProbeFailure(failure.kind, failure.message, failure.tb) from None
        except Exception as error:  # a bad reply or our own bug: report, don't crash the notebook
            raise ProbeFailure("protocol", f"{type(error).__name__}: {error}") from None
        return wire.resolve(header.get("result"), reply_arrays)
