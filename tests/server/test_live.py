"""Live status on the learner's pages (grader/server/live.py): a learner's own pending
submission answers its status as JSON to the page's script, nobody else's does; pages with a
pending grading carry the script and, for browsers without JavaScript, the refresh."""

from __future__ import annotations

import io
import json

import pytest

from tests.server.helpers import csrf_token, make_course


@pytest.fixture
def course(data_dir, db, settings):
    return make_course(data_dir, db, settings)


def _submit(course, client, notebook) -> int:
    page = client.get("/")
    answer = client.post(
        "/submit",
        data={
            "csrf_token": csrf_token(page.data),
            "notebook": (io.BytesIO(notebook), "a.ipynb"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.data
    return int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_status_json_follows_the_grading_for_its_owner_only(course, notebook):
    alice = course.client("alice")
    ident = _submit(course, alice, notebook)
    url = f"/submissions/{ident}/status.json"
    answer = alice.get(url)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    state = json.loads(answer.data)
    assert state["status"] == "queued" and state["pending"] is True and state["id"] == ident
    assert course.client("bob").get(url).status_code == 404
    assert course.client().get(url).status_code == 404  # not signed in
    assert course.client("bob").get("/submissions/999/status.json").status_code == 404
    course.grade_all()
    state = json.loads(alice.get(url).data)
    assert state["status"] == "graded" and state["pending"] is False and state["score"] == 10


def test_pending_pages_poll_with_a_script_and_refresh_without_one(course, notebook):
    alice = course.client("alice")
    ident = _submit(course, alice, notebook)
    poll = f'data-status="/submissions/{ident}/status.json"'.encode()
    for path in ("/", f"/submissions/{ident}"):
        page = alice.get(path).data
        assert poll in page and b'aria-live="polite"' in page
        assert b"/static/live.js" in page
        # the refresh only for browsers without JavaScript: the script updates the page in place
        assert b'<noscript><meta http-equiv="refresh"' in page
    script = alice.get("/static/live.js")
    assert (
        script.status_code == 200 and b"data-status" in script.data and b"data-live" in script.data
    )
    course.grade_all()
    for path in ("/", f"/submissions/{ident}"):
        page = alice.get(path).data
        assert b"data-status" not in page and b"live.js" not in page
        assert b'http-equiv="refresh"' not in page
