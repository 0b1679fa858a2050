"""Grade many submissions: discovery (files, folders, LMS zip exports), a local process pool or a
Dask cluster, an append-only journal, and the class outputs rebuilt from it.

Why a journal: a batch of hundreds of 40-second gradings gets interrupted (Ctrl-C, kill -9, a
reboot). Each finished submission is appended to ``DIR/journal.jsonl`` (one line, flushed and
fsynced) *after* its ``results.json`` and ``report.html`` were written atomically, so the journal
never names a result that is not on disk. ``gradebook.csv`` and ``index.html`` are derived data,
rebuilt from the journal (latest line per id wins), and a rerun skips what the journal already holds
for the same content hash, grader version and settings.

Why the grading job takes bytes and returns data: the same :func:`grade_job` runs in a local worker
process or on a remote Dask worker that shares no file system with the client; only the client
writes into ``DIR``.

Why a lock: two runs appending to one journal and each rewriting the gradebook from its own
memory lose rows. One run at a time holds ``DIR/.grader.lock`` (``flock``) for its whole length;
a second run refuses, naming the holder, or waits (``wait=True``). Only the holder repairs the
journal, and the class outputs are always rebuilt from the journal file, never from memory.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import math
import multiprocessing
import os
import pickle
import re
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from grader import __version__
from grader.files import write_atomically

JOURNAL = "journal.jsonl"
GRADEBOOK = "gradebook.csv"
INDEX = "index.html"
LOCK = ".grader.lock"  # held (flock) by the one run writing into DIR
RESERVED_IDS = frozenset({JOURNAL, GRADEBOOK, INDEX, LOCK})

MAX_NOTEBOOK_BYTES = 20_000_000  # as grader.notebook.DEFAULT_MAX_BYTES: bigger files get "too big"
ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_TOTAL_BYTES = 4 << 30  # declared uncompressed size of the whole archive
ZIP_MAX_RATIO = 200  # declared size / compressed size, for members above 1 MB
# One submission, wall clock: above the training probe's own limit (grader.submission), so a
# slow machine ends a grading with the probe's `timeout` first; both are retried, never a score.
DEFAULT_TIMEOUT = 4800.0
DASK_CONNECT_TIMEOUT = 15.0  # seconds to reach the scheduler before giving up
# Statuses are grader.scoring.Status values (a StrEnum: its members equal these strings).
OK_STATUS = "graded"
# Not a verdict on the learner's code: the machine cut the grading short (timeout), the grading
# process died (killed) or the grader failed (error, e.g. EAGAIN in the grader). Such a row has no
# score, and a rerun grades it again. "crashed" (the learner's own code crashed) is a verdict.
RETRY_STATUSES = frozenset({"timeout", "error", "killed"})

_JUNK = re.compile(r"^(\.|__MACOSX$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)
# Moodle: "Jane Doe_12345_assignsubmission_file_/object_localization.ipynb" (a folder per learner),
# or flattened "Jane Doe_12345_assignsubmission_file_object_localization.ipynb".
_MOODLE_DIR = re.compile(r"^(?P<learner>.+?_\d+)_assign(?:submission|feedback)_[a-z]+_?$")
_MOODLE_FILE = re.compile(
    r"^(?P<learner>.+?_\d+)_assign(?:submission|feedback)_[a-z]+_(?P<orig>.+)$"
)
# Canvas: "doejane_12345_67890_object_localization.ipynb", late ones "doejane_LATE_12345_67890_...".
_CANVAS_FILE = re.compile(r"^(?P<name>[a-z0-9-]+?)(?:_LATE)?_(?P<user>\d+)_\d+_(?P<orig>.+)$")


# --------------------------------------------------------------------------------------------
# Discovery: what is one submission, and its stable id


def safe_id(text: str) -> str:
    """A filesystem- and URL-safe id; accents are folded (José -> Jose) so ids stay readable."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._-") or "submission"


def _stem(name: str) -> str:
    return name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def learner_key(parts: tuple[str, ...]) -> tuple[str, str | None]:
    """(id, the learner folder or None) for a file at ``parts`` relative to a folder or archive.

    LMS naming first (the learner part of a Moodle folder or Canvas file name), then the first
    folder (a learner's folder), then the file name itself.
    """
    for index, part in enumerate(parts[:-1]):
        if match := _MOODLE_DIR.match(part):
            return safe_id(match["learner"]), "/".join(parts[: index + 1])
    name = parts[-1]
    if len(parts) > 1:
        return safe_id(parts[0]), parts[0]
    if match := _MOODLE_FILE.match(name):
        return safe_id(match["learner"]), None
    if match := _CANVAS_FILE.match(name):
        return safe_id(f"{match['name']}_{match['user']}"), None
    return safe_id(_stem(name)), None


@dataclass
class BatchItem:
    """One submission to grade: where its bytes come from and the id its results are filed under."""

    id: str
    source: str  # shown to the instructor: a path, or "archive.zip!member"
    name: str  # the notebook's file name, for the grading job
    path: Path | None = None  # a plain file...
    archive: Path | None = None  # ...or a member of a zip archive
    member: str | None = None
    rejected: str = ""  # not graded: the reason becomes its verdict (unsafe zip member)
    note: str = ""

    def read(self) -> bytes:
        """The submission's bytes, at most one byte over the notebook cap (so "too big" still shows)."""
        if self.rejected:
            return b""
        if self.archive is not None and self.member is not None:
            with zipfile.ZipFile(self.archive) as archive, archive.open(self.member) as handle:
                return handle.read(MAX_NOTEBOOK_BYTES + 1)
        assert self.path is not None
        with self.path.open("rb") as handle:
            return handle.read(MAX_NOTEBOOK_BYTES + 1)


@dataclass
class _File:
    parts: tuple[str, ...]
    make: Callable[[str, str], BatchItem]  # (id, note) -> item


def _group(files: list[_File], origin: str) -> tuple[list[BatchItem], list[str]]:
    """Files of one folder or archive -> submissions: one per learner folder or notebook file."""
    items: list[BatchItem] = []
    notes: list[str] = []
    folders: dict[str, tuple[str, list[_File]]] = {}
    loose: dict[str, list[_File]] = {}
    for file in sorted(files, key=lambda f: f.parts):
        key, folder = learner_key(file.parts)
        if folder is not None:
            folders.setdefault(folder, (key, []))[1].append(file)
        else:
            loose.setdefault(key, []).append(file)
    units = [(key, members, True) for key, members in folders.values()]
    units += [(key, members, False) for key, members in loose.items()]
    for key, members, is_folder in sorted(units, key=lambda unit: unit[0]):
        notebooks = [f for f in members if _is_notebook(f.parts[-1])]
        if len(notebooks) == 1:
            items.append(notebooks[0].make(key, ""))
        elif len(notebooks) > 1:
            note = f"{len(notebooks)} notebooks for {key}: each graded separately"
            notes.append(f"{origin}: {note}")
            for file in notebooks:
                items.append(file.make(f"{key}__{safe_id(_stem(file.parts[-1]))}", note))
        elif is_folder or any(
            _MOODLE_FILE.match(f.parts[-1]) or _CANVAS_FILE.match(f.parts[-1]) for f in members
        ):
            # a learner who handed in no notebook still gets a verdict on what they did hand in
            note = "no notebook handed in: graded " + members[0].parts[-1]
            items.append(members[0].make(key, note))
        else:
            notes.append(f"{origin}: ignored {'/'.join(members[0].parts)} (not a notebook)")
    return items, notes


def _folder_files(root: Path) -> list[_File]:
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(_JUNK.match(part) or part == ".ipynb_checkpoints" for part in parts):
            continue
        if path.is_symlink() or not path.is_file():
            continue  # a symlink could point anywhere: only real files are submissions
        if len(parts) == 1 and path.suffix.lower() == ".zip":
            continue  # handled as an archive of its own
        files.append(
            _File(
                parts,
                lambda ident, note, p=path: BatchItem(ident, str(p), p.name, path=p, note=note),
            )
        )
    return files


def _member_parts(name: str) -> tuple[str, ...]:
    """A member name as path parts, with nothing that could climb out ("..", "/", drive letters)."""
    parts = re.split(r"[\\/]+", name)
    return tuple(p for p in parts if p not in ("", ".", "..") and not re.match(r"^[A-Za-z]:$", p))


def _zip_files(archive: Path) -> tuple[list[_File], list[str]]:
    """Members of an LMS export, read in memory only (never extracted), with size and ratio caps."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        return [], [f"{archive}: not a readable zip archive ({error})"]
    if len(infos) > ZIP_MAX_MEMBERS:
        return [], [f"{archive}: refused, {len(infos)} members (cap {ZIP_MAX_MEMBERS})"]
    declared = sum(info.file_size for info in infos)
    if declared > ZIP_MAX_TOTAL_BYTES:
        return [], [f"{archive}: refused, {declared >> 20} MB uncompressed (cap 4 GB)"]
    files: list[_File] = []
    entries = [(info, _member_parts(info.filename)) for info in infos if not info.is_dir()]
    entries = [(info, parts) for info, parts in entries if parts]
    entries = [
        (info, parts)
        for info, parts in entries
        if not any(_JUNK.match(p) or p == ".ipynb_checkpoints" for p in parts)
    ]
    tops = {parts[0] for _, parts in entries if len(parts) > 1}
    if len(tops) == 1 and all(len(parts) > 1 for _, parts in entries):
        # one wrapping folder ("Assignment 1-12345/...") is the export's, not a learner's, when it
        # holds learner folders or several notebooks; "jane/x.ipynb" alone stays Jane's folder
        inner = [parts[1:] for _, parts in entries]
        several = sum(1 for parts in inner if _is_notebook(parts[-1])) > 1
        if not _MOODLE_DIR.match(tops.pop()) and (several or any(len(p) > 1 for p in inner)):
            entries = [(info, parts[1:]) for info, parts in entries]
    for info, parts in entries:
        reason = ""
        if info.flag_bits & 0x1:
            reason = "the file is encrypted in the archive"
        elif stat.S_ISLNK(info.external_attr >> 16):
            reason = "the file is a symbolic link in the archive"
        elif info.file_size > (1 << 20) and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            reason = "the file's compression ratio is suspicious (a zip bomb?)"
        source = f"{archive}!{info.filename}"
        name = _member_parts(parts[-1])[-1] if parts else "submission"

        def make(ident: str, note: str, info=info, source=source, name=name, reason=reason):
            if reason:
                return BatchItem(ident, source, name, rejected=f"Not graded: {reason}.", note=note)
            return BatchItem(ident, source, name, archive=archive, member=info.filename, note=note)

        files.append(_File(parts, make))
    return files, []


def discover(paths: Iterable[Path]) -> tuple[list[BatchItem], list[str]]:
    """Submissions from notebooks, folders and zip archives, with unique ids; and notes to show.

    Duplicate ids are never overwritten: the first source (in argument, then name order) keeps the
    id, later ones get ``<id>__2``, ``<id>__3``... and a note saying so.
    """
    items: list[BatchItem] = []
    notes: list[str] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found, why = _group(_folder_files(path), str(path))
            items += found
            notes += why
            archives = sorted(p for p in path.iterdir() if p.suffix.lower() == ".zip")
            for archive in (p for p in archives if p.is_file() and not p.is_symlink()):
                files, why = _zip_files(archive)
                found, more = _group(files, str(archive))
                items += found
                notes += why + more
        elif path.is_file() and path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            files, why = _zip_files(path)
            found, more = _group(files, str(path))
            items += found
            notes += why + more
        elif path.is_file():
            ident = learner_key((path.name,))[0]
            items.append(BatchItem(ident, str(path), path.name, path=path))
        else:
            notes.append(f"{path}: not found")
    seen: dict[str, BatchItem] = {}
    for item in items:
        ident, number = item.id, 1
        while ident in seen or ident in RESERVED_IDS:
            number += 1
            ident = f"{item.id}__{number}"
        if ident != item.id:
            first = seen.get(item.id)
            why = f"duplicate id {item.id}" + (f" (also {first.source})" if first else "")
            notes.append(f"{item.source}: {why}: graded as {ident}")
            item.note = "; ".join(filter(None, [item.note, f"{why}: graded as {ident}"]))
            item.id = ident
        seen[ident] = item
    return items, notes


# --------------------------------------------------------------------------------------------
# The grading job: runs in a local worker process or on a Dask worker


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, by value: no path is shared with the client."""

    id: str
    name: str
    data: bytes
    content_hash: str
    sandbox_mode: str
    memory_mb: int
    slots: int | None = None  # concurrent sandboxes on the machine; None: ask Dask
    rejected: str = ""
    hidden_seed: int | None = None  # the client's course secret, by value (see grader.secret)


def checks_digest() -> str:
    """A digest of the hidden checks, recorded per row: which checks graded it (resume keys on the
    grader version only, so editing a check needs a version bump or ``--force``)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent / "checks"
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _host_slots(slots: int | None) -> int:
    """How many sandboxes may run at once on this machine: the client's -j locally; on Dask, all
    Dask worker threads on this host (``--nworkers 2 --nthreads 1`` -> 2)."""
    if slots is not None:
        return max(1, slots)
    found = 1
    with contextlib.suppress(Exception):  # not on a Dask worker, or the scheduler is unreachable
        from distributed import get_client, get_worker

        worker = get_worker()
        found = max(1, worker.state.nthreads)
        host = worker.address.rsplit(":", 1)[0]
        workers = get_client().scheduler_info(n_workers=-1)["workers"]
        here = [w["nthreads"] for a, w in workers.items() if a.rsplit(":", 1)[0] == host]
        found = max(found, sum(here))
    return found


def job_limits(memory_mb: int, slots: int) -> Any:
    """Sandbox limits for one of ``slots`` concurrent sandboxes on a machine.

    TensorFlow gets the same thread count whatever ``slots`` is (``Limits.threads``): reductions
    split over another number of threads sum in another order, and the same seed then trained to
    IoU 0.932 with 2 threads but 0.927 with 1 (measured). A score must not depend on ``-j``, so
    parallel gradings share the cores instead. Each sandbox has its own uid and cgroup
    (``grader.tenancy``), so the process limit is per submission and does not grow with slots.
    The wire takes the wire module's message cap (8x the largest reply a probe needs): each
    concurrent grading's trusted process holds at most one such message from its worker."""
    from grader import wire
    from grader.sandbox import Limits

    del slots  # kept in the signature: callers size other things (Dask) by it
    return Limits(address_space_mb=memory_mb, array_mb=wire.MAX_MESSAGE_BYTES >> 20)


# pytest and the report's matplotlib are not thread-safe: one process grades one submission at a
# time (a local slot runs one job; on Dask each job runs in a child process, grade_job_bounded)
_GRADING_LOCK = threading.Lock()


def _failure_prefixes() -> dict[str, str]:
    """The opening words of the messages grader.submission writes for each probe failure."""
    prefixes: dict[str, str] = {}
    with contextlib.suppress(Exception):
        from grader.submission import ProbeFailure, describe_failure

        for kind in ("crashed", "timeout", "load_error"):
            text = describe_failure(ProbeFailure(kind, "\x00"), "\x01")
            prefixes[kind] = re.split("[\x00\x01]", text)[0]
    return prefixes


def _status(document: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of a graded submission: graded, or why it could not be graded properly.

    ``extra_data.status`` and ``status_message`` when the document has them; documents written
    before they existed get their status from the messages' wording.
    """
    extra = document.get("extra_data", {})
    if extra.get("status"):
        return str(extra["status"]), _first_line(str(extra.get("status_message") or ""))
    if str(extra.get("isolation", "")).startswith("none (not run)"):
        return "unreadable", _first_line(document.get("output", "")).removeprefix(
            "Your file could not be graded: "
        )
    found: dict[str, str] = {}
    for kind, prefix in _failure_prefixes().items():
        for test in document.get("tests", []):
            if prefix and test.get("output", "").startswith(prefix):
                found.setdefault(kind, _first_line(test["output"]))
    for kind in ("crashed", "timeout", "load_error"):
        if kind in found:
            return kind, found[kind]
    return OK_STATUS, ""


def _first_line(text: str, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def grade_job(job: Job) -> dict[str, Any]:
    """Grade one submission from its bytes; return results.json, report HTML and a status. Never
    raises: a grader bug becomes status "error" for this submission only."""
    start_wall, start_cpu = time.perf_counter(), _cpu_seconds()
    outcome: dict[str, Any] = {
        "host": socket.gethostname(),
        "grader_version": __version__,
        "checks_digest": checks_digest(),
    }
    try:
        from grader.report import render_report
        from grader.scoring import to_gradescope

        limits = job_limits(job.memory_mb, _host_slots(job.slots))
        if job.rejected:
            result = _rejected_result(job.id, job.rejected)
        else:
            from grader.grade import grade_notebook
            from grader.secret import using_seed

            seeded = (
                using_seed(job.hidden_seed)
                if job.hidden_seed is not None
                else contextlib.nullcontext()
            )
            with (
                _GRADING_LOCK,
                seeded,
                tempfile.TemporaryDirectory(prefix="objloc-batch-") as tmp,
            ):
                path = Path(tmp) / (safe_id(job.name) if job.name else "submission.ipynb")
                path.write_bytes(job.data)
                result = grade_notebook(
                    path,
                    sandbox_mode=job.sandbox_mode,
                    limits=limits,
                    hidden_seed=job.hidden_seed,
                )
        result.submission_id = job.id
        result.extra["submission_sha256"] = job.content_hash
        result.extra["threads"] = limits.threads
        document = to_gradescope(result)
        status, error = _status(document)
        if job.rejected:
            status, error = "rejected", job.rejected
        outcome |= {
            "document": document,
            "report_html": render_report(result),
            "status": status,
            "error": error,
        }
    except Exception as exc:  # a grader bug: this row says so, the batch goes on
        outcome |= {
            "status": "error",
            "error": f"grader error: {type(exc).__name__}: {exc}"[:500],
            "traceback": traceback.format_exc()[-4000:],
        }
    outcome["wall_seconds"] = round(time.perf_counter() - start_wall, 2)
    outcome["cpu_seconds"] = round(_cpu_seconds() - start_cpu, 2)
    return outcome


def _rejected_result(ident: str, message: str) -> Any:
    """A verdict for a file that is not even handed to the notebook reader (unsafe zip member)."""
    from grader import grade
    from grader.scoring import GradingResult

    checks = grade.run_checks(grade.UnreadableSubmission(message))
    return GradingResult(
        submission_id=ident,
        checks=checks,
        execution_time=0.0,
        output=f"Your file could not be graded: {message}",
        extra={
            "grader_version": __version__,
            "isolation": "none (not run)",
            "status": "rejected",
            "status_message": message,
        },
        artifacts={"problems": [message], "pictures": {}, "captured_output": ""},
    )


# --------------------------------------------------------------------------------------------
# Journal: the source of truth


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """The journal's entries, latest line per id; read-only, so safe beside a writer.

    A last line without its newline is a write in progress (or torn by a crash): it is skipped,
    never cut; only the writer holding the lock repairs (:class:`Journal`).
    """
    entries: dict[str, dict[str, Any]] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return entries
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                entries[entry["id"]] = entry  # the latest line per id wins
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

    def append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries[entry["id"]] = entry


# --------------------------------------------------------------------------------------------
# Derived outputs: gradebook.csv and index.html


def _check_columns(entries: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(check name, column label) ordered by check number."""
    numbers: dict[str, str] = {}
    for entry in entries:
        for check in entry.get("checks", []):
            numbers.setdefault(check["name"], check.get("number", ""))

    def order(name: str) -> tuple:
        number = numbers[name]
        return tuple(int(p) if p.isdigit() else 999 for p in number.split(".")), name

    return [(name, f"{numbers[name]} {name}".strip()) for name in sorted(numbers, key=order)]


def _cell(value: Any) -> Any:
    """Spreadsheet-safe text: a learner-controlled string must not start a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def gradebook_csv(entries: list[dict[str, Any]]) -> str:
    columns = _check_columns(entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "id",
            "score",
            "max_score",
            *(label for _, label in columns),
            "status",
            "error",
            "content_hash",
            "grader_version",
            "source",
            "note",
        ]
    )
    for entry in sorted(entries, key=lambda e: e["id"]):
        scores = {check["name"]: check["score"] for check in entry.get("checks", [])}
        writer.writerow(
            [
                _cell(entry["id"]),
                entry.get("score", ""),
                entry.get("max_score", ""),
                *(scores.get(name, "") for name, _ in columns),
                entry.get("status", ""),
                _cell(entry.get("error", "")),
                entry.get("content_hash", ""),
                entry.get("grader_version", ""),
                _cell(entry.get("source", "")),
                _cell(entry.get("note", "")),
            ]
        )
    return buffer.getvalue()


def _histogram(percents: list[float], bins: int = 10) -> list[dict[str, Any]]:
    counts = [0] * bins
    for value in percents:
        counts[min(bins - 1, max(0, int(value // (100 / bins))))] += 1
    top = max(counts) or 1
    width = 100 // bins
    return [
        {
            "label": f"{i * width}–{(i + 1) * width}%",
            "count": count,
            "height": round(120 * count / top, 1),
        }
        for i, count in enumerate(counts)
    ]


def summary_context(entries: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """What index.html shows, as plain data (the template only lays it out and escapes it)."""
    rows = sorted(entries, key=lambda e: e["id"])
    graded = [e for e in rows if e.get("max_score")]
    percents = [100.0 * e["score"] / e["max_score"] for e in graded]
    checks = []
    for name, label in _check_columns(rows):
        verdicts = [c for e in graded for c in e.get("checks", []) if c["name"] == name]
        passed = sum(1 for c in verdicts if c["score"] >= c["max_score"])
        checks.append(
            {
                "label": label,
                "passed": passed,
                "total": len(verdicts),
                "rate": round(100.0 * passed / len(verdicts), 1) if verdicts else 0.0,
            }
        )
    hints: Counter[tuple[str, str]] = Counter()
    for entry in graded:
        for check in entry.get("checks", []):
            if check["score"] < check["max_score"] and check.get("message"):
                hints[(check["name"], _first_line(check["message"], 240))] += 1
    statuses = Counter(e.get("status", "?") for e in rows)
    median = sorted(percents)[len(percents) // 2] if percents else 0.0
    return {
        "title": f"Class summary: {out_dir.name or out_dir}",
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "count": len(rows),
        "statuses": sorted(statuses.items()),
        "mean": round(sum(percents) / len(percents), 1) if percents else 0.0,
        "median": round(median, 1),
        "histogram": _histogram(percents),
        "checks": checks,
        "hints": [
            {"check": check, "message": message, "count": count}
            for (check, message), count in hints.most_common(12)
        ],
        "slowest": sorted(rows, key=lambda e: -float(e.get("execution_time") or 0.0))[:10],
        "rows": rows,
        "version": __version__,
    }


def render_index(entries: list[dict[str, Any]], out_dir: Path) -> str:
    from grader.report import _ENV

    return _ENV.get_template("index.html.j2").render(**summary_context(entries, out_dir))


def write_class_outputs(out_dir: Path, entries: list[dict[str, Any]]) -> None:
    """gradebook.csv and index.html from journal entries, each written atomically."""
    write_atomically(out_dir / GRADEBOOK, gradebook_csv(entries).encode("utf-8"))
    write_atomically(out_dir / INDEX, render_index(entries, out_dir).encode("utf-8"))


def rebuild(out_dir: Path) -> int:
    """Rebuild the class outputs from the journal file; returns the number of rows. The caller
    holds the folder's lock (:func:`run_batch` does)."""
    entries = list(read_journal(out_dir / JOURNAL).values())
    write_class_outputs(out_dir, entries)
    return len(entries)


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


# --------------------------------------------------------------------------------------------
# Runners: where jobs execute


def _cut_short(timeout: float | None, code: int | None, started: float) -> dict[str, Any]:
    """The outcome of a grading process stopped after ``timeout`` s, or (None) dead on its own."""
    if timeout is not None:
        outcome = {
            "status": "timeout",
            "error": f"grading took longer than {timeout:g} s and was stopped "
            "(not a verdict: a rerun grades it again)",
        }
    else:
        outcome = {
            "status": "killed",
            "error": f"the grading process died (exit code {code}): out of memory?",
        }
    elapsed = round(time.monotonic() - started, 2)
    return outcome | {"host": socket.gethostname(), "wall_seconds": elapsed}


def _job_main(job_file: str, outcome_file: str) -> None:  # pragma: no cover - a child process
    """Run by :func:`grade_job_bounded` in a process of its own."""
    job = pickle.loads(Path(job_file).read_bytes())  # written by our own parent process
    write_atomically(Path(outcome_file), pickle.dumps(grade_job(job)))


def grade_job_bounded(job: Job, timeout: float) -> dict[str, Any]:
    """:func:`grade_job` in a child process, stopped after ``timeout`` s with status timeout:
    what a Dask worker runs, so that the wall-clock limit holds there too. A plain subprocess,
    because Dask's worker processes are daemons, which multiprocessing forbids to have children."""
    job = dataclasses.replace(job, slots=_host_slots(job.slots))  # the Dask worker knows its host
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="objloc-job-") as tmp:
        job_file, outcome_file = Path(tmp) / "job.pickle", Path(tmp) / "outcome.pickle"
        job_file.write_bytes(pickle.dumps(job))
        code = "import sys; from grader.batch import _job_main; _job_main(*sys.argv[1:])"
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(job_file), str(outcome_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the sandboxes it started go with it
        )
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            return _cut_short(timeout, None, started)
        finally:  # also when the task is cancelled: nothing of the grading outlives it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if returncode == 0 and outcome_file.is_file():
            return pickle.loads(outcome_file.read_bytes())
        return _cut_short(None, returncode, started)


Outcome = dict[str, Any]
OnDone = Callable[[Job, Outcome], None]


def _slot_main(conn: Connection) -> None:  # pragma: no cover - runs in a worker process
    """A local worker: one job at a time. Ctrl-C is the client's business (it kills us)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(grade_job(job))


@dataclass
class _Slot:
    process: Any = None
    conn: Connection | None = None
    job: Job | None = None
    started: float = 0.0


class LocalPool:
    """N long-lived worker processes, one job each at a time.

    Why not ProcessPoolExecutor: when one worker dies (the kernel's OOM killer) or hangs, the
    executor breaks every job in flight. Here the dead or overdue worker's own job gets the verdict
    "killed" or "timeout", the worker is replaced, and the others carry on.
    """

    def __init__(self, workers: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot() for _ in range(max(1, workers))]
        self.timeout = timeout

    def _start(self, slot: _Slot) -> None:
        parent, child = self.context.Pipe()
        slot.process = self.context.Process(
            target=_slot_main, args=(child,), name="grader-batch-worker", daemon=True
        )
        slot.process.start()
        child.close()
        slot.conn = parent

    def _stop(self, slot: _Slot) -> None:
        if slot.process is not None and slot.process.is_alive():
            slot.process.kill()
        if slot.process is not None:
            slot.process.join(5)
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.job = None, None, None

    def _send(self, slot: _Slot, job: Job) -> None:
        for _ in range(2):
            if slot.process is None or not slot.process.is_alive():
                self._stop(slot)
                self._start(slot)
            try:
                assert slot.conn is not None
                slot.conn.send(job)
                slot.job, slot.started = job, time.monotonic()
                return
            except (BrokenPipeError, OSError):
                self._stop(slot)
        raise RuntimeError("cannot start a local grading worker")

    def _collect(self, slot: _Slot, ready: list[Any], on_done: OnDone) -> None:
        assert slot.job is not None and slot.conn is not None
        job = slot.job
        outcome: Outcome | None = None
        if slot.conn in ready or slot.conn.poll():
            try:
                outcome = slot.conn.recv()
            except (EOFError, OSError):
                outcome = None
            if outcome is not None:
                slot.job = None
                on_done(job, outcome)
                return
        alive = slot.process is not None and slot.process.is_alive()
        if alive and time.monotonic() - slot.started < self.timeout:
            return
        code = None if alive else slot.process.exitcode
        slot_started = slot.started
        self._stop(slot)
        on_done(job, _cut_short(self.timeout if alive else None, code, slot_started))

    def run(self, jobs: Iterator[Job], on_done: OnDone) -> None:
        try:
            while True:
                for slot in self.slots:
                    if slot.job is None and (job := next(jobs, None)) is not None:
                        self._send(slot, job)
                busy = [slot for slot in self.slots if slot.job is not None]
                if not busy:
                    break
                handles = [s.conn for s in busy] + [s.process.sentinel for s in busy]
                ready = wait(handles, timeout=1.0)
                for slot in busy:
                    self._collect(slot, ready, on_done)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; an interrupted job's worker is killed (its sandbox dies with it)."""
        for slot in self.slots:
            if slot.job is None and slot.conn is not None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        for slot in self.slots:
            if slot.process is not None and slot.job is None:
                slot.process.join(5)
            self._stop(slot)


class DaskRunner:
    """Jobs on a Dask distributed cluster; at most a few per worker thread are in flight, so the
    client never ships every notebook at once."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        from distributed import Client

        self.client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        self.timeout = timeout

    def run(self, jobs: Iterator[Job], on_done: OnDone) -> None:
        from distributed import as_completed

        window = max(2, 2 * sum(self.client.nthreads().values()))
        running: dict[str, tuple[Any, Job]] = {}
        pending = as_completed()

        def submit() -> None:
            job = next(jobs, None)
            if job is None:
                return
            key = f"grade-{job.id}-{os.urandom(4).hex()}"
            future = self.client.submit(
                grade_job_bounded, job, self.timeout, key=key, pure=False, retries=0
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
                else:
                    error = future.exception()
                    killed = type(error).__name__ == "KilledWorker"
                    outcome = {
                        "status": "killed" if killed else "error",
                        "error": (
                            "the Dask worker grading it died repeatedly"
                            if killed
                            else f"grader error: {type(error).__name__}: {error}"[:500]
                        ),
                    }
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

    def update(self, entry: dict[str, Any]) -> None:
        self.done += 1
        self.counts["graded" if entry["status"] == OK_STATUS else "failed"] += 1
        if self.bar is not None:
            self.bar.set_postfix(
                graded=self.counts["graded"], failed=self.counts["failed"], refresh=False
            )
            self.bar.update(1)
            return
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = f", ETA {_clock(elapsed / self.done * left)}" if left else ""
        score = f"{entry['score']:g}/{entry['max_score']:g}" if entry.get("max_score") else "-"
        error = f": {_first_line(entry['error'], 100)}" if entry.get("error") else ""
        print(
            f"[{self.done}/{self.total}] {entry['id']}: {score} {entry['status']}{error} "
            f"({entry.get('execution_time', 0):.0f} s{eta})",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    seconds = math.ceil(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --------------------------------------------------------------------------------------------
# The batch


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


def settings_of(sandbox_mode: str, memory_mb: int, hidden_seed: int | None = None) -> dict:
    """The settings a verdict depends on (not -j or the scheduler: those only change speed). The
    hidden seed enters as a digest: the journal must not hold the secret."""
    settings: dict[str, Any] = {"sandbox": sandbox_mode, "memory_mb": memory_mb}
    if hidden_seed is not None:
        digest = hashlib.sha256(f"objloc-hidden-seed:{hidden_seed}".encode()).hexdigest()
        settings["hidden_data"] = digest[:16]
    return settings


def _up_to_date(entry: dict[str, Any] | None, digest: str, settings: dict, out_dir: Path) -> bool:
    return (
        entry is not None
        and entry.get("content_hash") == digest
        and entry.get("grader_version") == __version__
        and entry.get("settings") == settings
        and entry.get("status") not in RETRY_STATUSES
        and (not entry.get("report") or (out_dir / entry["id"] / "results.json").is_file())
    )


def run_batch(
    items: list[BatchItem],
    out_dir: Path,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    sandbox_mode: str = "auto",
    memory_mb: int = 4096,
    timeout: float = DEFAULT_TIMEOUT,
    tty: bool | None = None,
    stream: Any = None,
    wait: bool = False,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> BatchSummary:
    """Grade ``items`` into ``out_dir``, skipping what the journal already holds unless ``force``.

    Holds the folder's lock throughout: raises :class:`OutDirBusy` when another run holds it,
    unless ``wait``. Raises KeyboardInterrupt after writing the class outputs when interrupted;
    every submission that finished before is in the journal, the gradebook and the summary.
    """
    from grader.secret import load_hidden_seed

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
    tty: bool | None,
    stream: Any,
) -> BatchSummary:
    journal = Journal(out_dir / JOURNAL)  # repairs: only under the lock
    settings = settings_of(sandbox_mode, memory_mb, hidden_seed)
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
        summary.statuses[entry["status"]] += 1
        if entry["status"] == OK_STATUS:
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


def _entry(job: Job, item: BatchItem, outcome: Outcome, settings: dict) -> dict[str, Any]:
    """One journal line. A row whose grading did not run to the end (a retried status) carries
    no score and no check results: it is not a verdict on the learner's code."""
    status = outcome.get("status", "error")
    document = (outcome.get("document") or {}) if status not in RETRY_STATUSES else {}
    return {
        "id": job.id,
        "source": item.source,
        "content_hash": job.content_hash,
        "grader_version": outcome.get("grader_version", __version__),
        "settings": settings,
        "checks_digest": outcome.get("checks_digest", ""),  # which hidden checks graded it
        "status": status,
        "error": outcome.get("error", ""),
        "note": item.note,
        "score": document.get("score"),
        "max_score": document.get("max_score"),
        "checks": [
            {
                "number": test.get("number", ""),
                "name": test.get("name", ""),
                "score": test.get("score", 0.0),
                "max_score": test.get("max_score", 0.0),
                "message": test.get("output", ""),
            }
            for test in document.get("tests", [])
        ],
        "execution_time": round(float(outcome.get("wall_seconds") or 0.0), 2),
        "cpu_seconds": outcome.get("cpu_seconds"),
        "host": outcome.get("host", ""),
        "isolation": document.get("extra_data", {}).get("isolation", ""),
        "report": "document" in outcome,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


__all__ = [
    "BatchInterrupted",
    "BatchItem",
    "BatchSummary",
    "DaskRunner",
    "Job",
    "Journal",
    "LocalPool",
    "LockHolder",
    "OutDirBusy",
    "discover",
    "grade_job",
    "gradebook_csv",
    "learner_key",
    "out_dir_lock",
    "read_journal",
    "rebuild",
    "run_batch",
    "safe_id",
]
