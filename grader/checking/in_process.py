"""The self-check's submission: the worker's probes run in the learner's own process.

Fast and good enough for a learner checking their own work (``grader.authoring.selfcheck``);
never used for grades, which only the sandboxed worker's replies decide.
"""

from __future__ import annotations

import types
from typing import Any

from grader import wire
from grader.assignment import Assignment
from grader.checking import diagnosis
from grader.checking.probes import ProbeFailure
from grader.checking.submission import Submission
from grader.ingest import IngestedNotebook
from grader.wire import FailureKind


class InProcessSubmission(Submission):
    """Self-check: the worker's probes run here, over the learner's namespace."""

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
        try:
            header, reply_arrays = worker.OPS[op](args, arrays, None)
        except worker.LearnerFailure as failure:
            raise ProbeFailure(failure.kind, failure.message, failure.tb) from None
        except Exception as error:  # a bad reply or our own bug: report, don't crash the notebook
            raise ProbeFailure(FailureKind.PROTOCOL, f"{type(error).__name__}: {error}") from None
        return wire.resolve(header.get("result"), reply_arrays)


diagnosis.IN_PROCESS[:] = [InProcessSubmission]  # the known mistakes run in process too
