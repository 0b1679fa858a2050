"""The data-only wire protocol between the trusted grader and the sandboxed worker.

Both sides import this module, so it depends on the standard library and numpy only (the worker
gets a private copy of this file and nothing else from ``grader``).

A message is::

    u32 big-endian header length | UTF-8 JSON object | for each array: u64 length | .npy bytes

The JSON header lists its arrays under ``"$arrays": [[name, nbytes], ...]``. Arrays travel as
``.npy`` (``np.lib.format``) with ``allow_pickle=False`` and a dtype whitelist, so nothing but plain
numbers ever crosses: no pickle, no object arrays, no code. Every size is capped before it is read,
and any malformed input raises :class:`WireError` instead of crashing the reader.

What the trusted side accepts from the worker is bounded twice, so that a flooding worker cannot
grow the trusted process: one message (header + arrays, checked against the sizes its header
declares before a byte of an array is read) and one exchange (everything the worker sends while
answering one request, counted by :class:`Meter`). Only the worker-to-trusted direction is
metered: the trusted side's own data (the training probe streams 1000 batches of 16x144x144x3 uint8,
about 1 GB) is not the worker's to inflate. And a message is read only where the protocol expects
its kind (:func:`expected_from_worker`): nothing but a reply or an error while the code loads,
arrays only in a reply.

Learner values are encoded as a JSON tree in which arrays become ``{"$array": name}`` references,
generators become ``{"$iter": [...], "type": ...}`` samples, and anything else becomes
``{"$type": qualified name, "repr": short repr}``; :func:`resolve` turns such a tree back into
plain Python data with numpy arrays, :class:`Opaque` and :class:`Sampled` placeholders.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

MAX_HEADER_BYTES = 1 << 20
#: one message from the worker, header and arrays together. The largest reply a probe needs is a
#: sampled float64 batch, 16x144x144x3x8 bytes = 8 MB; the training predictions are ~12 kB.
MAX_MESSAGE_BYTES = 64 << 20
MAX_ARRAY_BYTES = MAX_MESSAGE_BYTES
MAX_ARRAYS = 256
MAX_NPY_HEADER = 4096
MAX_JSON_DEPTH = 64

#: dtypes allowed on the wire: plain numbers and booleans, native or explicit byte order.
ALLOWED_KINDS = frozenset("biuf")
ALLOWED_FLOAT_SIZES = frozenset({2, 4, 8})

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class FailureKind(StrEnum):
    """Why a probe gave no data reply: the ``error`` of a worker's error message, or what the
    trusted side found instead of a reply.

    Declared here, the one module the worker, the sandbox (``grader.sandbox.ProbeError``) and the
    checks (``grader.checking.ProbeFailure``) all import: the worker names the first two, the
    trusted side the others. The values are the strings on the wire and in messages.
    """

    LEARNER_ERROR = "learner_error"  # the learner's code raised (or called sys.exit)
    LOAD_ERROR = "load_error"  # the learner's code does not load (syntax, import, top level)
    TIMEOUT = "timeout"  # no reply within the probe's wall-clock limit; the worker was stopped
    CRASHED = "crashed"  # the worker died (a signal, a limit) or the sandbox was closed
    PROTOCOL = "protocol"  # a reply the trusted side could not read, or the worker's own bug
    # the grader failed, not the submission: no slot or cgroup, EAGAIN starting the worker, a
    # worker OOM-killed by pressure from outside its own limits; retried, never a verdict
    GRADER_ERROR = "grader_error"

    @classmethod
    def of(cls, text: str) -> FailureKind:
        """The kind a worker named; anything else is a reply the grader cannot read."""
        try:
            return cls(text)
        except ValueError:
            return cls.PROTOCOL


class WireError(Exception):
    """A message that is malformed, oversized or uses a forbidden dtype."""


class WireEOF(WireError):
    """The peer closed the channel before a complete message arrived."""


@dataclass(frozen=True)
class Caps:
    """Size caps applied to every message read (and checked before every write).

    ``message_bytes`` bounds one message (header + arrays); ``exchange_bytes`` bounds all the
    bytes the worker sends while answering one request (see :class:`Meter`).
    """

    header_bytes: int = MAX_HEADER_BYTES
    array_bytes: int = MAX_ARRAY_BYTES
    arrays: int = MAX_ARRAYS
    message_bytes: int = MAX_MESSAGE_BYTES
    exchange_bytes: int = 2 * MAX_MESSAGE_BYTES

    @classmethod
    def sized(cls, message_bytes: int) -> Caps:
        """Caps from one figure: a message (and so an array) of at most ``message_bytes``; an
        exchange of twice that (the reply plus the asks and notes before it)."""
        return cls(
            header_bytes=min(MAX_HEADER_BYTES, message_bytes),
            array_bytes=message_bytes,
            message_bytes=message_bytes,
            exchange_bytes=2 * message_bytes,
        )


DEFAULT_CAPS = Caps()


@dataclass(frozen=True)
class Opaque:
    """A learner value that is not data: only its type name and a short repr crossed."""

    type: str
    repr: str
    extra: dict[str, Any] = field(default_factory=dict)


class Sampled(list):
    """The first items drawn from a learner generator/iterator (``type`` is its type name)."""

    def __init__(
        self,
        items: Iterable[Any],
        type: str,
        error: str | None = None,
        changed: Iterable[int] = (),
    ) -> None:
        super().__init__(items)
        self.type = type
        self.error = error
        #: indices of items whose arrays the generator changed while later items were drawn
        self.changed = tuple(changed)


def check_dtype(dtype: np.dtype) -> None:
    """Refuse anything but bool, ints, uints and float16/32/64 (no objects, strings, records)."""
    if dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        raise WireError(f"dtype {dtype} is not allowed on the wire")
    if dtype.kind not in ALLOWED_KINDS:
        raise WireError(f"dtype {dtype} is not allowed on the wire")
    if dtype.kind == "f" and dtype.itemsize not in ALLOWED_FLOAT_SIZES:
        raise WireError(f"dtype {dtype} is not allowed on the wire")


def array_to_npy(arr: np.ndarray, caps: Caps = DEFAULT_CAPS) -> bytes:
    """Serialise one array as .npy bytes (never pickled)."""
    if not isinstance(arr, np.ndarray):
        raise WireError(f"expected a numpy array, got {type(arr).__name__}")
    check_dtype(arr.dtype)
    if arr.nbytes > caps.array_bytes:
        raise WireError(f"array of {arr.nbytes} bytes exceeds the {caps.array_bytes}-byte cap")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_to_array(data: bytes, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Parse .npy bytes strictly: whitelisted dtype, size cap, exact length, no pickle."""
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                buf, max_header_size=MAX_NPY_HEADER
            )
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                buf, max_header_size=MAX_NPY_HEADER
            )
        else:
            raise WireError(f"unsupported .npy version {version}")
    except WireError:
        raise
    except Exception as exc:  # numpy raises ValueError/SyntaxError/... on garbage
        raise WireError(f"bad .npy header: {exc}") from None
    check_dtype(dtype)
    if any((not isinstance(n, int)) or n < 0 for n in shape):
        raise WireError(f"bad array shape {shape!r}")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize > max_bytes:
        raise WireError(f"array of {count * dtype.itemsize} bytes exceeds the {max_bytes}-byte cap")
    offset = buf.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise WireError(
            f"array payload is {len(data) - offset} bytes, header says {count * dtype.itemsize}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    order = "F" if fortran else "C"
    return np.reshape(arr, shape, order=order).copy()  # writable, owns its memory


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def encode_message(
    header: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray] | None = None,
    caps: Caps = DEFAULT_CAPS,
) -> list[bytes]:
    """Serialise a message into byte chunks (header first). Raises WireError when over a cap."""
    arrays = dict(arrays or {})
    if len(arrays) > caps.arrays:
        raise WireError(f"{len(arrays)} arrays exceed the cap of {caps.arrays}")
    blobs = [(str(name), array_to_npy(arr, caps)) for name, arr in arrays.items()]
    head = dict(header)
    head["$arrays"] = [[name, len(blob)] for name, blob in blobs]
    try:
        text = json.dumps(head, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"header is not JSON data: {exc}") from None
    raw = text.encode("utf-8")
    if len(raw) > caps.header_bytes:
        raise WireError(f"header of {len(raw)} bytes exceeds the {caps.header_bytes}-byte cap")
    total = len(raw) + sum(_U64.size + len(blob) for _, blob in blobs)
    if total > caps.message_bytes:
        raise WireError(f"message of {total} bytes exceeds the {caps.message_bytes}-byte cap")
    chunks = [_U32.pack(len(raw)), raw]
    for _, blob in blobs:
        chunks.append(_U64.pack(len(blob)))
        chunks.append(blob)
    return chunks


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, iteratively (a deep tree must not recurse)."""
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            break
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


#: What a reader accepts: message kind -> whether that kind may carry arrays.
Expected = Mapping[str, bool]


def expected_from_worker(op: str, talks_back: bool) -> Expected:
    """The messages the trusted side accepts while the worker answers ``op``.

    A reply (with arrays, except to ``load``, whose reply is names only) or an error; asks and
    notes (headers only) only for a request that talks back (one with an ``on_message``).
    """
    kinds = {"reply": op != "load", "error": False}
    if talks_back and op != "load":
        kinds |= {"ask": False, "note": False}
    return kinds


class Meter:
    """A ``read_exact`` that refuses to read past ``limit`` bytes in total (one exchange).

    The check comes before the read, so bytes over the cap are never taken off the pipe.
    """

    def __init__(self, read_exact: Callable[[int], bytes], limit: int, what: str = "") -> None:
        self._read_exact = read_exact
        self.limit = limit
        self.used = 0
        self.what = what

    def __call__(self, n: int) -> bytes:
        if self.used + n > self.limit:
            raise WireError(
                f"{self.what or 'the exchange'} exceeds the {self.limit}-byte cap on what the "
                f"worker may send for one request ({self.used} bytes read, {n} more announced)"
            )
        self.used += n
        return self._read_exact(n)


def read_message(
    read_exact: Callable[[int], bytes],
    caps: Caps = DEFAULT_CAPS,
    expected: Expected | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one message via ``read_exact(n)`` (which returns exactly n bytes or raises WireEOF).

    With ``expected``, a message of another kind, or with arrays where its kind carries none, is
    refused after its header, before any array is read; so is one whose header declares more
    than ``caps.message_bytes`` in all.
    """
    (size,) = _U32.unpack(read_exact(_U32.size))
    if size > caps.header_bytes:
        raise WireError(f"header of {size} bytes exceeds the {caps.header_bytes}-byte cap")
    raw = read_exact(size)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    if _depth(header, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise WireError(f"header nests deeper than {MAX_JSON_DEPTH} levels")
    listing = header.pop("$arrays", [])
    if not isinstance(listing, list) or len(listing) > caps.arrays:
        raise WireError("bad or oversized array listing")
    for item in listing:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
            or item[1] < 0
        ):
            raise WireError("bad array listing entry")
    if expected is not None:
        kind = header.get("kind")
        if not isinstance(kind, str) or kind not in expected:
            raise WireError(
                f"unexpected {kind!r} message here (expected {' or '.join(sorted(expected))})"
            )
        if listing and not expected[kind]:
            raise WireError(f"a {kind!r} message may not carry arrays here")
    declared = size + sum(_U64.size + nbytes for _, nbytes in listing)
    if declared > caps.message_bytes:
        raise WireError(f"message of {declared} bytes exceeds the {caps.message_bytes}-byte cap")
    arrays: dict[str, np.ndarray] = {}
    for name, nbytes in listing:
        (length,) = _U64.unpack(read_exact(_U64.size))
        if length != nbytes or length > caps.array_bytes + MAX_NPY_HEADER + 128:
            raise WireError(f"array {name!r}: bad or oversized length {length}")
        arrays[name] = npy_to_array(read_exact(length), caps.array_bytes)
    return header, arrays


def fd_reader(fd: int) -> Callable[[int], bytes]:
    """A blocking ``read_exact`` over a file descriptor (used by the worker)."""
    import os

    def read_exact(n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise WireEOF(f"channel closed with {left} of {n} bytes missing")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    return read_exact


def write_fd(fd: int, chunks: Iterable[bytes]) -> None:
    """Blocking write of all chunks to a file descriptor (used by the worker)."""
    import os

    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            n = os.write(fd, view)
            view = view[n:]


# --------------------------------------------------------------------------------------------
# Value trees


def pack(value: Any, arrays: dict[str, np.ndarray] | None = None) -> tuple[Any, dict]:
    """Turn plain data with numpy arrays into a JSON tree + arrays (the trusted side's encoder)."""
    arrays = {} if arrays is None else arrays

    def walk(v: Any) -> Any:
        if isinstance(v, np.ndarray | np.generic):
            name = f"p{len(arrays)}"
            arrays[name] = np.asarray(v)
            return {"$array": name}
        if isinstance(v, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in v):
                return {k: walk(x) for k, x in v.items()}
            return {"$dict": [[walk(k), walk(x)] for k, x in v.items()]}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if v is None or isinstance(v, bool | int | float | str):
            return v
        raise WireError(f"cannot send a {type(v).__name__}")

    return walk(value), arrays


def resolve(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Rebuild a value tree: array refs -> arrays, ``$type`` -> Opaque, ``$iter`` -> Sampled."""
    if isinstance(tree, list):
        return [resolve(x, arrays) for x in tree]
    if not isinstance(tree, dict):
        return tree
    if "$array" in tree:
        name = tree["$array"]
        if not isinstance(name, str) or name not in arrays:
            raise WireError(f"reference to a missing array {name!r}")
        return arrays[name]
    if "$type" in tree:
        extra = {k: resolve(v, arrays) for k, v in tree.items() if k not in ("$type", "repr")}
        return Opaque(str(tree["$type"]), str(tree.get("repr", "")), extra)
    if "$iter" in tree:
        items = tree["$iter"]
        if not isinstance(items, list):
            raise WireError("bad $iter")
        changed = tree.get("changed") or []
        if not isinstance(changed, list) or not all(isinstance(i, int) for i in changed):
            raise WireError("bad $iter changed")
        return Sampled(
            [resolve(x, arrays) for x in items],
            str(tree.get("type", "")),
            tree.get("error"),
            changed,
        )
    if "$dict" in tree:
        pairs = tree["$dict"]
        if not isinstance(pairs, list):
            raise WireError("bad $dict")
        out: dict[Any, Any] = {}
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("bad $dict entry")
            key = resolve(pair[0], arrays)
            if isinstance(key, np.ndarray) and key.ndim == 0:
                key = key.item()
            try:
                out[key] = resolve(pair[1], arrays)
            except TypeError:  # unhashable key: keep it visible rather than failing
                out[repr(key)] = resolve(pair[1], arrays)
        return out
    return {k: resolve(v, arrays) for k, v in tree.items()}
