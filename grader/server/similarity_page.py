"""The instructor's similarity page: the course's latest submissions compared as
``grader similarity`` compares them (``grader.similarity``: graded code and stored model
fingerprints), the pairs ranked, each with the matching code side by side. For the instructor to
look at, never a verdict: nothing here changes a score.

Why a Blueprint of its own under ``/instructor``: the page only reads what the server already
keeps (each learner's latest notebook and the results.json of its latest grading); it shares the
instructor's rule (anyone else gets the 404 of a page that does not exist) and nothing else with
the gradebook's pages. A comparison costs a notebook's ingestion per learner, so the page is kept
until a learner's latest submission or grading changes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import markupsafe
from flask import Blueprint, abort, render_template
from sqlalchemy import select

from grader.batch.discovery import BatchItem
from grader.results.record import RESULTS_FILE
from grader.server import auth
from grader.server.models import Submission
from grader.server.state import current

similarity_page = Blueprint("instructor_similarity", __name__, url_prefix="/instructor")

_KEPT: dict[str, Any] = {}  # the last comparison: {"key": ..., "section": ...}
_KEPT_LOCK = threading.Lock()


@similarity_page.before_request
def _gate() -> None:
    """The instructor only; anyone else gets the same 404 as a missing page."""
    identity = auth.session_identity(current().db)
    if identity is None or not identity.is_instructor:
        abort(404)


def latest_submissions() -> list[tuple[BatchItem, Path | None]]:
    """Each learner's latest submission (as ``grader similarity`` reads a notebook) and the
    results.json of its latest finished grading (None: not graded yet)."""
    server = current()
    found: dict[str, tuple[BatchItem, Path | None]] = {}
    with server.db.read() as session:
        rows = session.scalars(select(Submission).order_by(Submission.id)).all()
        for row in rows:  # later submissions replace earlier ones
            path = server.data_dir / row.path
            finished = [job for job in row.jobs if job.result_dir]
            results = server.data_dir / finished[-1].result_dir / RESULTS_FILE if finished else None
            item = BatchItem(
                row.learner_id,
                f"submission {row.number}",
                row.filename or path.name,
                path=path,
                learner=row.learner_id,
            )
            found[row.learner_id] = (item, results)
    return [found[learner] for learner in sorted(found)]


def _section(entries: list[tuple[BatchItem, Path | None]]) -> markupsafe.Markup:
    from grader.similarity import extract, pairs, read_fingerprints, report

    assignment = current().settings.chosen_assignment()
    codes = extract.read_all([item for item, _ in entries], assignment, jobs=1)
    results = {item.id: path for item, path in entries if path is not None}
    models, why = read_fingerprints(codes, results)
    comparison = pairs.compare_cohort(
        codes, given=extract.given_code(assignment), fingerprints=models, no_fingerprint=why
    )
    return report.section(comparison)


@similarity_page.get("/similarity")
def similarity() -> Any:
    """Pairs of learners' latest submissions ranked by similarity, with the code side by side."""
    entries = latest_submissions()
    key = tuple(
        (item.id, str(item.path), str(results), _mtime(results)) for item, results in entries
    )
    with _KEPT_LOCK:
        section = _KEPT.get("section") if _KEPT.get("key") == key else None
    if section is None and len(entries) >= 2:
        section = _section(entries)
        with _KEPT_LOCK:
            _KEPT.update(key=key, section=section)
    return render_template("instructor_similarity.html", section=section, learners=len(entries))


def _mtime(path: Path | None) -> float:
    try:
        return path.stat().st_mtime if path is not None else 0.0
    except OSError:
        return 0.0
