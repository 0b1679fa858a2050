"""One request/reply round trip with the worker over its pipes, with a deadline, bounded.

Why: what the worker sends for a request is bounded (per message by ``wire.Caps``, in all by a
``wire.Meter``) and read only where the protocol expects it, so a flooding worker costs the
trusted process at most one capped message of memory; and every read and write waits at most
until the request's deadline, so a silent or stuck worker cannot hang the grader.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import wire
from grader.sandbox.errors import ProbeError
from grader.wire import FailureKind

OnMessage = Callable[[dict[str, Any], dict[str, np.ndarray]], Any]


@dataclass
class Reply:
    """A data reply: the JSON header and the arrays it references."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        """The ``result`` tree with array refs resolved (see ``wire.resolve``)."""
        return wire.resolve(self.header.get("result"), self.arrays)


class _Timeout(Exception):
    pass


def write_all(fd: int, chunks: list[bytes], deadline: float) -> None:
    """Write ``chunks`` to the non-blocking request pipe before ``deadline`` (else _Timeout)."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            _, ready, _ = select.select([], [fd], [], left)
            if not ready:
                continue
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise wire.WireEOF("the worker closed its request pipe") from None
            view = view[n:]


def reader(fd: int, deadline: float) -> Callable[[int], bytes]:
    """``read_exact(n)`` on the reply pipe, raising _Timeout after ``deadline``."""

    def read_exact(n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise wire.WireEOF("the worker closed its reply pipe")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    return read_exact


def round_trip(
    req_w: int,
    rep_r: int,
    request: tuple[str, Mapping[str, Any], Mapping[str, np.ndarray] | None],
    caps: wire.Caps,
    timeout: float,
    on_message: OnMessage | None,
) -> Reply:
    """Send ``request`` (op, args, arrays), answer the worker's asks, return its reply.

    Raises ProbeError (the worker's error reply, or a request that cannot be sent), _Timeout,
    ``wire.WireEOF`` (the worker went away) or ``wire.WireError`` (a bad message); the caller
    stops the worker on the last three.
    """
    op, args, arrays = request
    deadline = time.monotonic() + timeout
    try:
        chunks = wire.encode_message({"op": op, "args": dict(args)}, arrays, caps)
    except wire.WireError as exc:  # the trusted side's own request: the grader's failure
        raise ProbeError(FailureKind.GRADER_ERROR, f"{op}: request not sendable: {exc}") from None
    expected = wire.expected_from_worker(op, talks_back=on_message is not None)
    write_all(req_w, chunks, deadline)
    read_exact = wire.Meter(reader(rep_r, deadline), caps.exchange_bytes, op)
    while True:
        header, got = wire.read_message(read_exact, caps, expected)
        kind = header.get("kind")
        if kind == "reply":
            return Reply(header, got)
        if kind == "error":
            raise ProbeError(
                str(header.get("error", FailureKind.PROTOCOL)),
                str(header.get("message", ""))[:4000],
                str(header.get("traceback", ""))[:8000],
            )
        if kind == "note":
            assert on_message is not None  # expected only when the request talks back
            on_message(header, got)
            continue
        assert kind == "ask" and on_message is not None
        answer = on_message(header, got)
        if answer is None:
            out = wire.encode_message(
                {"kind": "error", "message": f"{op}: nobody answers {header}"[:500]}
            )
        else:
            a_header, a_arrays = answer
            out = wire.encode_message({"kind": "answer", **a_header}, a_arrays, caps)
        write_all(req_w, out, deadline)


def guarded(
    fds: tuple[int, int],
    request: tuple[str, Mapping[str, Any], Mapping[str, np.ndarray] | None],
    caps: wire.Caps,
    timeout: float,
    on_message: OnMessage | None,
    stop: Callable[[str | None, float], int | None],
    note: Callable[[str], None],
) -> Reply:
    """:func:`round_trip` on the worker's (request, reply) ``fds``; every failure but the worker's
    own error reply stops the worker (``stop(reason, grace)`` returns its exit code) and becomes a
    ProbeError (timeout, crashed, protocol), or is re-raised (trusted-side interruptions)."""
    op = request[0]
    try:
        return round_trip(*fds, request, caps, timeout, on_message)
    except _Timeout:
        stop(f"{op}: killed after {timeout:g} s without an answer", 0.0)
        raise ProbeError(FailureKind.TIMEOUT, f"{op}: no answer within {timeout:g} s") from None
    except wire.WireEOF:
        why = _describe_exit(stop(None, 2.0))
        note(f"{op}: {why}")
        raise ProbeError(FailureKind.CRASHED, f"{op}: {why}") from None
    except wire.WireError as exc:
        stop(f"{op}: bad message from the worker: {exc}", 0.0)
        raise ProbeError(
            FailureKind.PROTOCOL, f"{op}: bad message from the worker: {exc}"
        ) from None
    except ProbeError:
        raise
    except BaseException:
        stop(f"{op}: interrupted on the trusted side", 0.0)  # e.g. on_message raised
        raise


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker stopped"
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        why = {
            "SIGKILL": " (memory, CPU time or process limit, or killed)",
            "SIGXCPU": " (CPU time limit)",
            "SIGXFSZ": " (file size limit)",
            "SIGSEGV": " (segmentation fault)",
        }.get(name, "")
        return f"the worker was killed by {name}{why}"
    if code == 127:
        return "the worker could not start (exit 127)"
    if code == 0:
        return "the worker exited with status 0 (did the code call os._exit()?)"
    return f"the worker exited with status {code}"
