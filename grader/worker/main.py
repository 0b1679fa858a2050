"""The worker's request loop: read a request, dispatch it to its probe, send the reply.

A learner failure becomes an error reply that names it; any other exception (a malformed request
or a bug of ours) becomes a ``protocol`` error reply, and the loop keeps serving until the trusted
side closes the channel.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from grader import wire

from .channel import Channel
from .probes_call import op_call, op_import, op_load, op_ping
from .probes_fit import op_callback, op_train
from .probes_keras import op_metric, op_metric_fit, op_model
from .state import MAX_TRACEBACK, BadRequest, LearnerFailure, _isinstance, _restore
from .tracebacks import _exc_message

OPS: dict[str, Callable[[dict, dict, Channel], tuple[dict, dict]]] = {
    "ping": op_ping,
    "import": op_import,
    "load": op_load,
    "call": op_call,
    "metric": op_metric,
    "metric_fit": op_metric_fit,
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
