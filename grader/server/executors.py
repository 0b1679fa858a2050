"""Where the server's gradings run: a Dask client (:class:`DaskExecutor`: a local cluster of
single-threaded worker processes, or an existing scheduler), or any ``concurrent.futures``-like
executor (tests). The dispatcher submits ``grader.bounded.grade_bounded`` with a
``grader.job.GradingJob`` to it, the same job ``grader grade`` grades: the notebook goes by value
and the outcome comes back by value, so a remote Dask worker needs no disk shared with the server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class DaskExecutor:
    """A Dask client as an executor: a local cluster of ``jobs`` single-threaded worker processes,
    or an existing scheduler. ``pure=False``: two gradings of the same bytes are two tasks."""

    def __init__(self, scheduler: str | None = None, jobs: int = 1) -> None:
        from distributed import Client, LocalCluster

        for name in list(logging.root.manager.loggerDict):  # Dask logs every connection at INFO
            if name.startswith("distributed"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=15)
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                # no dashboard; its HTTP server still binds, so on a free loopback port rather
                # than 8787, which a second server or another Dask on the machine would hold
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)

    @property
    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, retries=0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
