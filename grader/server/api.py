"""The JSON API, so that a course can be automated and a learner can
submit from a terminal or a notebook:

- ``POST /api/v1/submissions`` (multipart field ``notebook``) -> ``{"id": ...}``
- ``GET /api/v1/submissions/<id>`` -> ``{"status", "score", "max_score", ...}``
- ``GET /api/v1/submissions/<id>/report`` -> the report HTML
- ``GET /api/v1/gradebook.csv`` (instructor)

Every route takes ``Authorization: Bearer <token>`` (the last path segment of a sign-in link) and
no cookie, so it is exempt from CSRF. Another learner's submission is a 404, exactly like a
missing one; a learner's token on an instructor route is a 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from grader.server import auth, totals, views
from grader.server.exports import GRADE_EXPORTS, gradebook_lines
from grader.server.reports import report_response
from grader.server.state import current
from grader.server.submissions import Refused

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.errorhandler(401)
@api.errorhandler(403)
@api.errorhandler(400)
def _error(error: Any) -> tuple[Response, int]:
    return jsonify({"error": error.description}), error.code


@api.post("/submissions")
def create() -> Any:
    """Take an upload: the multipart field ``notebook``, and ``assignment`` (a form field or
    query parameter; the course's first assignment when none is named, as older clients send)."""
    server = current()
    identity = auth.bearer_identity(server.db)
    upload = request.files.get("notebook")
    if upload is None:
        return jsonify({"error": "send the notebook as the multipart field 'notebook'"}), 400
    named = request.form.get("assignment") or request.args.get("assignment") or ""
    policy = server.settings.policy_of(named)  # none named: the default (first) assignment
    if policy is None:
        names = ", ".join(each.name for each in server.settings.course_assignments())
        return jsonify({"error": f"no assignment {named!r} here; this course has: {names}"}), 400
    try:
        accepted = server.upload(identity, upload.read(), upload.filename or "", policy)
    except Refused as refused:
        return jsonify({"error": refused.message}), refused.status
    answer = {"id": accepted.id, "number": accepted.number, "late": accepted.late}
    return jsonify(answer | {"assignment": policy.name}), 201


@api.get("/submissions/<int:submission_id>")
def show(submission_id: int) -> Any:
    server = current()
    identity = auth.bearer_identity(server.db)
    row = views.submission_for(server.db, server.data_dir, server.settings, identity, submission_id)
    if row is None:
        abort(404)
    return jsonify(row.api())


@api.get("/submissions/<int:submission_id>/report")
def report(submission_id: int) -> Any:
    server = current()
    identity = auth.bearer_identity(server.db)
    row = views.submission_for(server.db, server.data_dir, server.settings, identity, submission_id)
    if row is None or row.report is None:
        abort(404)
    return report_response(row.report, row.overrides, row.score, row.max_score)


@api.get("/gradebook.csv")
def gradebook() -> Any:
    server = current()
    identity = auth.bearer_identity(server.db)
    if not identity.is_instructor:
        abort(403, "the gradebook is for the instructor's token only")
    export = GRADE_EXPORTS["gradebook"]
    lines = gradebook_lines(
        server.db, server.data_dir, server.settings, totals.quiz_maximum(current_app)
    )
    return Response(
        export.render(lines, ""),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={export.filename}"},
    )
