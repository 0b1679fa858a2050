"""Where jobs run on a Dask distributed cluster: :class:`DaskRunner` submits
:func:`grader.bounded.grade_bounded` by reference, keeps only a few jobs per worker thread
in flight (the client never ships every notebook at once), and turns a dead worker into that
job's "killed" row. Apart from the local pool: the two share only the runner interface
(``run(jobs, on_done)``), and ``distributed`` is imported only when a scheduler is given.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from grader.batch.common import DEFAULT_TIMEOUT, OnDone
from grader.bounded import grade_bounded
from grader.job import GradingJob, grader_failed

DASK_CONNECT_TIMEOUT = 15.0  # seconds to reach the scheduler before giving up


class DaskRunner:
    """Jobs on a Dask distributed cluster; at most a few per worker thread are in flight, so the
    client never ships every notebook at once."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        from distributed import Client

        self.client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        self.timeout = timeout

    def run(self, jobs: Iterator[GradingJob], on_done: OnDone) -> None:
        from distributed import as_completed

        window = max(2, 2 * sum(self.client.nthreads().values()))
        running: dict[str, tuple[Any, GradingJob]] = {}
        pending = as_completed()

        def submit() -> None:
            job = next(jobs, None)
            if job is None:
                return
            key = f"grade-{job.submission_id}-{os.urandom(4).hex()}"
            future = self.client.submit(
                grade_bounded, job, self.timeout, key=key, pure=False, retries=0
            )
            running[future.key] = (future, job)
            pending.add(future)

        try:
            for _ in range(window):
                submit()
            for future in pending:
                _, job = running.pop(future.key)
                if future.status == "finished":
                    outcome = future.result()
                else:  # the Dask worker died (KilledWorker), or the task failed
                    outcome = grader_failed(future.exception())
                future.release()
                on_done(job, outcome)
                submit()
        finally:
            with contextlib.suppress(Exception):
                self.client.cancel([future for future, _ in running.values()])
            self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
