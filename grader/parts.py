"""What a graded part is: its name, its kind and its stub (a leaf every stage may import).

Why apart from ``grader.assignment``: ingestion needs the kinds of parts (a metric is a class with
``update_state``...) and the assignment builds ingestion's rules, so the vocabulary both share
lives here, below both, and neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PartKind(StrEnum):
    """What a graded part is; the probes find the model factory, the metric, the callback and the
    learning-rate schedule by kind, so checks need not repeat their names."""

    FUNCTION = "function"
    CLASS = "class"
    MODEL = "model"  # a function returning a compiled keras.Model
    METRIC = "metric"  # a keras.metrics.Metric subclass
    CALLBACK = "callback"  # a keras.callbacks.Callback subclass
    SCHEDULE = "schedule"  # schedule(epoch, lr) -> new rate, for LearningRateScheduler


@dataclass(frozen=True)
class Part:
    """One graded part: a definition the learner writes in a graded cell."""

    name: str
    kind: PartKind
    stub: str  # how the learner notebook's stub declares it; messages quote it
    missing: str = ""  # advice when it is missing, beyond "keep the graded cell's name"
