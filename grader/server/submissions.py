"""Taking a submission: check the file, apply the resubmission policy, store it, queue its grading.

Why all in one transaction: the policy (submissions per UTC day, cooldown between two) is a
read-then-insert, and two uploads of one learner racing each other must not both read "under the
limit". :meth:`Database.write` holds the write lock from the first read (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL locks the learner's row), so the second upload waits, then sees the first.
The notebook is written (and synced) to ``DIR/submissions/<learner>/<n>.ipynb`` inside that
transaction, before its row and its job commit: an acknowledged upload is on disk and queued, and a
file without a row (the transaction failed) is removed or, at worst, ignored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from grader.files import write_atomically
from grader.server import extensions
from grader.server.assignments import of_assignment
from grader.server.db import Database
from grader.server.formatting import fmt_wait
from grader.server.models import AuditEvent, Job, JobStatus, Learner, Submission, utcnow
from grader.server.settings import AssignmentPolicy, Settings

SUBMISSIONS_DIR = "submissions"


class Refused(Exception):
    """An upload refused, with the message to show the learner (and an HTTP status)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Accepted:
    id: int
    number: int
    late: bool
    path: Path


#: Cells and outputs a notebook may hold. A course notebook has a few dozen cells; checking the
#: format costs about 30 microseconds a cell, so the caps keep any upload's check under 0.2 s of a
#: request thread (a 100,000-cell notebook once held one for 6 s).
MAX_CELLS = 2000
MAX_OUTPUTS = 5000
CLEAR_OUTPUTS = (
    "clear the outputs (Jupyter: Edit > Clear Outputs of All Cells), save, and upload again"
)
SAVE_AS_NOTEBOOK = (
    "upload the notebook itself, the file whose name ends in .ipynb (in Jupyter: File > Save, "
    "then pick that file)"
)


def too_large(size: int, settings: Settings) -> str:
    """Why an upload of ``size`` bytes is refused, and what to do about it."""
    return (
        f"the file is {size / 1e6:.1f} MB and the limit is {settings.max_upload_mb:g} MB. "
        f"Big outputs (images, long printouts) make a notebook this large: {CLEAR_OUTPUTS}"
    )


def _plain_kind(text: str, filename: str) -> str:
    """What a file that is not JSON looks like, in a learner's words."""
    head = text.lstrip()[:2000].lower()
    if filename.lower().endswith(".py") or any(
        line.startswith(("import ", "from ", "def ", "class ", "# %%"))
        for line in head.splitlines()
    ):
        return "Python code (a .py file)"
    if head.startswith(("<!doctype", "<html")):
        return "a web page (HTML)"
    return "plain text"


def check_notebook(data: bytes, settings: Settings, filename: str = "") -> None:
    """Refuse, in plain words, what is too big or not a notebook the grader reads: the same
    reader as grading (``grader.ingest.reading``), so nothing accepted here is graded
    "unreadable" later, and a refusal costs no submission of the day."""
    from grader.ingest.model import NotebookError
    from grader.ingest.reading import parse_json_bytes, to_v4

    if len(data) > settings.max_upload_bytes:
        raise Refused(too_large(len(data), settings), 413)
    if not data.strip():
        raise Refused("the file is empty: upload your .ipynb notebook")
    text = data.decode("utf-8-sig", "replace")
    head = text[:2000]
    textual = "\ufffd" not in head and all(c.isprintable() or c in "\t\r\n" for c in head)
    if textual and not text.lstrip().startswith(("{", "[")):
        raise Refused(
            f"this is not a Jupyter notebook: it looks like {_plain_kind(text, filename)}. "
            f"Please {SAVE_AS_NOTEBOOK}."
        )
    try:
        document = parse_json_bytes(data)
        if isinstance(document, dict):
            _check_parts(document)
        to_v4(document)
    except NotebookError as error:  # written for the learner; shown after "Not accepted: "
        raise Refused(error.message[:1].lower() + error.message[1:]) from None


def _check_parts(document: dict[str, object]) -> None:
    """The old format and the size caps, before the format check spends time on them."""
    major = document.get("nbformat")
    if isinstance(major, int) and not isinstance(major, bool) and major < 4:
        raise Refused(
            f"this notebook is in an old format (version {major}, from IPython 3 or earlier), "
            "which the grader cannot read; it was not counted as a submission. Convert it: open "
            "it in Jupyter and save it, or run `jupyter nbconvert --to notebook --nbformat 4 "
            "--output converted.ipynb NOTEBOOK.ipynb`, then upload converted.ipynb"
        )
    cells = document.get("cells")
    if not isinstance(cells, list):
        return
    if len(cells) > MAX_CELLS:
        raise Refused(
            f"this notebook has {len(cells)} cells and the limit is {MAX_CELLS}: delete the "
            "cells you added for trying things out, save, and upload again"
        )
    outputs = sum(
        len(cell["outputs"])
        for cell in cells
        if isinstance(cell, dict) and isinstance(cell.get("outputs"), list)
    )
    if outputs > MAX_OUTPUTS:
        raise Refused(
            f"this notebook holds {outputs} outputs and the limit is {MAX_OUTPUTS}: {CLEAR_OUTPUTS}"
        )


def upload_name(raw: str | None) -> str:
    """The name a learner's file had, fit to show: its last path part (some browsers send a
    path), no control characters, at most 255 characters; "" when there is none."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:255]


def _policy(
    session,
    settings: Settings,
    policy: AssignmentPolicy,
    learner_id: str,
    now: dt.datetime,
    extra_per_day: int,
) -> None:
    """Apply the resubmission policy of one assignment inside the write transaction (the
    learner's row is locked by the caller); ``extra_per_day``: the learner's extension."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = (
        Submission.learner_id == learner_id,
        of_assignment(Submission.assignment, settings, policy.name),
    )
    today = session.scalar(
        select(func.count(Submission.id)).where(*mine, Submission.created_at >= day_start)
    )
    per_day = policy.submissions_per_day + extra_per_day
    if today >= per_day:
        wait = (day_start + dt.timedelta(days=1) - now).total_seconds()
        raise Refused(
            f"you have used today's {per_day} submission(s); the next one "
            f"is possible in {fmt_wait(wait)} (at 00:00 UTC)",
            429,
        )
    last = session.scalar(select(func.max(Submission.created_at)).where(*mine))
    if last is not None and settings.cooldown_seconds:
        left = settings.cooldown_seconds - (now - last).total_seconds()
        if left > 0:
            raise Refused(
                f"please wait {fmt_wait(left)} before submitting again (at most one submission "
                f"every {fmt_wait(settings.cooldown_seconds)})",
                429,
            )


def create_submission(
    db: Database,
    data_dir: Path,
    settings: Settings,
    learner_id: str,
    data: bytes,
    *,
    now: dt.datetime | None = None,
    imported: dict[str, object] | None = None,
    filename: str = "",
    assignment: AssignmentPolicy | None = None,
) -> Accepted:
    """Store an upload and queue its grading, or raise :class:`Refused` with the reason.

    ``filename``: the uploaded file's own name (kept for its report's header; the file is stored
    as ``<number>.ipynb`` whatever it is).

    ``imported`` (an LMS export brought in by the instructor, ``grader.server.lms_import``):
    the resubmission policy does not apply, the late flag is the export's (``imported["late"]``),
    and the audit event says who imported it from where.

    ``assignment``: the course's assignment it is for (default: the first one); its deadline,
    late penalty and submissions a day apply, moved by the learner's extension of it."""
    check_notebook(data, settings, filename)
    policy = assignment or settings.course_assignments()[0]
    now = (now or utcnow()).astimezone(dt.UTC)  # days are UTC days
    written: Path | None = None
    try:
        with db.write() as session:
            locked = select(Learner.id).where(Learner.id == learner_id).with_for_update()
            if session.scalar(locked) is None:
                raise Refused("you are not on this course's roster", 403)
            extension = extensions.in_force(session, settings, learner_id, policy.name)
            if imported is None:
                _policy(
                    session,
                    settings,
                    policy,
                    learner_id,
                    now,
                    extension.extra_per_day if extension else 0,
                )
                late = policy.is_late(now, extension.deadline if extension else None)
            else:
                late = bool(imported.get("late"))
            last = select(func.max(Submission.number)).where(Submission.learner_id == learner_id)
            number = (session.scalar(last) or 0) + 1
            relative = Path(SUBMISSIONS_DIR) / learner_id / f"{number}.ipynb"
            written = Path(data_dir) / relative
            written.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(written, data)
            submission = Submission(
                learner_id=learner_id,
                number=number,
                path=str(relative),
                sha256=hashlib.sha256(data).hexdigest(),
                filename=upload_name(filename) or None,
                created_at=now,
                late=late,
                assignment=policy.name,
            )
            session.add(submission)
            session.flush()
            session.add(Job(submission_id=submission.id, status=JobStatus.QUEUED))
            session.add(
                AuditEvent(
                    actor=str(imported.get("actor", "instructor")) if imported else learner_id,
                    action="imported" if imported else "submitted",
                    subject=str(submission.id),
                    detail={
                        "number": number,
                        "late": late,
                        "bytes": len(data),
                        "assignment": policy.name,
                    }
                    | (
                        {"learner": learner_id, "source": imported.get("source")}
                        if imported
                        else {}
                    ),
                )
            )
            accepted = Accepted(submission.id, number, late, written)
    except BaseException:
        if written is not None and not _has_row(db, written, data_dir):
            with contextlib.suppress(OSError):
                os.unlink(written)
        raise
    return accepted


def _has_row(db: Database, path: Path, data_dir: Path) -> bool:
    try:
        relative = str(path.relative_to(data_dir))
        with db.read() as session:
            return (
                session.scalar(select(Submission.id).where(Submission.path == relative)) is not None
            )
    except Exception:
        return True  # cannot tell: keep the file
