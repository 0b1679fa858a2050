"""Probes that load the learner's code and call its functions.

``load`` execs the learner source in a fresh module (written under the scratch folder so that
tracebacks have lines to show) and describes each name the request lists (the graded parts, which
only the trusted side knows): a class, a function with its signature, or a value. ``call`` calls a graded function with data arguments under a per-call seed
and returns the encoded result (a generator is sampled). ``ping`` and ``import`` serve the
sandbox's start-up and timing checks.
"""

from __future__ import annotations

import inspect
import linecache
import os
import sys
import tempfile
import time
import types
from typing import Any

import numpy as np

from grader import wire

from .channel import Channel
from .encoding import Encoder, _qualname
from .state import (
    LEARNER_MODULE,
    MAX_REPR,
    STATE,
    BadRequest,
    LearnerFailure,
    _graded,
    _isinstance,
    _keras,
    _len,
    _restore,
    _scratch,
    _seed_everything,
)
from .tracebacks import _exc_message, _learner_trace, learner_code

#: The folder of the learner's source in the worker's scratch folder is this prefix and random
#: letters, made with mkdtemp's exclusivity: never a folder that was there before.
LEARNER_FOLDER_PREFIX = "learner-"


def _signature(obj: Any) -> dict[str, Any] | None:
    """The call signature as data: the trusted side checks arguments against it before a call
    and names what the learner wrote when it differs from the stub's."""
    try:
        sig = inspect.signature(obj)
        params = [
            [str(p.name), p.kind.name, p.default is not inspect.Parameter.empty]
            for p in sig.parameters.values()
        ]
        text = f"{getattr(obj, '__name__', '?')}{sig}"
    except BaseException:  # builtins without a signature, hostile __signature__
        return None
    if not _isinstance(text, str):
        return None
    text = str.__str__(text)
    return {
        "text": text if _len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "...",
        "params": params,
    }


def _describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        bases = [f"{c.__module__}.{c.__qualname__}" for c in obj.__mro__[1:]]
        return {"kind": "class", "bases": bases, "signature": _signature(obj)}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismethod(obj):
        signature = _signature(obj)
        params = [p[0] for p in signature["params"]] if signature else None
        return {"kind": "function", "params": params, "signature": signature}
    if callable(obj):
        return {"kind": "callable", "type": _qualname(obj), "signature": _signature(obj)}
    return {"kind": "value", "type": _qualname(obj)}


# --------------------------------------------------------------------------------------------
# Probes: each returns (header, arrays)


def op_ping(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """The worker is up (the sandbox asks this before it sends the learner's code) and where it
    keeps its own files (the tests check that no host path is among them)."""
    paths = {
        "home": os.environ.get("HOME", ""),
        "scratch": _scratch(),
        "cwd": os.getcwd(),
        "copy": os.path.dirname(os.path.dirname(os.path.abspath(wire.__file__))),
        "learner_file": STATE.filename if STATE.module is not None else "",
    }
    return {"result": {"pid": os.getpid(), "uid": os.getuid(), "paths": paths}}, {}


def op_import(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Import named modules (used to measure start-up costs); TF goes through _keras()."""
    took = {}
    for name in args.get("modules", []):
        t0 = time.perf_counter()
        if name in ("tensorflow", "keras"):
            _keras()
        else:
            __import__(str(name))
        took[name] = time.perf_counter() - t0
    return {"result": took}, {}


def op_load(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Exec the learner source in a fresh module and describe the names the request lists."""
    names = args.get("names")
    if not _isinstance(names, list) or not all(_isinstance(n, str) for n in names):
        raise BadRequest("load needs 'names': a list of the names to describe")
    if "source" not in arrays:
        raise BadRequest("load needs a 'source' array (UTF-8 bytes)")
    try:
        source = arrays["source"].tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LearnerFailure("load_error", f"the source is not UTF-8: {exc}", "") from None
    # The worker's own step, before any learner code: a failure here (an OSError) is the
    # grader's, and the request loop reports it as such (grader/worker/main.py).
    folder = tempfile.mkdtemp(prefix=LEARNER_FOLDER_PREFIX, dir=_scratch())
    filename = os.path.join(folder, f"{LEARNER_MODULE}.py")
    with open(filename, "x", encoding="utf-8") as fh:
        fh.write(source)
    STATE.filename = filename
    linecache.cache[filename] = (
        _len(source),
        None,
        source.splitlines(keepends=True),
        filename,
    )
    module = types.ModuleType(LEARNER_MODULE)
    module.__file__ = filename
    sys.modules[LEARNER_MODULE] = module
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, ValueError) as exc:
        raise LearnerFailure("load_error", _exc_message(exc), _learner_trace(exc)) from None
    t0 = time.perf_counter()
    try:
        with learner_code("while loading the code"):
            exec(code, module.__dict__)
    except LearnerFailure as failure:
        raise LearnerFailure("load_error", failure.message, failure.tb) from None
    STATE.module = module
    found = {}
    for name in names:
        if name in module.__dict__:
            found[name] = _describe(module.__dict__[name])
        else:
            found[name] = {"kind": "missing"}
    return {"result": {"names": found, "seconds": time.perf_counter() - t0}}, {}


#: At most this many calls in one ``call`` request (``seeds`` or ``repeat``): each result's arrays
#: count against the wire's array cap, and a request must stay one short round trip.
MAX_CALLS = 200


def _one_call(fn: Any, args: dict, arrays: dict, rng: Any, seed: Any) -> Any:
    """One call of ``fn`` on fresh copies of the request's arguments (a learner function that
    changes its arguments must not change the next call's)."""
    copies = {name: np.array(array, copy=True) for name, array in arrays.items()}
    call_args = wire.resolve(args.get("args", []), copies)
    call_kwargs = wire.resolve(args.get("kwargs", {}), copies)
    if not _isinstance(call_args, list) or not _isinstance(call_kwargs, dict):
        raise BadRequest("args must be a list and kwargs an object")
    if args.get("rng_arg"):
        call_kwargs[args["rng_arg"]] = rng
    _seed_everything(seed)
    value = fn(*call_args, **call_kwargs)
    _restore()
    if args.get("return_args"):  # the arguments afterwards: did the call mutate them?
        value = {"result": value, "args": call_args}
    return value


def _typed(value: Any, encoder: Encoder, typed: bool) -> Any:
    """The encoded value; with ``typed``, also its type's name (the wire turns numpy scalars,
    tensors and arrays alike into arrays, but some APIs accept only some of them)."""
    tree = encoder.encode(value)
    return {"value": tree, "type": _qualname(value)} if typed else tree


def op_call(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Call a learner function with data arguments; return its encoded result.

    ``seed`` seeds the call (its ``rng_arg`` gets a new Generator of that seed). ``seeds`` makes
    one call per seed, each with its own Generator; ``repeat`` makes that many calls sharing one
    Generator of ``seed`` (as a loop over the function would). Both return a list.
    """
    name = args.get("name")
    fn = _graded(name)
    seeds, repeat = args.get("seeds"), args.get("repeat")
    typed = bool(args.get("typed"))
    if seeds is not None and (
        not _isinstance(seeds, list) or not all(_isinstance(s, int) for s in seeds)
    ):
        raise BadRequest("'seeds' must be a list of integers")
    if repeat is not None and (not _isinstance(repeat, int) or repeat < 1):
        raise BadRequest("'repeat' must be a positive integer")
    count = _len(seeds) if seeds is not None else (repeat or 1)
    if count > MAX_CALLS:
        raise BadRequest(f"at most {MAX_CALLS} calls per request")
    encoder = Encoder(sample=int(args.get("sample", 0) or 0))
    t0 = time.perf_counter()
    seed = args.get("seed")
    shared = np.random.default_rng(seed) if args.get("rng_arg") else None
    results = []
    with learner_code(f"calling {name}()"):
        for index in range(count):
            this_seed = seeds[index] if seeds is not None else seed
            rng = np.random.default_rng(this_seed) if seeds is not None else shared
            value = _one_call(fn, args, arrays, rng, this_seed)
            results.append(_typed(value, encoder, typed))
    tree = results if seeds is not None or repeat is not None else results[0]
    return {"result": tree, "seconds": time.perf_counter() - t0}, encoder.arrays
