"""The worker's request loop: read a request, dispatch it to its probe, send the reply.

What failed decides who failed, by where it happened, never by the text of an error: an exception
raised inside :func:`~grader.worker.tracebacks.learner_code` is the learner's (a ``LearnerFailure``
that names it); anything raised by the worker's own steps (writing the learner's source before any
learner code ran, a malformed request, a bug of ours, a request that cannot be read) is the
grader's: a ``grader_error`` reply, which ends the grading as ``error`` (retried, never a score).
One exception: a reply too large for the wire after learner code ran in that request is what the
learner's code returned, so it is theirs. The loop keeps serving until the trusted side closes the
channel.
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
from .tracebacks import _exc_message, learner_entries

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

GRADER_ERROR = wire.FailureKind.GRADER_ERROR.value


def _grader_fault(op: object, exc: BaseException, ran_before: int) -> dict:
    """The error reply for a failure of the worker's own step (or of the request itself)."""
    _restore()
    try:
        tb = traceback.format_exc()[-MAX_TRACEBACK:]
    except BaseException:
        tb = ""
    if _isinstance(exc, BadRequest):
        where = "the grader's request could not be served"
    elif ran_before == 0 and learner_entries() == 0:
        where = "before any learner code ran"
    else:
        where = "in the worker's own code, outside the learner's"
    return {
        "kind": "error",
        "error": GRADER_ERROR,
        "message": f"worker failed on {op!r} ({where}): {_exc_message(exc)}",
        "traceback": tb,
    }


def serve(chan: Channel) -> int:
    """Answer requests until the trusted side closes the channel."""
    while True:
        try:
            header, arrays = chan.receive()
        except wire.WireEOF:
            return 0
        except wire.WireError as exc:  # the stream is lost: say so once, then stop
            chan.send(_grader_fault("?", BadRequest(f"unreadable request: {exc}"), 0))
            return 1
        op = header.get("op")
        handler = OPS.get(op) if _isinstance(op, str) else None
        entered = learner_entries()
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
        except BaseException as exc:  # the worker's own step failed: the grader's fault
            reply, reply_arrays = _grader_fault(op, exc, entered), {}
        try:
            chan.send(reply, reply_arrays)
        except wire.WireError as exc:
            if learner_entries() > entered:  # it holds what the learner's code returned
                chan.send(
                    {
                        "kind": "error",
                        "error": "learner_error",
                        "message": f"what your code returned is too large to send back: {exc}",
                    }
                )
            else:
                chan.send(_grader_fault(op, exc, entered))
        sys.stdout.flush()
        sys.stderr.flush()


def main(argv: list[str]) -> int:
    rfd, wfd = int(argv[1]), int(argv[2])
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    return serve(Channel(rfd, wfd))
