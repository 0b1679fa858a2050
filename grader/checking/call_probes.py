"""The probes of function parts: call a graded function with data arguments, once, once per
seed, or several times sharing one Generator; and see its arguments after the call.

Why a module of its own: the seeding rules live here (a seed becomes a fresh ``rng`` Generator in
the worker; seeded calls are never cached, so two calls with one seed really run twice).
:class:`CallProbes` is mixed into :class:`~grader.checking.submission.Submission`, whose
``require``, ``probe`` and ``_bind`` it uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import wire

#: Calls per request of :meth:`CallProbes.call_each` (the worker's ``MAX_CALLS`` is the limit):
#: each result's numpy values are arrays on the wire (an image, and numpy scalars too), and a
#: reply carries at most ``wire.MAX_ARRAYS``; 40 calls leave room for six arrays each.
CALLS_PER_REQUEST = 40


class CallProbes:
    """Probes of function parts (a mixin of ``Submission``)."""

    _seeded_calls = 0

    def call(
        self,
        name: str,
        *args: Any,
        seed: int | None = None,
        sample: int = 0,
        typed: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call a graded function; ``seed`` is passed as its ``rng`` argument (a new Generator).

        A function without the stub's ``rng`` parameter is called without it (checks that need
        it ask :meth:`signature_problem`); any other argument it cannot take is an Incorrect
        that quotes the stub's signature. ``typed``: the reply is ``{"value": ..., "type":
        "module.qualname"}`` (the wire makes numpy scalars, tensors and arrays all arrays).
        """
        request, arrays = self._call_request(name, args, kwargs, seed, sample, typed)
        return self.probe("call", request, arrays, doing=f"running {name}()", part=name)

    def call_each(
        self, name: str, seeds: list[int], *args: Any, typed: bool = False, **kwargs: Any
    ) -> list[Any]:
        """One call per seed, each with a new Generator of that seed as its ``rng``; the
        results in order (a few requests, not one per seed)."""
        results: list[Any] = []
        for start in range(0, len(seeds), CALLS_PER_REQUEST):
            chunk = [int(s) for s in seeds[start : start + CALLS_PER_REQUEST]]
            request, arrays = self._call_request(name, args, kwargs, chunk[0], 0, typed)
            request["seeds"] = chunk
            results.extend(
                self.probe("call", request, arrays, doing=f"running {name}()", part=name)
            )
        return results

    def call_shared(
        self, name: str, count: int, seed: int, *args: Any, typed: bool = False, **kwargs: Any
    ) -> list[Any]:
        """``count`` calls sharing one Generator of ``seed`` as their ``rng``, as a loop in the
        learner's own code would call the function; the results in order."""
        request, arrays = self._call_request(name, args, kwargs, seed, 0, typed)
        request["repeat"] = int(count)
        return self.probe("call", request, arrays, doing=f"running {name}()", part=name)

    def _call_request(
        self,
        name: str,
        args: tuple | list,
        kwargs: dict[str, Any],
        seed: int | None,
        sample: int,
        typed: bool,
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.require(name)
        probe_kwargs = dict(kwargs)
        if seed is not None:
            probe_kwargs["rng"] = None  # a placeholder: the worker makes the Generator
        probe_kwargs = self._bind(name, args, probe_kwargs, optional=("rng",))
        with_rng = seed is not None and probe_kwargs.pop("rng", "absent") is None
        tree, arrays = wire.pack({"args": list(args), "kwargs": probe_kwargs})
        request = {"name": name, "args": tree["args"], "kwargs": tree["kwargs"], "sample": sample}
        if typed:
            request["typed"] = True
        if seed is not None:
            request["seed"] = seed
            if with_rng:
                request["rng_arg"] = "rng"
            # Every seeded call runs: a cached reply would make two calls with one seed agree
            # even for code that ignores its rng (the determinism checks compare such calls).
            self._seeded_calls += 1
            request["call"] = self._seeded_calls
        return request, arrays

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
        value = self.probe("call", request, arrays, doing=f"running {name}()", part=name)
        return value["args"] if isinstance(value, dict) and "args" in value else []
