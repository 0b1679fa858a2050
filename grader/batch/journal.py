"""The journal, the batch's source of truth, and the lock that gives it one writer.

Why a journal: a batch of hundreds of 40-second gradings gets interrupted (Ctrl-C, kill -9, a
reboot). Each finished submission is appended to ``DIR/journal.jsonl`` (one line, flushed and
fsynced) *after* its ``results.json`` and ``report.html`` were written atomically, so the journal
never names a result that is not on disk; a rerun skips what it already holds for the same
content hash, grader version and settings.

Why a lock: two runs appending to one journal and each rewriting the gradebook from its own
memory lose rows. One run at a time holds ``DIR/.grader.lock`` (``flock``) for its whole length;
a second run refuses, naming the holder, or waits (``wait=True``). Only the holder repairs the
journal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.batch.common import LOCK

# --------------------------------------------------------------------------------------------
# Journal: the source of truth


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of a journal line that are fields of ``cls``; a missing one takes its default."""
    return {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}


@dataclass
class JournalCheck:
    """One check's verdict in a journal line (a test of the row's results.json, in short)."""

    number: str = ""  # "2.1": part 2, check 1
    name: str = ""
    score: float = 0.0
    max_score: float = 0.0
    message: str = ""  # what the learner read (results.json's test output)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalCheck:
        return cls(**_known(cls, data))


@dataclass
class JournalEntry:
    """One line of ``journal.jsonl``: how one submission's latest grading ended.

    :meth:`to_json` gives the line's JSON object, key for key what the journal has always held;
    :meth:`from_json` reads a line back, a key missing from an older line taking its default.
    """

    id: str
    source: str = ""  # where the submission came from (a file, or an archive member)
    content_hash: str = ""  # sha256 of the bytes graded
    grader_version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # grader.batch.settings_of()
    checks_digest: str = ""  # which hidden checks graded it (grader.job.checks_digest)
    status: str = ""  # a grader.results.Status value (a StrEnum: equal to these strings)
    error: str = ""  # one line: why the status is not "graded"
    note: str = ""  # what discovery said of the file (e.g. several notebooks, the one kept)
    score: float | None = None  # None: no verdict (a retried status, or no results.json)
    max_score: float | None = None
    checks: list[JournalCheck] = field(default_factory=list)  # empty when no verdict
    execution_time: float = 0.0  # wall clock of the grading, seconds
    cpu_seconds: float | None = None
    host: str = ""
    isolation: str = ""  # results.json's extra_data.isolation
    report: bool = False  # DIR/<id>/results.json and report.html were written
    finished_at: str = ""  # local time, ISO 8601 with offset

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> bytes:
        """The journal line: sorted keys, UTF-8, one newline."""
        return (json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        entry = cls(**_known(cls, data))
        entry.checks = [JournalCheck.from_json(check) for check in data.get("checks", [])]
        entry.report = bool(entry.report)
        return entry


def read_journal(path: Path) -> dict[str, JournalEntry]:
    """The journal's entries, latest line per id; read-only, so safe beside a writer.

    A last line without its newline is a write in progress (or torn by a crash): it is skipped,
    never cut; only the writer holding the lock repairs (:class:`Journal`).
    """
    entries: dict[str, JournalEntry] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return entries
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            entry = json.loads(line)
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                entries[entry["id"]] = JournalEntry.from_json(entry)  # the latest line per id wins
    return entries


class Journal:
    """``journal.jsonl``, the writer's side: one JSON line per finished submission, appended with
    O_APPEND + fsync. Open it only while holding the folder's lock (:func:`out_dir_lock`): it
    repairs a torn last line, which would cut a line another writer is appending."""

    def __init__(self, path: Path) -> None:
        if path.parent.resolve() not in _HELD:
            raise RuntimeError(f"open {path} for writing only under out_dir_lock({path.parent})")
        self.path = path
        self._repair()
        self.entries = read_journal(path)

    def _repair(self) -> None:
        """Cut a line torn by a crash mid-write, so the next append starts on a line of its own."""
        with contextlib.suppress(FileNotFoundError), self.path.open("rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())

    def append(self, entry: JournalEntry) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, entry.line())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries[entry.id] = entry


# --------------------------------------------------------------------------------------------
# One writer per output folder


@dataclass(frozen=True)
class LockHolder:
    """Who holds an output folder: written into the lock file by the holder."""

    pid: int | None = None
    host: str = ""
    started: str = ""

    @classmethod
    def current(cls) -> LockHolder:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(os.getpid(), socket.gethostname(), started)

    @classmethod
    def parse(cls, text: str) -> LockHolder:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]))
        except (ValueError, KeyError, TypeError):
            return cls()  # it has the lock but has not written its name yet

    def describe(self) -> str:
        if self.pid is None:
            return "another grader run (it is just starting)"
        return f"another grader run (pid {self.pid} on {self.host}, started {self.started})"


class OutDirBusy(RuntimeError):
    """Another run holds the output folder's lock."""

    def __init__(self, out_dir: Path, holder: LockHolder) -> None:
        super().__init__(
            f"{out_dir} is being written by {holder.describe()}; wait for it to finish, or add "
            "--wait to start when it does"
        )
        self.out_dir = out_dir
        self.holder = holder


_HELD: set[Path] = set()  # output folders whose lock this process holds


@contextlib.contextmanager
def out_dir_lock(
    out_dir: Path, *, wait: bool = False, on_wait: Callable[[LockHolder], None] | None = None
) -> Iterator[LockHolder]:
    """Hold ``DIR/.grader.lock`` while the block runs; raise :class:`OutDirBusy` when another run
    holds it, or block until it is free with ``wait``. The lock dies with its process (``flock``),
    so a run killed with -9 leaves no stale lock."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.parse((out_dir / LOCK).read_text(errors="replace"))
            if not wait:
                raise OutDirBusy(out_dir, holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = LockHolder.current()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
        os.fsync(fd)
        _HELD.add(out_dir.resolve())
        try:
            yield me
        finally:
            _HELD.discard(out_dir.resolve())
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
