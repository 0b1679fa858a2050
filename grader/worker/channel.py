"""The worker's end of the protocol pipes to the trusted side.

Requests come in and replies, questions and progress notes go out over two file descriptors the
sandbox passes on the command line; learner prints go to stdout/stderr, never here. Builtins and
json are restored before every message, so learner patches cannot garble the framing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import wire

from .state import BadRequest, _restore


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
