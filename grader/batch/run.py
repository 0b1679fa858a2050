"""The batch itself: :func:`run_batch` holds the output folder's lock, skips what the journal
already holds for the same content, grader version and settings, sends the rest to the local pool
or to Dask, and for each outcome writes ``results.json`` and ``report.html`` atomically, *then*
appends its journal line; the class outputs are rebuilt from the journal as it goes and on the way
out (also on Ctrl-C: :class:`BatchInterrupted`). The one module that knows every stage; no stage
module imports it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.batch.common import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    JOURNAL,
    OK_STATUS,
    RETRY_STATUSES,
)
from grader.batch.dask_runner import DaskRunner
from grader.batch.discovery import BatchItem
from grader.batch.gradebook import rebuild
from grader.batch.journal import Journal, JournalCheck, JournalEntry, LockHolder, out_dir_lock
from grader.batch.pools import LocalPool
from grader.batch.progress import BatchSummary, Progress
from grader.job import GradingJob, GradingOutcome, grading_limits
from grader.results.record import RESULTS_FILE

if TYPE_CHECKING:
    from grader.assignment import Assignment

# --------------------------------------------------------------------------------------------
# The batch


def settings_of(
    sandbox_mode: str,
    memory_mb: int,
    hidden_seed: int | None = None,
    assignment: str | None = None,
) -> dict:
    """The settings a verdict depends on (not -j or the scheduler: those only change speed). The
    hidden seed enters as a digest: the journal must not hold the secret."""
    settings: dict[str, Any] = {"sandbox": sandbox_mode, "memory_mb": memory_mb}
    if assignment is not None:
        settings["assignment"] = assignment
    if hidden_seed is not None:
        digest = hashlib.sha256(f"objloc-hidden-seed:{hidden_seed}".encode()).hexdigest()
        settings["hidden_data"] = digest[:16]
    return settings


def _up_to_date(entry: JournalEntry | None, digest: str, settings: dict, out_dir: Path) -> bool:
    return (
        entry is not None
        and entry.content_hash == digest
        and entry.grader_version == __version__
        and entry.settings == settings
        and entry.status not in RETRY_STATUSES
        and (not entry.report or (out_dir / entry.id / RESULTS_FILE).is_file())
    )


def run_batch(
    items: list[BatchItem],
    out_dir: Path,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    sandbox_mode: str = "auto",
    memory_mb: int = DEFAULT_MEMORY_MB,
    timeout: float = DEFAULT_TIMEOUT,
    tty: bool | None = None,
    stream: Any = None,
    wait: bool = False,
    on_wait: Callable[[LockHolder], None] | None = None,
    assignment: Assignment | str | None = None,
) -> BatchSummary:
    """Grade ``items`` into ``out_dir``, skipping what the journal already holds unless ``force``.

    Holds the folder's lock throughout: raises :class:`OutDirBusy` when another run holds it,
    unless ``wait``. ``assignment``: an Assignment, its name or its folder; by default the only
    one installed (resolved here, once: every job carries it).
    Raises KeyboardInterrupt after writing the class outputs when interrupted;
    every submission that finished before is in the journal, the gradebook and the summary.
    """
    from grader.assignment import resolve
    from grader.secret import load_hidden_seed

    chosen = resolve(assignment)  # here, so that a bad name fails before any work
    with out_dir_lock(out_dir, wait=wait, on_wait=on_wait):
        hidden_seed = load_hidden_seed()  # once, here: every job carries it by value
        settings = settings_of(sandbox_mode, memory_mb, hidden_seed, chosen.name)
        limits = grading_limits(memory_mb)

        def job_for(item: BatchItem, data: bytes, digest: str, rejected: str) -> GradingJob:
            return GradingJob(
                assignment=chosen,
                notebook=data,
                seed=hidden_seed,
                file_name=item.name,
                learner=item.learner or None,
                submission_id=item.id,
                limits=limits,
                sandbox_mode=sandbox_mode,
                rejected=rejected,
                sha256=digest,
            )

        return _run_locked(
            items,
            out_dir,
            job_for,
            settings,
            workers=max(1, jobs or os.cpu_count() or 1),
            scheduler=scheduler,
            force=force,
            timeout=timeout,
            tty=tty,
            stream=stream,
        )


def _read(item: BatchItem) -> tuple[bytes, str, str]:
    """An item's bytes, their digest (taken once: the job carries it) and why it is not graded
    ("" when it is); a file that cannot be read is rejected with the reason."""
    try:
        data = item.read()
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as error:
        reason = item.rejected or f"The file could not be read ({error})."
        return b"", f"unreadable:{type(error).__name__}", reason
    return data, hashlib.sha256(data).hexdigest(), item.rejected


def _run_locked(
    items: list[BatchItem],
    out_dir: Path,
    job_for: Callable[[BatchItem, bytes, str, str], GradingJob],
    settings: dict,
    *,
    workers: int,
    scheduler: str | None,
    force: bool,
    timeout: float,
    tty: bool | None,
    stream: Any,
) -> BatchSummary:
    journal = Journal(out_dir / JOURNAL)  # repairs: only under the lock
    summary = BatchSummary()
    progress = Progress(len(items), tty=tty, stream=stream)
    by_id = {item.id: item for item in items}
    last_rebuild = time.monotonic()

    def make_jobs() -> Iterator[GradingJob]:
        """A job per item whose journal line is not up to date; each item read and hashed once,
        when a runner asks for its next job (never every notebook in memory at once)."""
        for item in items:
            data, digest, rejected = _read(item)
            if not force and _up_to_date(journal.entries.get(item.id), digest, settings, out_dir):
                summary.skipped += 1
                progress.skip()
                continue
            yield job_for(item, data, digest, rejected)

    def on_done(job: GradingJob, outcome: GradingOutcome) -> None:
        nonlocal last_rebuild
        item = by_id[job.submission_id]
        entry = _entry(job, item, outcome, settings)
        outcome.write(out_dir / job.submission_id)
        journal.append(entry)  # after the files: the journal never names a missing result
        summary.statuses[entry.status] += 1
        if entry.status == OK_STATUS:
            summary.graded += 1
        else:
            summary.failed += 1
        summary.cpu_seconds += float(outcome.cpu_seconds or 0.0)
        progress.update(entry)
        if time.monotonic() - last_rebuild > 10:
            rebuild(out_dir)
            last_rebuild = time.monotonic()

    started = time.monotonic()
    todo = make_jobs()
    try:
        first = next(todo, None)
        if first is not None:  # a runner (a Dask client, worker processes) only for real work
            runner: LocalPool | DaskRunner
            runner = DaskRunner(scheduler, timeout) if scheduler else LocalPool(workers, timeout)
            runner.run(itertools.chain([first], todo), on_done)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()
        summary.wall_seconds = time.monotonic() - started
        rebuild(out_dir)
    if summary.interrupted:
        raise BatchInterrupted(summary)
    return summary


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; carries what was finished (all of it is on disk)."""

    def __init__(self, summary: BatchSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def _entry(
    job: GradingJob, item: BatchItem, outcome: GradingOutcome, settings: dict
) -> JournalEntry:
    """One journal line, from the outcome's record. A row whose grading did not run to the end
    (a retried status) carries no score and no check results: it is not a verdict on the
    learner's code."""
    status = outcome.status
    result = outcome.result if status not in RETRY_STATUSES else None
    return JournalEntry(
        id=job.submission_id,
        source=item.source,
        content_hash=job.sha256,
        grader_version=outcome.result.grader_version if outcome.result else __version__,
        settings=settings,
        checks_digest=outcome.checks_digest,  # which hidden checks graded it
        status=str(status),
        error=outcome.message,
        note=item.note,
        score=result.score if result else None,
        max_score=result.max_score if result else None,
        checks=[
            JournalCheck(check.number, check.name, check.score, check.max_score, check.message)
            for check in (result.checks if result else ())
        ],
        execution_time=round(outcome.wall_seconds, 2),
        cpu_seconds=outcome.cpu_seconds,
        host=outcome.host,
        isolation=result.isolation if result else "",
        report=outcome.result is not None,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
