"""How a grading ended: :class:`Status`, shared by grading, results and batch.

Why a leaf module: the batch stage counts and retries rows by status without importing the
grading stages (its CLI help and a Dask client stay light), and results.json carries the same
values; one enum, declared once, is the vocabulary of all three.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How a grading ended; ``extra_data.status`` in results.json (batch reads it, never messages).

    A verdict is final; ``timeout``, ``killed`` and ``error`` are not verdicts (the machine or the
    grader failed, not the submission) and a rerun grades the submission again.
    """

    GRADED = "graded"  # every check ran: the score is the verdict
    UNREADABLE = "unreadable"  # not a usable notebook file: 0, with the reason
    LOAD_ERROR = "load_error"  # the learner's code does not load: the checks say so
    CRASHED = "crashed"  # the learner's code crashed its worker during some check
    TIMEOUT = "timeout"  # a wall-clock limit of the machine was hit (e.g. training): retried
    KILLED = "killed"  # the grading process died (set by grader.batch): retried
    REJECTED = "rejected"  # not graded by policy (e.g. an unsafe archive member), set by batch
    ERROR = "error"  # the grader failed, not the submission: retried

    @property
    def is_verdict(self) -> bool:
        return self not in (Status.TIMEOUT, Status.KILLED, Status.ERROR)
