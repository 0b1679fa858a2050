"""Run a grading dispatcher in this process until it is killed: the kill -9 test's server.

python -m tests.server.run_dispatcher DATA_DIR DATABASE_URL|- GRADE_FUNCTION dask|threads
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.server.db import open_database
from grader.server.queue import Dispatcher
from grader.server.settings import Settings
from tests.server import fakes

# a long lease: the restarted dispatcher must take the job over because its owner is dead, not
# because the lease ran out
SETTINGS = Settings(sandbox="none", lease_seconds=600, max_attempts=3, jobs=1)


def main(data_dir: str, url: str, grade: str, executor: str) -> None:
    db = open_database(Path(data_dir), None if url == "-" else url)
    dispatcher = Dispatcher(
        db,
        Path(data_dir),
        SETTINGS,
        grade=getattr(fakes, grade),
        executor=ThreadPoolExecutor(1) if executor == "threads" else None,
        capacity=1,
        poll_seconds=0.1,
    )
    dispatcher.start()
    print("dispatcher started", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
