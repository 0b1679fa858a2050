"""How a sandbox fails: a probe without a data reply, or no isolation to run one in.

Why a module of its own: the sandbox's collaborators (the exchange, the process start) and its
callers (the submission proxy, the grading) all raise or catch these two.
"""

from __future__ import annotations


class ProbeError(Exception):
    """A probe gave no data reply: kind is timeout, crashed, protocol, learner_error, load_error
    or grader_error (the grader failed, not the submission: no slot or cgroup, EAGAIN starting the
    worker, a worker OOM-killed by pressure from outside its own limits; retried, never a verdict).
    """

    KINDS = frozenset(
        {"timeout", "crashed", "protocol", "learner_error", "load_error", "grader_error"}
    )

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind if kind in self.KINDS else "protocol"
        self.message = message
        self.traceback = traceback


class SandboxUnavailable(RuntimeError):
    """The isolation asked for (or, for "auto", any isolation at all) cannot run here."""
