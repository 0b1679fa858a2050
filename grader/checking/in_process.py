"""The in-process submission: the worker's probes run in this process, over a namespace.

Used by the learner's self-check (``grader.authoring.selfcheck``) over their notebook's namespace,
and by the mutation audit (``grader.audit``) over the reference's mutants; never for grades,
which only the sandboxed worker's replies decide. Each instance stands for a fresh worker (its
per-call seed counter starts again, as a new worker's would), and a probe that asks the trusted
side for data while it runs (the train probe's batches) is answered through the request's
``on_message``, as the sandbox's exchange would (:class:`InProcessChannel`).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np

from grader import wire
from grader.assignment import Assignment
from grader.checking import diagnosis
from grader.checking.probes import ProbeFailure
from grader.checking.submission import Submission
from grader.ingest import IngestedNotebook
from grader.wire import FailureKind


class InProcessChannel:
    """The worker's channel (``grader.worker.channel.Channel``) without the pipes: a probe's
    question goes straight to the trusted side's ``on_message``, and the answer comes back as
    the wire would deliver it (a header marked ``answer``, arrays copied)."""

    def __init__(self, on_message: Callable | None, refused: type[Exception]) -> None:
        self.on_message = on_message
        self.refused = refused  # the worker's BadRequest: what a probe expects on a refusal

    def ask(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        question = {"kind": "ask", **header}
        answer = self.on_message(question, dict(arrays or {})) if self.on_message else None
        if answer is None:
            raise self.refused(f"trusted side refused: nobody answers {header}"[:500])
        reply, reply_arrays = answer
        return {"kind": "answer", **reply}, {k: np.array(v) for k, v in reply_arrays.items()}

    def note(self, header: dict[str, Any]) -> None:
        if self.on_message is not None:
            self.on_message({"kind": "note", **header}, {})


class InProcessSubmission(Submission):
    """The worker's probes run here, over ``namespace`` (the learner module's globals)."""

    def __init__(
        self,
        namespace: dict[str, Any],
        ingested: IngestedNotebook | None = None,
        assignment: Assignment | None = None,
    ) -> None:
        super().__init__(ingested, assignment)
        from grader import worker

        self._worker = worker
        module = types.ModuleType(worker.LEARNER_MODULE)
        module.__dict__.update(namespace)
        self._module = module
        worker.STATE.calls = 0  # a fresh worker's per-call seeds, whatever ran here before

    def _request(self, op, args, arrays, on_message=None):
        worker = self._worker
        worker.STATE.module = self._module
        if op == "load":
            names = {
                name: worker._describe(self._module.__dict__[name])
                if name in self._module.__dict__
                else {"kind": "missing"}
                for name in self.assignment.part_names
            }
            return {"names": names}
        arrays = {name: array.copy() for name, array in arrays.items()}  # as if sent: no aliasing
        channel = InProcessChannel(on_message, worker.BadRequest)
        try:
            header, reply_arrays = worker.OPS[op](args, arrays, channel)
        except worker.LearnerFailure as failure:
            raise ProbeFailure(failure.kind, failure.message, failure.tb) from None
        except Exception as error:  # a bad reply or our own bug: report, don't crash the notebook
            raise ProbeFailure(FailureKind.PROTOCOL, f"{type(error).__name__}: {error}") from None
        return wire.resolve(header.get("result"), reply_arrays)


diagnosis.IN_PROCESS[:] = [InProcessSubmission]  # the known mistakes run in process too
