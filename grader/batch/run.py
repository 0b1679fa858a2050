"""The batch itself: :func:`run_batch` holds the output folder's lock, skips what the journal
already holds for the same content, grader version and settings, sends the rest to the local pool
or to Dask, and for each outcome writes ``results.json`` and ``report.html`` atomically, *then*
appends its journal line; the class outputs are rebuilt from the journal as it goes and on the way
out (also on Ctrl-C: :class:`BatchInterrupted`). The one module that knows every stage; no stage
module imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from grader.batch.jobs import Job, Outcome
from grader.batch.journal import Journal, JournalCheck, JournalEntry, LockHolder, out_dir_lock
from grader.batch.pools import LocalPool
from grader.batch.progress import BatchSummary, Progress
from grader.files import write_atomically

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
        and (not entry.report or (out_dir / entry.id / "results.json").is_file())
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
    assignment: str | None = None,
) -> BatchSummary:
    """Grade ``items`` into ``out_dir``, skipping what the journal already holds unless ``force``.

    Holds the folder's lock throughout: raises :class:`OutDirBusy` when another run holds it,
    unless ``wait``. ``assignment``: its name or folder; by default the only one installed.
    Raises KeyboardInterrupt after writing the class outputs when interrupted;
    every submission that finished before is in the journal, the gradebook and the summary.
    """
    from grader.assignment import discover, resolve
    from grader.secret import load_hidden_seed

    chosen = resolve(assignment)  # here, so that a bad name fails before any work
    # Jobs carry it by name when a worker can find it by name (a Dask worker's install), else by
    # its folder.
    key = chosen.name if discover().get(chosen.name) == chosen else str(chosen.folder)
    with out_dir_lock(out_dir, wait=wait, on_wait=on_wait):
        hidden_seed = load_hidden_seed()  # once, here: every job carries it by value
        return _run_locked(
            items,
            out_dir,
            jobs=jobs,
            scheduler=scheduler,
            force=force,
            sandbox_mode=sandbox_mode,
            memory_mb=memory_mb,
            timeout=timeout,
            hidden_seed=hidden_seed,
            assignment=key,
            tty=tty,
            stream=stream,
        )


def _run_locked(
    items: list[BatchItem],
    out_dir: Path,
    *,
    jobs: int | None,
    scheduler: str | None,
    force: bool,
    sandbox_mode: str,
    memory_mb: int,
    timeout: float,
    hidden_seed: int,
    assignment: str,
    tty: bool | None,
    stream: Any,
) -> BatchSummary:
    journal = Journal(out_dir / JOURNAL)  # repairs: only under the lock
    settings = settings_of(sandbox_mode, memory_mb, hidden_seed, assignment)
    summary = BatchSummary()
    cores = os.cpu_count() or 1
    workers = max(1, jobs or cores)
    slots = None if scheduler else workers
    todo: list[tuple[BatchItem, str]] = []
    for item in items:
        try:
            digest = hashlib.sha256(item.read()).hexdigest()
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as error:
            digest = f"unreadable:{type(error).__name__}"
        if not force and _up_to_date(journal.entries.get(item.id), digest, settings, out_dir):
            summary.skipped += 1
        else:
            todo.append((item, digest))
    by_id = {item.id: item for item, _ in todo}
    progress = Progress(len(todo), tty=tty, stream=stream)
    last_rebuild = time.monotonic()

    def make_jobs() -> Iterator[Job]:
        for item, digest in todo:
            try:
                data = item.read()
                digest = hashlib.sha256(data).hexdigest()  # what is graded, even if it changed
            except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as error:
                data, digest = b"", digest
                item.rejected = item.rejected or f"The file could not be read ({error})."
            yield Job(
                id=item.id,
                name=item.name,
                data=data,
                content_hash=digest,
                sandbox_mode=sandbox_mode,
                memory_mb=memory_mb,
                slots=slots,
                rejected=item.rejected,
                hidden_seed=hidden_seed,
                assignment=assignment,
            )

    def on_done(job: Job, outcome: Outcome) -> None:
        nonlocal last_rebuild
        item = by_id[job.id]
        entry = _entry(job, item, outcome, settings)
        if "document" in outcome:
            folder = out_dir / job.id
            document = json.dumps(outcome["document"], indent=2) + "\n"
            write_atomically(folder / "results.json", document.encode("utf-8"))
            write_atomically(folder / "report.html", outcome["report_html"].encode("utf-8"))
        journal.append(entry)  # after the files: the journal never names a missing result
        summary.statuses[entry.status] += 1
        if entry.status == OK_STATUS:
            summary.graded += 1
        else:
            summary.failed += 1
        summary.cpu_seconds += float(outcome.get("cpu_seconds") or 0.0)
        progress.update(entry)
        if time.monotonic() - last_rebuild > 10:
            rebuild(out_dir)
            last_rebuild = time.monotonic()

    started = time.monotonic()
    runner: LocalPool | DaskRunner
    runner = DaskRunner(scheduler, timeout) if scheduler else LocalPool(workers, timeout)
    try:
        if todo:
            runner.run(make_jobs(), on_done)
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


def _entry(job: Job, item: BatchItem, outcome: Outcome, settings: dict) -> JournalEntry:
    """One journal line. A row whose grading did not run to the end (a retried status) carries
    no score and no check results: it is not a verdict on the learner's code."""
    status = outcome.get("status", "error")
    document = (outcome.get("document") or {}) if status not in RETRY_STATUSES else {}
    return JournalEntry(
        id=job.id,
        source=item.source,
        content_hash=job.content_hash,
        grader_version=outcome.get("grader_version", __version__),
        settings=settings,
        checks_digest=outcome.get("checks_digest", ""),  # which hidden checks graded it
        status=status,
        error=outcome.get("error", ""),
        note=item.note,
        score=document.get("score"),
        max_score=document.get("max_score"),
        checks=[
            JournalCheck(
                number=test.get("number", ""),
                name=test.get("name", ""),
                score=test.get("score", 0.0),
                max_score=test.get("max_score", 0.0),
                message=test.get("output", ""),
            )
            for test in document.get("tests", [])
        ],
        execution_time=round(float(outcome.get("wall_seconds") or 0.0), 2),
        cpu_seconds=outcome.get("cpu_seconds"),
        host=outcome.get("host", ""),
        isolation=document.get("extra_data", {}).get("isolation", ""),
        report="document" in outcome,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
