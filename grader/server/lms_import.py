"""Bulk import of an LMS zip export (Moodle "Download all submissions", Canvas "Download
Submissions") into the grading queue, so a course can mix uploads to the server and LMS exports.

Why this shape. Reading the archive is ``grader.batch.discovery.discover``'s job (members read in
memory, never extracted; caps on members, size and compression ratio; unsafe members rejected),
so the server reads exports exactly as ``grader grade`` does. Each notebook found is then matched
to ONE roster learner, or listed as unmatched: a guess would file one learner's work under
another's name. What an export's file names give, and what it is matched against:

- Moodle ``Jane Doe_12345_assignsubmission_file_...``: the number (Moodle's participant id)
  against the roster columns ``lms_id``/``moodle_id``, then the full name against ``name``;
- Canvas ``doejane_12345_67890_...`` (``_LATE_`` when late): the number (Canvas's user id)
  against ``lms_id``/``canvas_id``, then the compact sortable name ("doejane") against the
  roster name written last-name-first (or ``sortable_name``);
- anything else (``alice/notebook.ipynb``, ``alice.ipynb``): the folder or file name against the
  roster id, the email, then the name.

A name or number that fits several learners is unmatched, with the candidates named. Several
notebooks for one learner are not imported (which one is final is not for the server to guess).

Each match enters the normal path (``submissions.create_submission``: stored, then queued, with
an ``imported`` audit event). The resubmission policy (per day, cooldown) does NOT apply: the
LMS already took these submissions under its own rules, and refusing one would lose work a
learner handed in. Once stored, an imported submission counts like any other for the learner's
own later uploads (it is a grading of theirs). An import is idempotent: a notebook identical (SHA-256) to one of the
learner's stored submissions is skipped. The late flag is the export's (Canvas marks late
files; Moodle's file names say nothing, so Moodle imports are not late). The uploaded archive is
kept in ``DIR/imports/`` (mode 0600) as the submissions' provenance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from grader.batch.discovery import (
    _CANVAS_FILE,
    _MOODLE_DIR,
    _MOODLE_FILE,
    BatchItem,
    _member_parts,
    discover,
)
from grader.server.assignments import of_assignment
from grader.server.db import Database
from grader.server.models import Learner, Submission, utcnow
from grader.server.settings import AssignmentPolicy, Settings
from grader.server.submissions import Refused, create_submission

IMPORTS_DIR = "imports"
IMPORT_MAX_MB = 500  # an export of a few hundred notebooks with their output images
ID_COLUMNS = ("lms_id", "moodle_id", "canvas_id")


@dataclass
class ImportReport:
    imported: list[tuple[str, int, str]] = field(default_factory=list)  # learner, number, source
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # source, why
    refused: list[tuple[str, str]] = field(default_factory=list)  # source, why
    skipped: list[tuple[str, str]] = field(default_factory=list)  # source, why
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Clues:
    """What an export's member path says about whose it is."""

    number: str = ""  # Moodle participant id / Canvas user id
    name: str = ""  # Moodle's full name
    compact: str = ""  # Canvas's compact sortable name
    plain: tuple[str, ...] = ()  # the folder and the file's name (no LMS naming)
    late: bool = False


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _compact(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", folded)


def clues(item: BatchItem) -> Clues:
    parts = _member_parts(item.member or item.source)
    for part in parts[:-1]:
        if match := _MOODLE_DIR.match(part):
            name, _, number = match["learner"].rpartition("_")
            return Clues(number=number, name=name)
    if not parts:
        return Clues()
    last = parts[-1]
    if match := _MOODLE_FILE.match(last):
        name, _, number = match["learner"].rpartition("_")
        return Clues(number=number, name=name)
    if match := _CANVAS_FILE.match(last):
        late = bool(re.match(r"^[a-z0-9-]+?_LATE_", last))
        return Clues(number=match["user"], compact=match["name"], late=late)
    stem = last.rsplit(".", 1)[0]
    return Clues(plain=(parts[-2], stem) if len(parts) > 1 else (stem,))


class Roster:
    """Look-ups of roster learners by what exports carry."""

    def __init__(self, learners: list[Learner]) -> None:
        self.learners = learners

    def _find(self, test) -> list[Learner]:
        return [learner for learner in self.learners if test(learner)]

    def by_number(self, number: str) -> list[Learner]:
        return self._find(
            lambda p: any(str((p.extra or {}).get(c, "")).strip() == number for c in ID_COLUMNS)
        )

    def by_name(self, name: str) -> list[Learner]:
        return self._find(lambda p: bool(p.name) and _fold(p.name) == _fold(name))

    def by_compact(self, compact: str) -> list[Learner]:
        def sortable(learner: Learner) -> str:
            given = (learner.extra or {}).get("sortable_name")
            if given:
                return _compact(str(given))
            words = (learner.name or "").split()
            return _compact("".join(words[-1:] + words[:-1]))

        return self._find(lambda p: bool(p.name) and sortable(p) == compact)

    def by_plain(self, text: str) -> list[Learner]:
        folded = _fold(text)
        for test in (
            lambda p: p.id == folded,
            lambda p: bool(p.email) and _fold(p.email) == folded,
            lambda p: bool(p.name) and _fold(p.name) == folded,
        ):
            found = self._find(test)
            if found:
                return found
        return []

    def match(self, found: Clues) -> tuple[Learner | None, str]:
        """The one learner these clues name, or None and why not."""
        attempts: list[tuple[str, list[Learner]]] = []
        if found.number:
            attempts.append((f"LMS id {found.number}", self.by_number(found.number)))
        if found.name:
            attempts.append((f"name {found.name!r}", self.by_name(found.name)))
        if found.compact:
            attempts.append((f"name {found.compact!r}", self.by_compact(found.compact)))
        for plain in found.plain:
            attempts.append((repr(plain), self.by_plain(plain)))
        for what, learners in attempts:
            if len(learners) == 1:
                return learners[0], ""
            if len(learners) > 1:
                names = ", ".join(sorted(learner.id for learner in learners))
                return None, f"{what} fits several learners ({names}): not guessed"
        if not attempts:
            return None, "the file name says nothing of whose it is"
        return None, " and ".join(what for what, _ in attempts) + ": not on the roster"


def keep_archive(data_dir: Path, data_stream, now: dt.datetime) -> Path:
    """Write the uploaded archive to ``DIR/imports/<time>-<random>.zip`` (mode 0600)."""
    folder = Path(data_dir) / IMPORTS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}.zip"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        while chunk := data_stream.read(1 << 20):
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def import_archive(
    db: Database,
    data_dir: Path,
    settings: Settings,
    archive: Path,
    *,
    actor: str = "instructor",
    now: dt.datetime | None = None,
    assignment: AssignmentPolicy | None = None,
) -> ImportReport:
    """Queue every notebook of ``archive`` that matches one roster learner as a submission of
    ``assignment`` (default: the course's first); report the rest."""
    policy = assignment or settings.course_assignments()[0]
    report = ImportReport()
    items, notes = discover([archive])
    report.notes = [note.replace(str(archive), archive.name) for note in notes]
    with db.read() as session:
        roster = Roster(list(session.scalars(select(Learner).order_by(Learner.id)).all()))
    matched: dict[str, list[tuple[BatchItem, Clues]]] = {}
    for item in items:
        source = item.member or item.source
        if item.rejected:
            report.refused.append((source, item.rejected))
            continue
        found = clues(item)
        learner, why = roster.match(found)
        if learner is None:
            report.unmatched.append((source, why))
        else:
            matched.setdefault(learner.id, []).append((item, found))
    for learner_id, entries in sorted(matched.items()):
        if len(entries) > 1:
            for item, _ in entries:
                why = f"{len(entries)} notebooks for {learner_id}: upload the one to grade"
                report.refused.append((item.member or item.source, why))
            continue
        item, found = entries[0]
        source = item.member or item.source
        data = item.read()
        digest = hashlib.sha256(data).hexdigest()
        with db.read() as session:
            same = session.scalar(
                select(Submission.number).where(
                    Submission.learner_id == learner_id,
                    Submission.sha256 == digest,
                    of_assignment(Submission.assignment, settings, policy.name),
                )
            )
        if same is not None:
            report.skipped.append((source, f"same file as {learner_id}'s submission {same}"))
            continue
        try:
            accepted = create_submission(
                db,
                data_dir,
                settings,
                learner_id,
                data,
                now=now or utcnow(),
                imported={"actor": actor, "source": f"{archive.name}!{source}", "late": found.late},
                filename=item.name,
                assignment=policy,
            )
        except Refused as refused:
            report.refused.append((source, refused.message))
            continue
        report.imported.append((learner_id, accepted.number, source))
    return report
