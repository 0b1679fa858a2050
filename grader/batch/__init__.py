"""Grade many submissions: discovery (files, folders, LMS zip exports), a local process pool or a
Dask cluster, an append-only journal under a one-writer lock, and the class outputs rebuilt from
it. One module per stage, imports flowing one way (``run`` -> ``pools`` / ``dask_runner`` /
``journal`` / ``gradebook`` / ``progress`` -> ``discovery`` -> ``common``); every job is a
``grader.job.GradingJob``, graded by ``grader.bounded.run_job`` (a local worker) or
``grader.bounded.grade_bounded`` (a Dask worker), as everywhere else; this file
only re-exports the names other code uses, so ``from grader.batch import run_batch`` keeps working.
To replace a name in a test, patch the module that looks it up (e.g. ``grader.batch.run.LocalPool``),
not this package.
"""

from __future__ import annotations

from grader.batch.common import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    GRADEBOOK,
    INDEX,
    JOURNAL,
    LOCK,
    OK_STATUS,
    RESERVED_IDS,
    RETRY_STATUSES,
)
from grader.batch.dask_runner import DaskRunner
from grader.batch.discovery import BatchItem, discover, learner_key, safe_id
from grader.batch.gradebook import (
    gradebook_csv,
    rebuild,
    render_index,
    summary_context,
    write_class_files,
)
from grader.batch.journal import (
    Journal,
    JournalCheck,
    JournalEntry,
    LockHolder,
    OutDirBusy,
    out_dir_lock,
    read_journal,
)
from grader.batch.pools import LocalPool
from grader.batch.progress import BatchSummary, Progress
from grader.batch.run import BatchInterrupted, run_batch, settings_of

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "GRADEBOOK",
    "INDEX",
    "JOURNAL",
    "LOCK",
    "OK_STATUS",
    "RESERVED_IDS",
    "RETRY_STATUSES",
    "BatchInterrupted",
    "BatchItem",
    "BatchSummary",
    "DaskRunner",
    "Journal",
    "JournalCheck",
    "JournalEntry",
    "LocalPool",
    "LockHolder",
    "OutDirBusy",
    "Progress",
    "discover",
    "gradebook_csv",
    "learner_key",
    "out_dir_lock",
    "read_journal",
    "rebuild",
    "render_index",
    "run_batch",
    "safe_id",
    "settings_of",
    "summary_context",
    "write_class_files",
]
