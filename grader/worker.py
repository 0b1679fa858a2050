"""The sandboxed worker: loads the learner's source and answers probe requests with data only.

Runs inside the sandbox as an unprivileged user, started by ``grader.sandbox`` from a private copy
that holds only this file and ``grader/wire.py``; it imports nothing else from ``grader``, so the
reference solution and the hidden checks are not even on its path. Every answer is data
(JSON + numpy arrays via ``wire``): learner objects never leave this process, so an ``__eq__`` that
always returns True, a patched numpy or a forged exit code cannot reach the verdict.

TensorFlow/Keras and matplotlib are imported lazily, only by the probes that need them.

Usage (by the sandbox): ``python worker.py READ_FD WRITE_FD``.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import json
import linecache
import os
import random
import re
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

import numpy as np

# An editable install of the project would let `import grader.reference` reach the real tree
# (outside bwrap); only the private copy of grader/wire.py next to this file is meant to exist.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]

from grader.sandbox import wire  # noqa: E402 - after the meta_path clean-up above

LEARNER_MODULE = "submission"
# A copy of grader.notebook.GRADED_PARTS: the worker imports nothing from grader but wire (a test
# keeps the two equal).
GRADED_NAMES = (
    "create_example",
    "plot_bounding_box",
    "data_generator",
    "IoU",
    "create_model",
    "ShowTestImages",
    "lr_schedule",
)
MAX_TRACEBACK = 4000
MAX_REPR = 200
MAX_STR = 100_000
MAX_DEPTH = 24
MAX_NODES = 100_000

# Trusted references to builtins taken before learner code runs (learners may patch builtins).
_isinstance = builtins.isinstance
_type = builtins.type
_len = builtins.len
_BUILTINS = dict(builtins.__dict__)
_JSON = (json.dumps, json.loads)


def _restore() -> None:
    """Undo learner patches of builtins and json before the worker speaks on the wire.

    This is hygiene, not the security boundary: learner code owns this process and could forge
    any reply, but a reply is only data that the trusted side judges against its own reference.
    """
    for key, value in _BUILTINS.items():
        if builtins.__dict__.get(key) is not value:
            builtins.__dict__[key] = value
    json.dumps, json.loads = _JSON


class BadRequest(Exception):
    """The request itself is malformed (a trusted-side bug, not the learner's fault)."""


class LearnerFailure(Exception):
    """Learner code raised; carries the trimmed traceback text."""

    def __init__(self, kind: str, message: str, tb: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb


# --------------------------------------------------------------------------------------------
# Channel


class Channel:
    """The two protocol pipes; learner prints go to stdout/stderr, never here."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.read_exact = wire.fd_reader(rfd)

    def send(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
        _restore()
        wire.write_fd(self.wfd, wire.encode_message(header, arrays))

    def receive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        _restore()
        return wire.read_message(self.read_exact)

    def ask(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Send an intermediate message and wait for the trusted side's answer."""
        self.send({"kind": "ask", **header}, arrays)
        reply, reply_arrays = self.receive()
        if reply.get("kind") == "error":
            raise BadRequest(f"trusted side refused: {reply.get('message', '')}")
        return reply, reply_arrays

    def note(self, header: dict[str, Any]) -> None:
        """Send a progress message that needs no answer."""
        self.send({"kind": "note", **header})


# --------------------------------------------------------------------------------------------
# Encoding learner values as data


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

    def _sample(self, iterator: Any, depth: int) -> list[Any]:
        """The first ``sample`` items; an exception raised by the learner's generator is raised
        as itself (at its line), never turned into a short or empty sample."""
        items = []
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
        return items

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
            return {"$iter": self._sample(obj, depth), "type": _qualname(obj)}
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
                f"not a number ({_exc_message(exc)}): check your IoU metric's result()"
            )
    return out


def _is_iterator(obj: Any) -> bool:
    return hasattr(_type(obj), "__next__") and hasattr(_type(obj), "__iter__")


# --------------------------------------------------------------------------------------------
# Learner code


_CELL_MARK = re.compile(r"^# cell (\d+), line (\d+)$")
# Absolute paths (the scratch copy of the learner module, the venv, the host): never shown.
_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.+@-]+){2,}/?")  # not a URL's //host/path


def _cell_line(lineno: int | None) -> tuple[int, int] | None:
    """(cell, line in that cell) of a line of the assembled learner module, from the
    ``# cell N, line L`` marks that ingestion writes above each kept statement."""
    lines = linecache.getlines(STATE.filename)
    if not lineno or lineno > _len(lines):
        return None
    for index in range(lineno - 2, -1, -1):
        match = _CELL_MARK.match(lines[index].rstrip("\n"))
        if match:
            return int(match.group(1)), int(match.group(2)) + lineno - index - 2
    return None  # a hoisted import, or code before the first mark


def scrub(text: str) -> str:
    """Host paths out of a message: the learner module is "your notebook", others keep their
    file name only (``.../keras/src/trainer.py`` -> ``trainer.py``)."""
    text = text.replace(STATE.filename, "your notebook")
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _learner_trace(exc: BaseException) -> str:
    """The traceback restricted to the learner's frames, each named by notebook cell and line;
    no grader, library or host path is shown. The exception's own text is in the failure's
    message (``_exc_message``), so it is not repeated here."""
    try:
        te = traceback.TracebackException.from_exception(exc, limit=None, lookup_lines=True)
        lines = []
        for frame in te.stack:
            if frame.filename != STATE.filename:
                continue
            where = _cell_line(frame.lineno)
            place = f"cell {where[0]}, line {where[1]}" if where else f"line {frame.lineno}"
            code = (frame.line or "").strip()
            lines.append(f"  {place}, in {frame.name}\n" + (f"    {code}\n" if code else ""))
        head = "Traceback (your code only):\n" if lines else ""
        text = head + "".join(lines).rstrip("\n")
    except BaseException:
        text = f"{_type(exc).__name__}: <the exception could not be formatted>"
    if _len(text) > MAX_TRACEBACK:
        text = text[: MAX_TRACEBACK // 2] + "\n...[trimmed]...\n" + text[-MAX_TRACEBACK // 2 :]
    return text


_FRAME_LINE = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$')
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _clean_message(text: str) -> str:
    """An exception's text without the frames some libraries embed in it (TensorFlow's graph
    errors list their own call stack): the learner's frames become "cell N, line L", others go."""
    out: list[str] = []
    skip_code = False
    for line in _ANSI.sub("", text).splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            where = _cell_line(int(match.group(2))) if match.group(1) == STATE.filename else None
            skip_code = where is None
            if where:
                out.append(f"  cell {where[0]}, line {where[1]}, in {match.group(3)}")
            continue
        if skip_code and line.startswith("    "):
            continue
        skip_code = False
        out.append(line)
    return scrub("\n".join(out))


def _exc_message(exc: BaseException) -> str:
    try:
        text = _clean_message("".join(traceback.format_exception_only(exc)).strip())
    except BaseException:
        text = _type(exc).__name__
    return text if _len(text) <= 1000 else text[:997] + "..."


@contextlib.contextmanager
def learner_code(what: str):
    """Run learner code; any exception (even SystemExit) becomes a LearnerFailure."""
    try:
        yield
        _restore()
    except (LearnerFailure, BadRequest):
        _restore()
        raise
    except SystemExit as exc:
        _restore()
        raise LearnerFailure(
            "learner_error", f"{what}: the code called sys.exit({exc.code!r})", _learner_trace(exc)
        ) from None
    except BaseException as exc:
        _restore()
        raise LearnerFailure(
            "learner_error", f"{what}: {_exc_message(exc)}", _learner_trace(exc)
        ) from None


class State:
    def __init__(self) -> None:
        self.module: types.ModuleType | None = None
        self.filename = "<learner>"
        self.threads = int(os.environ.get("OBJLOC_THREADS", "0") or 0)
        self.calls = 0  # calls seeded so far: each gets its own global seed


STATE = State()


def _scratch() -> str:
    return os.environ.get("TMPDIR") or "/tmp"


def _keras() -> Any:
    """Import TensorFlow + Keras on first use, with the thread settings applied first."""
    import tensorflow as tf

    if STATE.threads:
        with contextlib.suppress(RuntimeError):  # already initialised by learner imports
            tf.config.threading.set_intra_op_parallelism_threads(STATE.threads)
            tf.config.threading.set_inter_op_parallelism_threads(STATE.threads)
    import keras

    return keras


def _seed_everything(seed: int | None) -> None:
    """Seed the global generators (random, np.random, Keras) with a value that is deterministic
    but distinct for every call, never the call's own ``rng`` seed: code that draws from
    ``np.random`` instead of its ``rng`` argument then gives different results for the same
    seed, which the determinism checks see, and grading stays reproducible."""
    STATE.calls += 1
    key = [STATE.calls] + ([abs(int(seed))] if _isinstance(seed, int) else [])
    mixed = int(np.random.SeedSequence(key).generate_state(1)[0])
    random.seed(mixed)
    np.random.seed(mixed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(mixed)


def _graded(name: str) -> Any:
    if STATE.module is None:
        raise BadRequest("no learner code loaded")
    if not _isinstance(name, str) or name not in STATE.module.__dict__:
        raise LearnerFailure("learner_error", f"`{name}` is not defined", "")
    return STATE.module.__dict__[name]


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
    return {"result": {"pid": os.getpid(), "uid": os.getuid()}}, {}


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
    """Exec the learner source in a fresh module and say which graded names exist."""
    if "source" not in arrays:
        raise BadRequest("load needs a 'source' array (UTF-8 bytes)")
    try:
        source = arrays["source"].tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LearnerFailure("load_error", f"the source is not UTF-8: {exc}", "") from None
    folder = os.path.join(_scratch(), "learner")
    os.makedirs(folder, exist_ok=True)
    filename = os.path.join(folder, f"{LEARNER_MODULE}.py")
    with open(filename, "w", encoding="utf-8") as fh:
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
    names = args.get("names") or list(GRADED_NAMES)
    found = {}
    for name in names:
        if name in module.__dict__:
            found[name] = _describe(module.__dict__[name])
        else:
            found[name] = {"kind": "missing"}
    return {"result": {"names": found, "seconds": time.perf_counter() - t0}}, {}


def op_call(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Call a learner function with data arguments; return its encoded result."""
    fn = _graded(args.get("name"))
    call_args = wire.resolve(args.get("args", []), arrays)
    call_kwargs = wire.resolve(args.get("kwargs", {}), arrays)
    if not _isinstance(call_args, list) or not _isinstance(call_kwargs, dict):
        raise BadRequest("args must be a list and kwargs an object")
    seed = args.get("seed")
    if args.get("rng_arg"):
        call_kwargs[args["rng_arg"]] = np.random.default_rng(seed)
    _seed_everything(seed)
    encoder = Encoder(sample=int(args.get("sample", 0) or 0))
    t0 = time.perf_counter()
    with learner_code(f"calling {args.get('name')}()"):
        value = fn(*call_args, **call_kwargs)
        _restore()
        if args.get("return_args"):  # the arguments afterwards: did the call mutate them?
            value = {"result": value, "args": call_args}
        tree = encoder.encode(value)
    return {"result": tree, "seconds": time.perf_counter() - t0}, encoder.arrays


def op_metric(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Drive a learner Metric through a script of update/result/reset steps."""
    keras = _keras()
    import tensorflow as tf

    cls = _graded(args.get("class", "IoU"))
    encoder = Encoder()
    with learner_code(f"creating {args.get('class', 'IoU')}()"):
        metric = cls(**dict(args.get("kwargs", {})))
    is_metric = _isinstance(metric, keras.metrics.Metric)
    graph = bool(args.get("graph"))
    update: Callable = metric.update_state
    result: Callable = metric.result
    if graph:
        update = tf.function(lambda a, b: metric.update_state(a, b))
        result = tf.function(lambda: metric.result())
    results = []
    for i, step in enumerate(args.get("steps", [])):
        kind = step.get("op")
        with learner_code(f"step {i} ({kind})"):
            if kind == "update":
                try:
                    y_true = tf.convert_to_tensor(arrays[step["y_true"]])
                    y_pred = tf.convert_to_tensor(arrays[step["y_pred"]])
                except KeyError as exc:
                    raise BadRequest(f"step {i}: missing array {exc}") from None
                update(y_true, y_pred)
            elif kind == "result":
                results.append(encoder.encode(result()))
            elif kind == "reset":
                metric.reset_state()
            else:
                raise BadRequest(f"step {i}: unknown op {kind!r}")
    return {"result": {"is_metric": is_metric, "results": results}}, encoder.arrays


def _name_of(obj: Any) -> Any:
    if obj is None or _isinstance(obj, str):
        return obj
    if _isinstance(obj, dict):
        config = obj.get("config")
        if _isinstance(config, dict) and _isinstance(config.get("name"), str):
            return config["name"]
        if _isinstance(config, str):
            return config
        return obj.get("class_name")
    name = getattr(obj, "name", None)
    if _isinstance(name, str):
        return name
    return getattr(obj, "__name__", None) or _type(obj).__name__


def _per_output(spec: Any, outputs: list[str], many: bool) -> dict[str, Any]:
    """Normalise a loss/metrics compile argument to {output name: name or [names]}."""

    def one(x: Any) -> Any:
        if many:
            if _isinstance(x, list | tuple):
                return [_name_of(v) for v in x]
            return [_name_of(x)] if x is not None else []
        return _name_of(x)

    if spec is None:
        return {}
    if _isinstance(spec, dict):
        return {str(k): one(v) for k, v in spec.items()}
    if _isinstance(spec, list | tuple):
        if many and all(not _isinstance(v, list | tuple | dict) for v in spec):
            return {o: one(list(spec)) for o in outputs}
        if _len(spec) == _len(outputs):
            return {o: one(v) for o, v in zip(outputs, spec, strict=True)}
        return {"*": one(list(spec))}
    return {o: one(spec) for o in outputs}


def _producing_layer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _activation_name(layer: Any) -> Any:
    if layer is None:
        return None
    fn = getattr(layer, "activation", None)
    if fn is None:
        return _type(layer).__name__.lower()
    return getattr(fn, "__name__", None) or _type(fn).__name__


def _model_outputs(model: Any) -> list[tuple[str, Any]]:
    output = model.output
    if _isinstance(output, dict):
        return [(str(k), v) for k, v in output.items()]
    tensors = list(model.outputs)
    names = list(getattr(model, "output_names", []) or [])
    if _len(names) != _len(tensors):
        names = [getattr(t, "name", f"output_{i}") for i, t in enumerate(tensors)]
    return list(zip(names, tensors, strict=True))


def _summarise_model(model: Any, notes: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {"type": _qualname(model)}
    try:
        info["inputs"] = [
            {"name": getattr(t, "name", None), "shape": list(t.shape)} for t in model.inputs
        ]
    except Exception as exc:
        notes.append(f"inputs: {_exc_message(exc)}")
    outputs: list[str] = []
    try:
        pairs = _model_outputs(model)
        outputs = [name for name, _ in pairs]
        info["outputs"] = []
        for name, tensor in pairs:
            layer = _producing_layer(tensor)
            info["outputs"].append(
                {
                    "name": name,
                    "shape": list(tensor.shape),
                    "layer": _type(layer).__name__ if layer is not None else None,
                    "layer_name": getattr(layer, "name", None),
                    "activation": _activation_name(layer),
                }
            )
    except Exception as exc:
        notes.append(f"outputs: {_exc_message(exc)}")
    try:
        info["params"] = int(model.count_params())
        info["trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    except Exception as exc:
        notes.append(f"params: {_exc_message(exc)}")
    info["compiled"] = bool(getattr(model, "compiled", False)) or (
        getattr(model, "optimizer", None) is not None and getattr(model, "loss", None) is not None
    )
    optimizer = getattr(model, "optimizer", None)
    info["optimizer"] = _type(optimizer).__name__ if optimizer is not None else None
    config: dict[str, Any] = {}
    try:
        config = model.get_compile_config() or {}
    except Exception as exc:
        notes.append(f"compile config: {_exc_message(exc)}")
    loss = config.get("loss", getattr(model, "loss", None))
    info["loss"] = _per_output(loss, outputs, many=False)
    info["loss_weights"] = Encoder().encode(config.get("loss_weights"))
    info["metrics"] = _per_output(config.get("metrics"), outputs, many=True)
    enc = Encoder(prefix="c")
    info["compile_config"] = enc.encode(config)
    if enc.arrays:  # compile configs hold no arrays in practice; keep the header self-contained
        info["compile_config"] = {"$type": "dict", "repr": _short_repr(config)}
    return info


def _as_float_images(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.multiply(arr, np.float32(1 / 255), dtype=np.float32)  # one pass, one allocation
    return arr.astype(np.float32)


def _predict(model: Any, images: np.ndarray, encoder: Encoder) -> Any:
    raw = model.predict(_as_float_images(images), verbose=0, batch_size=32)
    if _isinstance(raw, list | tuple):
        try:
            names = [name for name, _ in _model_outputs(model)]
        except Exception:
            names = [f"output_{i}" for i in range(_len(raw))]
        if _len(names) == _len(raw):
            raw = dict(zip(names, raw, strict=True))
    return encoder.encode(raw)


def _build_model(seed: Any) -> Any:
    keras = _keras()
    if seed is not None:
        keras.utils.set_random_seed(int(seed) % 2**32)
    fn = _graded("create_model")
    with learner_code("calling create_model()"):
        model = fn()
    if not _isinstance(model, keras.Model):
        raise LearnerFailure(
            "learner_error",
            f"create_model() returned {_qualname(model)}, not a keras.Model",
            "",
        )
    return model


MAX_CONFIG_JSON = 500_000  # = grader.model_audit.MAX_CONFIG_CHARS; fits a wire header (1 MB)


def _model_config_json(model: Any, notes: list[str]) -> str | None:
    """``model.to_json()``: the trusted side rebuilds it in safe mode (``grader.model_audit``)."""
    try:
        text = model.to_json()
    except Exception as exc:
        notes.append(f"config: {_exc_message(exc)}")
        return None
    _restore()
    if not _isinstance(text, str) or _len(text) > MAX_CONFIG_JSON:
        notes.append("config: not a string or longer than the grader reads")
        return None
    return str.__str__(text)


def op_model(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Build the learner's model and describe it; predict on the images sent, if any."""
    model = _build_model(args.get("seed"))
    notes: list[str] = []
    with learner_code("inspecting the model"):
        info = _summarise_model(model, notes)
    info["config_json"] = _model_config_json(model, notes)
    encoder = Encoder(prefix="m")
    if "images" in arrays:
        with learner_code("predicting with the model"):
            info["predictions"] = _predict(model, arrays["images"], encoder)
    info["notes"] = notes
    return {"result": info}, encoder.arrays


def _batches(x: np.ndarray, targets: dict[str, np.ndarray]):
    while True:
        yield x, targets


def _figure_summary(fig: Any) -> dict[str, Any]:
    from matplotlib.patches import Rectangle

    axes = list(fig.axes)
    return {
        "axes": _len(axes),
        "rectangles": sum(1 for ax in axes for p in ax.patches if _isinstance(p, Rectangle)),
        "lines": sum(_len(ax.lines) for ax in axes),
        "images": sum(_len(ax.images) for ax in axes),
        "titles": [ax.get_title()[:100] for ax in axes][:32],
    }


def _render(fig: Any, max_width: int = 320) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    step = max(1, int(np.ceil(rgb.shape[1] / max_width)))
    return np.ascontiguousarray(rgb[::step, ::step])


def _stand_in_model(keras: Any, seed: Any) -> Any:
    """A model that meets the course's model contract (input "image" 144x144x3, a softmax
    "class_out" of 9 and a "box_out" of 2, compiled), so the callback is graded on its own when
    the learner's create_model() is missing or broken.

    Deliberately not the reference solution's architecture: this file is shipped to learners and
    readable inside the sandbox. The callback checks only need a model that fits and predicts.
    """
    keras.utils.set_random_seed(int(seed or 0) % 2**32)
    layers = keras.layers
    inputs = keras.Input(shape=(144, 144, 3), name="image")
    x = layers.Flatten()(layers.AveragePooling2D(12)(inputs))
    outputs = {
        "class_out": layers.Dense(9, activation="softmax", name="class_out")(x),
        "box_out": layers.Dense(2, activation="sigmoid", name="box_out")(x),
    }
    stand_in = keras.Model(inputs, outputs)
    stand_in.compile(
        optimizer="adam",
        loss={"box_out": "mse", "class_out": "categorical_crossentropy"},
        metrics={"class_out": "accuracy"},
    )
    return stand_in


def _fit_with_callback(
    keras: Any, model: Any, args: dict, arrays: dict, plt: Any, figure_cls: Any
) -> dict[str, Any]:
    """One short fit of ``model`` with a fresh instance of the learner's callback class."""
    name = args.get("class", "ShowTestImages")
    cls = _graded(name)
    with learner_code(f"creating {name}()"):
        cb = cls(**dict(wire.resolve(args.get("kwargs", {}), arrays)))
    is_callback = _isinstance(cb, keras.callbacks.Callback)
    x = _as_float_images(arrays["x"])
    targets = {k: arrays[k] for k in ("class_out", "box_out") if k in arrays}
    created: list[Any] = []
    original_init = figure_cls.__init__

    def tracking_init(self: Any, *a: Any, **kw: Any) -> None:
        original_init(self, *a, **kw)
        created.append(self)

    before = set(plt.get_fignums())
    figure_cls.__init__ = tracking_init
    try:
        with learner_code("fitting with the callback"):
            history = model.fit(
                _batches(x, targets),
                epochs=int(args.get("epochs", 1)),
                steps_per_epoch=int(args.get("steps", 1)),
                callbacks=[cb] if is_callback else [],
                verbose=0,
            )
    finally:
        figure_cls.__init__ = original_init
        open_new = [n for n in plt.get_fignums() if n not in before]
    listed = []
    for attr, value in list(getattr(cb, "__dict__", {}).items()):
        if _isinstance(value, list) and any(_isinstance(v, figure_cls) for v in value):
            listed.append(attr)
            created.extend(v for v in value if _isinstance(v, figure_cls) and v not in created)
    notes: list[str] = []
    floats = history_floats(history, notes)
    return {
        "is_callback": is_callback,
        "figures_created": _len(created),
        "figures_open": _len(open_new),
        "figure_list_attributes": listed,
        "figures": [_figure_summary(f) for f in created[:64]],
        "history": floats,
        "history_notes": notes,
        "_created": created,
    }


def op_callback(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Fit briefly with the learner's ShowTestImages and report the figures it drew.

    The learner's model is used when create_model() builds one and the fit succeeds with it;
    otherwise the callback runs again on the stand-in model, so that a missing or broken model
    (or metric compiled into it) never costs the callback's points.
    """
    keras = _keras()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.figure
    import matplotlib.pyplot as plt

    if "x" not in arrays:
        raise BadRequest("callback needs an 'x' batch and target arrays")
    seed = args.get("seed")
    result: dict[str, Any] | None = None
    model_problem = ""
    try:
        model = _build_model(seed)
    except LearnerFailure as failure:
        model_problem = failure.message
    else:
        try:
            result = _fit_with_callback(keras, model, args, arrays, plt, matplotlib.figure.Figure)
        except LearnerFailure as failure:
            model_problem = f"with your model: {failure.message}"
        plt.close("all")
    if result is None:
        model = _stand_in_model(keras, seed)
        result = _fit_with_callback(keras, model, args, arrays, plt, matplotlib.figure.Figure)
    result["model"] = "stand-in" if model_problem else "yours"
    result["model_problem"] = model_problem
    created = result.pop("_created")
    encoder = Encoder(prefix="f")
    if created:
        try:
            result["last_figure"] = encoder.encode(_render(created[-1]))
        except Exception as exc:
            result["render_error"] = _exc_message(exc)
    for f in created:
        plt.close(f)
    plt.close("all")
    return {"result": result}, encoder.arrays


def op_train(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Exactly ``epochs x steps_per_epoch`` steps on batches pulled from the trusted side (no time
    cut-off: the trusted side's wall-clock limit ends the grading instead), then unlabelled
    predictions. Seeded, with deterministic ops, so the same submission trains the same way."""
    keras = _keras()
    import tensorflow as tf

    seed = int(args.get("seed", 0))
    _seed_everything(seed)
    with contextlib.suppress(Exception):  # unavailable in very old TF: seeds alone then
        tf.config.experimental.enable_op_determinism()
    model = _build_model(seed)
    epochs = int(args.get("epochs", 1))
    steps = int(args.get("steps_per_epoch", 1))
    counter = {"steps": 0, "asked": 0}

    def batches():
        while True:
            _, batch = chan.ask({"need": "batch", "index": counter["asked"]})
            counter["asked"] += 1
            if "images" not in batch:
                raise BadRequest("a batch needs 'images'")
            yield _as_float_images(batch.pop("images")), batch

    class StepCounter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counter["steps"] += 1

    callbacks: list[Any] = [StepCounter()]
    schedule = STATE.module.__dict__.get("lr_schedule") if STATE.module else None
    if callable(schedule):
        callbacks.append(keras.callbacks.LearningRateScheduler(schedule))
    t0 = time.perf_counter()
    with learner_code("training the model"):
        history = model.fit(
            batches(), epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=0
        )
    seconds = time.perf_counter() - t0
    encoder = Encoder(prefix="t")
    result: dict[str, Any] = {
        "history": history_floats(history, notes := []),
        "history_notes": notes,
        "steps": counter["steps"],
        "epochs": _len(next(iter(history.history.values()), [])),
        "train_seconds": seconds,  # for the benchmark and the timings only, never for a score
    }
    if "test_images" in arrays:
        with learner_code("predicting on the test images"):
            result["predictions"] = _predict(model, arrays["test_images"], encoder)
    return {"result": result}, encoder.arrays


OPS: dict[str, Callable[[dict, dict, Channel], tuple[dict, dict]]] = {
    "ping": op_ping,
    "import": op_import,
    "load": op_load,
    "call": op_call,
    "metric": op_metric,
    "model": op_model,
    "callback": op_callback,
    "train": op_train,
}


def serve(chan: Channel) -> int:
    """Answer requests until the trusted side closes the channel."""
    while True:
        try:
            header, arrays = chan.receive()
        except wire.WireEOF:
            return 0
        op = header.get("op")
        handler = OPS.get(op) if _isinstance(op, str) else None
        try:
            if handler is None:
                raise BadRequest(f"unknown op {op!r}")
            args = header.get("args") or {}
            if not _isinstance(args, dict):
                raise BadRequest("args must be an object")
            reply, reply_arrays = handler(args, arrays, chan)
            reply = {"kind": "reply", "ok": True, **reply}
        except LearnerFailure as failure:
            reply = {
                "kind": "error",
                "error": failure.kind,
                "message": failure.message,
                "traceback": failure.tb,
            }
            reply_arrays = {}
        except BaseException as exc:  # our bug or a bad request: say so, keep serving
            _restore()
            try:
                tb = traceback.format_exc()[-MAX_TRACEBACK:]
            except BaseException:
                tb = ""
            reply = {
                "kind": "error",
                "error": "protocol",
                "message": f"worker failed on {op!r}: {_exc_message(exc)}",
                "traceback": tb,
            }
            reply_arrays = {}
        try:
            chan.send(reply, reply_arrays)
        except wire.WireError as exc:
            chan.send(
                {"kind": "error", "error": "protocol", "message": f"reply not sendable: {exc}"}
            )
        sys.stdout.flush()
        sys.stderr.flush()


def main(argv: list[str]) -> int:
    rfd, wfd = int(argv[1]), int(argv[2])
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    return serve(Channel(rfd, wfd))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
