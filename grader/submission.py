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
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader import wire
from grader.check_api import LearnerError, NotAttempted
from grader.notebook import GRADED_PARTS, IngestedNotebook

# How long each probe may take, in seconds (the worker is restarted after a timeout).
TIMEOUTS = {"call": 30.0, "metric": 60.0, "model": 90.0, "callback": 120.0, "train": 240.0}


class ProbeFailure(Exception):
    """A probe produced no data; ``kind`` as in ``grader.sandbox.ProbeError``."""

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.traceback = kind, message, traceback


#: Known causes of a learner exception, by a pattern of its text: (pattern, what to change).
#: Most are idioms of the original guided project (TF 2.4, Keras 2) that Keras 3 rejects.
KNOWN_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), hint)
    for pattern, hint in (
        (
            r"SymbolicTensor|is out of scope and cannot be used here|"
            r"tf\.function.*(create|capture)|Tensor\.op is undefined|EagerTensor",
            "your metric returns (or keeps) a tensor computed in update_state(). Keep the running "
            "totals in variables made in __init__ with self.add_variable(shape=(), "
            'initializer="zeros", name=...), add to them with assign_add() in update_state(), '
            "compute the value from them in result(), and zero them with assign(0.0) in "
            "reset_state().",
        ),
        (
            r"add new elements of state|add_weight.*reset|reset_state.*add_weight",
            "reset_state() must zero the existing variables (self.total.assign(0.0)), not create "
            "new ones with add_weight: Keras 3 does not allow new state after building.",
        ),
        (
            r"fit_generator",
            "model.fit_generator() was removed in Keras 3: write model.fit(generator, "
            "steps_per_epoch=...).",
        ),
        (
            r"set_value|get_value",
            "keras.backend.set_value/get_value were removed in Keras 3: write "
            "model.optimizer.learning_rate.assign(value), or return the new rate from "
            "lr_schedule(epoch, lr).",
        ),
        (
            r"unexpected keyword argument '(workers|use_multiprocessing|max_queue_size)'|"
            r"not recognized.*(workers|use_multiprocessing)",
            "fit() no longer takes workers=, use_multiprocessing= or max_queue_size= in Keras 3: "
            "remove them.",
        ),
        (
            r"not recognized: \{'lr'|has no attribute 'lr'|unexpected keyword argument 'lr'",
            "Keras 3 optimizers take learning_rate=, not lr= (Adam(learning_rate=1e-3); "
            "model.optimizer.learning_rate).",
        ),
        (
            r"unexpected keyword argument 'rng'",
            "the grader calls the function with rng=<seed>, as the notebook's stub does: keep the "
            "stub's signature (def create_example(rng=None), def data_generator(batch_size=16, "
            "rng=None)), start with rng = np.random.default_rng(rng) and draw every random "
            "number from rng.",
        ),
        (
            r"__init__\(\) got an unexpected keyword argument '(test_data|num_images|show)'",
            "keep the stub's def __init__(self, test_data=None, num_images=6, show=True) in "
            "ShowTestImages: the grader passes its own test batch and show=False.",
        ),
        (
            r"No such file or directory.*\.png|\.png.*No such file",
            "the grader has no emoji PNG files: use the course's emoji_tiles[class_id] (a 72x72x3 "
            "uint8 tile per class, made in the set-up cell).",
        ),
        (
            r"len\(pred_coords\)|pred_coords.*NoneType|NoneType.*pred_coords",
            "the grader calls plot_bounding_box(image, gt_coords, pred_coords=None, norm=False) "
            "as the stub does: with no prediction pred_coords is None (not []), so test "
            "`if pred_coords is not None:`.",
        ),
        (
            r"KeyError: '(image|file|name)'",
            "if a loop in your notebook fills this dict, the grader did not run it (only imports, "
            "functions, classes and constants are kept): use the course's emoji_tiles[class_id].",
        ),
    )
)
_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.+@-]+){2,}/?")  # not a URL's //host/path
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def scrub(text: str) -> str:
    """No host path (venv, scratch folder, home) and no terminal colour code in a message."""
    text = _ANSI.sub("", text)
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def known_cause(text: str) -> str | None:
    """What to change, when a known pattern explains the error text."""
    return next((hint for pattern, hint in KNOWN_CAUSES if pattern.search(text)), None)


def describe_failure(failure: ProbeFailure, doing: str) -> str:
    """The learner's message for a probe that produced no data.

    A learner exception is shown as itself with the learner's cell and line (the worker keeps only
    their frames) and a hint when a known cause explains it. A reply the grader could not read
    (``protocol``) carries the worker's own traceback: that is never shown.
    """
    message = scrub(failure.message)
    called = re.match(r"calling (\w+)\(\): ", message)
    if called and f"{called.group(1)}(" in doing:  # "while running f(): calling f(): ..."
        message = message[called.end() :]
    what = {
        "timeout": f"Your code took too long while {doing} and was stopped.",
        "crashed": f"Your code crashed the grader's worker while {doing}: {message}",
        "protocol": (
            f"The grader failed while {doing} ({message}); this is not a finding about your "
            "code: tell your instructor."
            if message.startswith("worker failed on")  # the worker's own code raised
            else f"What your code returned while {doing} could not be read: {message}"
        ),
        "load_error": f"Your notebook's code could not be loaded: {message}",
    }.get(failure.kind, f"Your code raised an error while {doing}: {message}")
    shown = failure.traceback if failure.kind in ("learner_error", "load_error") else ""
    if shown:
        what += "\n" + scrub(shown).strip()[-1500:]
    hint = known_cause(f"{failure.message}\n{shown}")
    if hint and failure.kind != "timeout":
        what += "\nHint: " + hint
    return what


class Submission:
    """Probe API used by the checks. Subclasses provide :meth:`_request`."""

    def __init__(self, ingested: IngestedNotebook | None) -> None:
        self.ingested = ingested
        self.artifacts: dict[str, Any] = {}
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
            # Every seeded call runs: a cached reply would make two calls with one seed agree
            # even for code that ignores its rng (the determinism checks compare such calls).
            self._seeded_calls += 1
            request.update(seed=seed, rng_arg="rng", call=self._seeded_calls)
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
        seconds: float,
        seed: int,
    ) -> dict[str, Any]:
        """Budgeted training on batches made here; the worker gets test images without labels."""
        self.require("create_model")

        def answer(header: dict[str, Any], _: dict) -> tuple[dict, dict] | None:
            if header.get("need") != "batch":
                return None
            images, targets = batches(int(header.get("index", 0)))
            return {"ok": True}, {"images": images, **targets}

        args = {
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "seconds": seconds,
            "seed": seed,
        }
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
