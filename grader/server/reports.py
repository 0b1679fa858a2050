"""Serving the grader's self-contained pages: a submission's report and the class summary.

Why here: the learner's pages, the API and the instructor's pages serve the same report, with the
same Content-Security-Policy (inline styles and data: images only, no script, no request
anywhere). The report on disk stays as graded; when the instructor has overridden a score, the
server's template ``report_with_overrides.html`` shows the overrides (Jinja, escaped) above the
report, which it embeds unchanged in a sandboxed frame (``srcdoc``), so no HTML is spliced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask import Response, render_template, send_file

from grader.server.overrides import Applied

#: The grader's self-contained pages (reports, the class summary): inline styles and data: images
#: only, no script, no request anywhere.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def self_contained(page: str | Path) -> Response:
    """A self-contained page (HTML text, or a file) under :data:`REPORT_CSP`."""
    if isinstance(page, Path):
        response = send_file(page, mimetype="text/html")
    else:
        response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


def report_response(
    path: Path,
    applied: Sequence[Applied] = (),
    score: float | None = None,
    max_score: float | None = None,
) -> Response:
    """A report.html; with overrides in force, shown above it with the score they make
    (``score`` of ``max_score``: the submission's, as the gradebook counts it)."""
    if not applied:
        return self_contained(path)
    report = path.read_text(encoding="utf-8", errors="replace")
    page = render_template(
        "report_with_overrides.html",
        applied=applied,
        report=report,
        score=score,
        max_score=max_score,
    )
    return self_contained(page)
