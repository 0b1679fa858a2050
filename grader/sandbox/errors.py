"""How a sandbox fails: a probe without a data reply, or no isolation to run one in.

Why a module of its own: the sandbox's collaborators (the exchange, the process start) and its
callers (the submission proxy, the grading) all raise or catch these two.
"""

from __future__ import annotations

from grader.wire import FailureKind


class ProbeError(Exception):
    """A probe gave no data reply; ``kind`` says why (:class:`grader.wire.FailureKind`: a kind the
    grader does not know is ``protocol``)."""

    def __init__(self, kind: FailureKind | str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = FailureKind.of(kind)
        self.message = message
        self.traceback = traceback


class SandboxUnavailable(RuntimeError):
    """The isolation asked for (or, for "auto", any isolation at all) cannot run here."""
