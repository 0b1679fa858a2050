"""Encoding learner values as data: a JSON tree plus numpy arrays, never an object.

A probe's result leaves the worker only as what :class:`Encoder` makes of it: plain numbers and
strings, lists and dicts of them, arrays (tensors and PIL images converted), a short repr for
anything else, and a sample of a generator's first items. Sizes and depth are capped so a hostile
value cannot grow the reply past what the wire carries.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import numpy as np

from grader import wire

from .state import MAX_DEPTH, MAX_NODES, MAX_REPR, MAX_STR, LearnerFailure, _isinstance, _len, _type
from .tracebacks import _exc_message, _learner_trace


def _qualname(obj: Any) -> str:
    t = _type(obj)
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"


def _short_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except BaseException as exc:  # a hostile __repr__ must not break the probe
        text = f"<repr failed: {_type(exc).__name__}>"
    if not _isinstance(text, str):
        return "<repr returned a non-string>"
    text = str.__str__(text)
    return text if _len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _as_numpy(obj: Any) -> np.ndarray | None:
    """Tensors, variables and PIL images as numpy arrays; None when obj is none of those."""
    module = getattr(_type(obj), "__module__", "") or ""
    if module.startswith(("tensorflow", "keras")) and hasattr(obj, "numpy"):
        return np.asarray(obj.numpy())
    pil = sys.modules.get("PIL.Image")
    if module.startswith("PIL.") and pil is not None and _isinstance(obj, pil.Image):
        return np.asarray(obj)
    return None


class Encoder:
    """Learner value -> JSON tree + arrays; never passes an object through."""

    def __init__(self, sample: int = 0, prefix: str = "a") -> None:
        self.sample = max(0, int(sample))
        self.prefix = prefix
        self.arrays: dict[str, np.ndarray] = {}
        self.nodes = 0

    def _array(self, arr: np.ndarray, **extra: Any) -> dict[str, Any]:
        arr = np.array(arr, copy=True, subok=False)
        try:
            wire.check_dtype(arr.dtype)
        except wire.WireError:
            return {
                "$type": "numpy.ndarray",
                "repr": _short_repr(arr),
                "dtype": str(arr.dtype),
                "shape": list(arr.shape),
            }
        if _len(self.arrays) >= wire.MAX_ARRAYS - 8 or arr.nbytes > wire.MAX_ARRAY_BYTES:
            return {
                "$type": "numpy.ndarray",
                "repr": "too many or too large arrays",
                "dtype": str(arr.dtype),
                "shape": list(arr.shape),
            }
        name = f"{self.prefix}{_len(self.arrays)}"
        self.arrays[name] = arr
        return {"$array": name, **extra}

    def _sample(self, iterator: Any, depth: int) -> tuple[list[Any], list[int]]:
        """The first ``sample`` items, and the indices of items whose arrays changed while later
        items were drawn (a generator that refills one buffer: whoever keeps a batch sees it
        change). An exception raised by the learner's generator is raised as itself (at its
        line), never turned into a short or empty sample."""
        items, kept = [], []
        for index in range(self.sample):
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                raise LearnerFailure(
                    "learner_error",
                    f"the generator raised on item {index + 1}: {_exc_message(exc)}",
                    _learner_trace(exc),
                ) from None
            items.append(self.encode(item, depth + 1))
            kept.append([(a, np.array(a, copy=True)) for a in _arrays_in(item)])
        changed = [
            index
            for index, arrays in enumerate(kept[:-1])
            if any(
                a.shape != copy.shape or not np.array_equal(a, copy, equal_nan=a.dtype.kind == "f")
                for a, copy in arrays
            )
        ]
        return items, changed

    def encode(self, obj: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            return {"$type": _qualname(obj), "repr": "value nested too deep or too large"}
        t = _type(obj)
        if obj is None or t is bool:
            return obj
        if t is int:
            return obj if -(2**63) <= obj < 2**63 else {"$type": "int", "repr": _short_repr(obj)}
        if t is float:
            return obj
        if t is str:
            return obj if _len(obj) <= MAX_STR else obj[:MAX_STR] + "...[truncated]"
        if _isinstance(obj, np.generic | np.ndarray):
            return self._array(np.asarray(obj))
        if _isinstance(obj, bool | int) and not _isinstance(obj, np.generic):
            # int subclasses (incl. hostile ones): the plain value only, via int's own repr.
            return int(int.__repr__(obj))
        if _isinstance(obj, float):
            return float(float.__repr__(obj))
        if _isinstance(obj, str):
            return self.encode(str.__str__(obj), depth)
        if _isinstance(obj, list | tuple):
            return [self.encode(x, depth + 1) for x in list.__iter__(list(obj))]
        if _isinstance(obj, dict):
            items = list(dict.items(obj))
            if all(_type(k) is str and not k.startswith("$") for k, _ in items):
                return {k: self.encode(v, depth + 1) for k, v in items}
            return {
                "$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in items]
            }
        arr = _as_numpy(obj)
        if arr is not None:
            extra = {"kind": _qualname(obj)} if arr.dtype.kind in "biuf" else {}
            return self._array(arr, **extra)
        if self.sample and (inspect.isgenerator(obj) or _is_iterator(obj)):
            items, changed = self._sample(obj, depth)
            return {"$iter": items, "type": _qualname(obj), "changed": changed}
        return {"$type": _qualname(obj), "repr": _short_repr(obj)}


def history_floats(history: Any, notes: list[str]) -> dict[str, list[float]]:
    """A Keras ``History.history`` as plain floats. A value that is not a number came from the
    learner's metric (its ``result()``): that series is left out and ``notes`` names it, so the
    probe that trained (a callback, training) keeps its own verdict."""
    out: dict[str, list[float]] = {}
    for key, values in dict(getattr(history, "history", history) or {}).items():
        try:
            out[str(key)] = [float(np.asarray(v)) for v in values]
        except Exception as exc:
            notes.append(
                f"the metric logged as `{key}` gave {_qualname(values[0]) if values else '?'}, "
                f"not a number ({_exc_message(exc)}): check your metric's result()"
            )
    return out


def _arrays_in(obj: Any, depth: int = 0) -> list[np.ndarray]:
    """The numpy arrays inside a yielded item (tuples, lists and dicts of them, a few levels)."""
    if _type(obj) is np.ndarray:
        return [obj]
    if depth > 3:
        return []
    if _type(obj) in (list, tuple):
        return [a for x in list(obj)[:16] for a in _arrays_in(x, depth + 1)]
    if _type(obj) is dict:
        return [a for x in list(dict.values(obj))[:16] for a in _arrays_in(x, depth + 1)]
    return []


def _is_iterator(obj: Any) -> bool:
    return hasattr(_type(obj), "__next__") and hasattr(_type(obj), "__iter__")
