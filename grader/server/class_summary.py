"""The class summary of one assignment: ``grader grade``'s journal entries (the rows of its
``index.html``) made from the server's latest grading of each learner's submission of it.

Why the batch grader's page: the instructor reads one summary whether a class was graded by
``grader grade`` or by the server; only its rows come from elsewhere.
"""

from __future__ import annotations

from typing import Any

from grader.results.record import REPORT_FILE, RESULTS_FILE, load_results
from grader.server import exports
from grader.server.models import Submission
from grader.server.state import ServerState


def entries(server: ServerState, lines: list[exports.GradebookLine], name: str) -> list[Any]:
    """Journal entries of each learner's latest finished grading of assignment ``name``, with
    the instructor's overrides applied as everywhere else: the score is the gradebook's (late
    penalty, total override), and an overridden check shows its new score."""
    from grader.batch.journal import JournalCheck, JournalEntry

    found = []
    with server.db.read() as session:
        for line in lines:
            row = line.assignments.get(name)
            latest = row.latest if row is not None else None
            if latest is None or latest.pending:
                continue
            submission = session.get(Submission, latest.id)
            job = submission.jobs[-1] if submission and submission.jobs else None
            if job is None:
                continue
            folder = server.data_dir / job.result_dir if job.result_dir else None
            result = load_results(folder / RESULTS_FILE) if folder is not None else None
            changed = {a.check: a.score for a in latest.overrides if a.applies}
            found.append(
                JournalEntry(
                    id=line.learner.id,
                    source=f"submission {latest.number}",
                    status=str(job.status),
                    error=job.message,
                    score=latest.score if latest.score is not None else job.score,
                    max_score=job.max_score,
                    checks=[
                        JournalCheck(
                            c.number, c.name, changed.get(c.name, c.score), c.max_score, c.message
                        )
                        for c in (result.checks if result is not None else ())
                    ],
                    execution_time=result.execution_time if result is not None else 0.0,
                    report=bool(folder and (folder / REPORT_FILE).is_file()),
                )
            )
    return found
