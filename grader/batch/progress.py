"""What the instructor sees while a batch runs and when it ends: :class:`Progress` (tqdm counts,
rate and ETA on a terminal; one plain line per submission otherwise, for logs) and
:class:`BatchSummary` (the closing line, with how many submissions a rerun retries). Apart so that
display never touches grading or files.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from grader.batch.common import OK_STATUS, RETRY_STATUSES
from grader.batch.journal import JournalEntry
from grader.job import first_line

# --------------------------------------------------------------------------------------------
# Progress


class Progress:
    """tqdm (counts, rate, ETA) on a terminal; one plain line per submission otherwise."""

    def __init__(self, total: int, *, tty: bool | None = None, stream: Any = None) -> None:
        self.total, self.done = total, 0
        self.counts: Counter[str] = Counter()
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.bar = None
        if tty if tty is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="sub", dynamic_ncols=True, file=sys.stderr)

    def skip(self) -> None:
        """One submission fewer to grade (the journal has it already)."""
        self.total -= 1
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def update(self, entry: JournalEntry) -> None:
        self.done += 1
        self.counts["graded" if entry.status == OK_STATUS else "failed"] += 1
        if self.bar is not None:
            self.bar.set_postfix(
                graded=self.counts["graded"], failed=self.counts["failed"], refresh=False
            )
            self.bar.update(1)
            return
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = f", ETA {_clock(elapsed / self.done * left)}" if left else ""
        score = f"{entry.score:g}/{entry.max_score:g}" if entry.max_score else "-"
        error = f": {first_line(entry.error, 100)}" if entry.error else ""
        print(
            f"[{self.done}/{self.total}] {entry.id}: {score} {entry.status}{error} "
            f"({entry.execution_time:.0f} s{eta})",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    seconds = math.ceil(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class BatchSummary:
    """What happened; ``interrupted`` when Ctrl-C stopped the batch (finished work is kept)."""

    graded: int = 0
    failed: int = 0
    skipped: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def to_retry(self) -> int:
        return sum(count for status, count in self.statuses.items() if status in RETRY_STATUSES)

    def line(self) -> str:
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()) if k != OK_STATUS)
        text = f"graded {self.graded}, failed {self.failed}"
        text += f" ({failed})" if failed else ""
        text += f", skipped {self.skipped} (already graded)"
        if self.to_retry:
            text += (
                f"; {self.to_retry} not graded to the end (timeout, killed, error): rerun to retry"
            )
        return text
