"""Live status on the learner's pages: ``GET /submissions/<id>/status.json`` (the signed-in
learner's own submission, else 404) and the small script ``static/live.js`` that polls it.

Why short polling and not server-sent events: waitress runs each request on one of a few threads
(8 by default, ``grader serve --threads``), and a WSGI response that streams events holds its
thread until it ends, so eight open pages would stall every other request. A poll is a short
read (a few milliseconds), answered and released; the script polls every 2 s, backing off to
15 s, only while a grading is pending and the tab is visible, so 200 learners watching cost about
as much as 200 page views a minute. Progressive enhancement: without JavaScript the page keeps
refreshing itself (``<noscript><meta http-equiv="refresh">``); with it, when a status changes the
script fetches the page once and swaps its live regions in place (no reload: focus and a
half-filled form stay; ``aria-live`` announces the change).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify

from grader.server import auth, views
from grader.server.state import current

live = Blueprint("live", __name__)


@live.get("/submissions/<int:submission_id>/status.json")
def status(submission_id: int) -> Any:
    server = current()
    identity = auth.session_identity(server.db)
    if identity is None:
        abort(404)
    row = views.submission_for(server.db, server.data_dir, server.settings, identity, submission_id)
    if row is None:
        abort(404)
    return jsonify(row.api() | {"pending": row.pending})
