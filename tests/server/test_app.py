"""The web app and the API: sign-in links, sessions, CSRF, uploads, and that a learner reaches
only their own rows (every page and API route tried with the other learner's ids and tokens)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from grader.server import roster
from tests.server.conftest import notebook_bytes
from tests.server.helpers import csrf_token, make_course


@pytest.fixture
def course(data_dir, db, settings):
    course = make_course(data_dir, db, settings)
    yield course
    course.executor.shutdown()


def upload(client, data: bytes, name: str = "nb.ipynb"):
    token = csrf_token(client.get("/").data)
    return client.post(
        "/submit",
        data={"csrf_token": token, "notebook": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def api_upload(course, who: str, data: bytes, name: str = "nb.ipynb"):
    return course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(data), name)},
        headers=course.bearer(who),
        content_type="multipart/form-data",
    )


def test_signin_sets_a_safe_session_cookie_and_shows_the_learner_page(course):
    client = course.app.test_client()
    response = client.get(f"/signin/{course.tokens['alice']}")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/")
    assert b"Hello Alice" in page.data and b"Submit for grading" in page.data
    assert b'name="viewport"' in page.data
    assert b"<code>grader submit NOTEBOOK</code>" in page.data  # the bundle's command
    assert b"python -m grader" not in page.data


def test_the_scripting_help_shows_the_api_with_the_courses_address(course):
    client = course.app.test_client()
    page = client.get("/help/automation")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"{course.settings.base_url}/api/v1/submissions" in text
    assert "Authorization" in text and "gradebook.csv" in text


def test_secure_cookie_behind_tls(data_dir, db, settings):
    import dataclasses

    course = make_course(data_dir, db, dataclasses.replace(settings, base_url="https://c.org"))
    response = course.app.test_client().get(f"/signin/{course.tokens['alice']}")
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_bad_link_is_refused_and_signin_is_rate_limited(course):
    client = course.app.test_client()
    assert client.get("/signin/not-a-token").status_code == 404
    statuses = [client.get(f"/signin/guess{i}").status_code for i in range(40)]
    assert 429 in statuses
    assert client.get(f"/signin/{course.tokens['alice']}").status_code == 429


def test_relink_revokes_the_old_link_and_its_sessions(course):
    client = course.client("alice")
    assert b"Hello Alice" in client.get("/").data
    new = roster.relink(course.db, "alice", "http://testserver").link.rsplit("/", 1)[1]
    assert b"Hello Alice" not in client.get("/").data  # the open session is signed out
    assert course.app.test_client().get(f"/signin/{course.tokens['alice']}").status_code == 404
    assert course.app.test_client().get(f"/signin/{new}").status_code == 302
    headers = {"Authorization": f"Bearer {course.tokens['alice']}"}
    assert course.app.test_client().get("/api/v1/submissions/1", headers=headers).status_code == 401


def test_csrf_token_is_required_on_every_form(course):
    client = course.client("alice")
    response = client.post(
        "/submit",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and b"The form was refused" in response.data
    for path in ("/signout",):
        assert client.post(path).status_code == 400
    instructor = course.client("instructor")
    for path in ("/instructor/regrade", "/instructor/release"):
        assert instructor.post(path).status_code == 400


def test_upload_is_stored_queued_and_graded(course, notebook):
    client = course.client("alice")
    response = upload(client, notebook)
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert b"queued" in page.data and b'http-equiv="refresh"' in page.data
    stored = course.data_dir / "submissions" / "alice" / "1.ipynb"
    assert stored.read_bytes() == notebook
    course.grade_all()
    page = client.get("/submissions/1")
    assert b"graded" in page.data and b"10 / 10" in page.data
    assert b'http-equiv="refresh"' not in page.data
    report = client.get("/submissions/1/report")
    assert report.status_code == 200 and b"fake report" in report.data
    assert "default-src 'none'" in report.headers["Content-Security-Policy"]


def test_the_report_names_the_learner_and_the_file_they_uploaded(course, notebook):
    """Stored as <n>.ipynb, graded under the name the learner gave it (a path a browser sends is
    cut to its last part), by the learner the roster knows."""
    assert upload(course.client("alice"), notebook, "My work (final).ipynb").status_code == 302
    sent = "../../home/bob/lab 3.ipynb"
    assert api_upload(course, "bob", notebook, sent).status_code == 201
    course.grade_all()
    seen = {}
    for path in sorted((course.data_dir / "results").glob("*/*/results.json")):
        extra = json.loads(path.read_text())["extra_data"]
        seen[extra["learner"]] = extra["submission_file"]
    assert seen == {"Alice (alice)": "My work (final).ipynb", "Bob (bob)": "lab 3.ipynb"}
    assert sorted(p.name for p in (course.data_dir / "submissions").rglob("*.ipynb")) == [
        "1.ipynb",
        "1.ipynb",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a notebook at all", b"not a Jupyter notebook"),
        (b"", b"the file is empty"),
        (b'{"cells": "nope"}', b"not a"),
    ],
)
def test_a_non_notebook_is_refused_with_a_message(course, data, message):
    response = upload(course.client("alice"), data)
    assert response.status_code == 400 and message in response.data
    assert not (course.data_dir / "submissions" / "alice").exists()


def test_upload_size_cap(data_dir, db, settings):
    import dataclasses

    small = dataclasses.replace(settings, max_upload_mb=0.01)  # ~10 KB
    course = make_course(data_dir, db, small)
    big = notebook_bytes("x = 1\n# " + "a" * 200_000)
    response = upload(course.client("alice"), big)
    page = response.data.decode()
    assert response.status_code == 413 and "Hello Alice" in page  # the course page, not a bare 413
    assert "Not accepted: the file is 0.2 MB and the limit is 0.01 MB" in page
    assert "Clear Outputs of All Cells" in page
    response = api_upload(course, "alice", big)
    assert response.status_code == 413 and "limit" in response.get_json()["error"]
    medium = notebook_bytes("x = 1\n# " + "a" * 10_400)  # over the cap, under the form's slack
    response = api_upload(course, "alice", medium)
    assert response.status_code == 413 and "the limit is 0.01 MB" in response.get_json()["error"]


def test_api_submission_flow(course, notebook):
    response = api_upload(course, "alice", notebook)
    assert response.status_code == 201
    ident = response.get_json()["id"]
    client = course.app.test_client()
    state = client.get(f"/api/v1/submissions/{ident}", headers=course.bearer("alice")).get_json()
    assert state["status"] == "queued" and state["score"] is None
    course.grade_all()
    state = client.get(f"/api/v1/submissions/{ident}", headers=course.bearer("alice")).get_json()
    assert (state["status"], state["score"], state["max_score"]) == ("graded", 10.0, 10.0)
    report = client.get(f"/api/v1/submissions/{ident}/report", headers=course.bearer("alice"))
    assert report.status_code == 200 and b"fake report" in report.data
    csv = client.get("/api/v1/gradebook.csv", headers=course.bearer("instructor"))
    assert csv.status_code == 200
    lines = csv.data.decode().splitlines()
    assert lines[0].startswith("id,name,email,submissions,submission_id")
    assert lines[1].startswith("alice,Alice,a@x.org,1,") and ",graded,10.0,10.0," in lines[1]
    assert lines[2].startswith("bob,Bob,b@x.org,0,,,not submitted")


def test_every_route_refuses_the_other_learner(course, notebook):
    """Bob gets a 404 for each of Alice's resources (as for one that does not exist), on every
    page and API route; learners get 404 on instructor pages and 403 on the instructor API."""
    assert api_upload(course, "alice", notebook).status_code == 201
    course.grade_all()
    alice_id = 1
    bob = course.client("bob")
    for path in (f"/submissions/{alice_id}", f"/submissions/{alice_id}/report", "/submissions/99"):
        response = bob.get(path)
        assert response.status_code == 404, path
        assert b"fake report" not in response.data and b"10 / 10" not in response.data
    assert b"alice" not in bob.get("/").data.lower()
    api = course.app.test_client()
    for path in (
        f"/api/v1/submissions/{alice_id}",
        f"/api/v1/submissions/{alice_id}/report",
        "/api/v1/submissions/99",
    ):
        response = api.get(path, headers=course.bearer("bob"))
        assert response.status_code == 404, path
        assert b"fake report" not in response.data
        assert api.get(path).status_code == 401, path  # no token
        assert api.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    for who in ("alice", "bob"):
        assert api.get("/api/v1/gradebook.csv", headers=course.bearer(who)).status_code == 403
        assert course.client(who).get("/instructor").status_code == 404
    assert api.get("/api/v1/gradebook.csv").status_code == 401
    # signed-out visitors see nothing of anyone
    anonymous = course.app.test_client()
    for path in (f"/submissions/{alice_id}", f"/submissions/{alice_id}/report", "/bundle.zip"):
        assert anonymous.get(path).status_code == 404, path
    # the instructor sees Alice's submission and report
    instructor = course.client("instructor")
    assert instructor.get(f"/submissions/{alice_id}/report").status_code == 200
    page = instructor.get("/instructor").data
    assert b"alice" in page and page.count(b"<th ") == 9  # instructor.py: the gradebook


def test_instructor_cannot_submit(course, notebook):
    response = api_upload(course, "instructor", notebook)
    assert response.status_code == 403


def test_bundle_download(course):
    response = course.client("bob").get("/bundle.zip")
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert "object_localization/object_localization.ipynb" in names


def test_manual_feedback_release(data_dir, db, settings, notebook):
    import dataclasses

    course = make_course(data_dir, db, dataclasses.replace(settings, feedback_release="manual"))
    ident = api_upload(course, "alice", notebook).get_json()["id"]
    course.grade_all()
    api = course.app.test_client()
    state = api.get(f"/api/v1/submissions/{ident}", headers=course.bearer("alice")).get_json()
    assert state["status"] == "graded" and state["score"] is None
    assert (
        api.get(f"/api/v1/submissions/{ident}/report", headers=course.bearer("alice")).status_code
        == 404
    )
    instructor = course.client("instructor")
    token = csrf_token(instructor.get("/instructor").data)
    assert instructor.post("/instructor/release", data={"csrf_token": token}).status_code == 302
    state = api.get(f"/api/v1/submissions/{ident}", headers=course.bearer("alice")).get_json()
    assert state["score"] == 10.0


def test_the_real_bundle_is_built_once_through_grader_release(data_dir, db, settings):
    from grader.server.state import ServerState

    server = ServerState(data_dir, settings, db)  # bundle=build_bundle: grader release
    archive = server.bundle_zip()
    names = zipfile.ZipFile(archive).namelist()
    assert {
        "object_localization/object_localization.ipynb",
        "object_localization/README.md",
    } <= set(names)
    assert not any("hidden" in name or "solution" in name for name in names)
    assert server.bundle_zip() == archive  # cached


def test_a_course_folder_given_relative_to_the_cwd_serves_its_reports(
    tmp_path, db, settings, notebook, monkeypatch
):
    """`./dev serve` passes `course-data`: a stored report is found whatever Flask's own folder
    is (send_file reads a relative path from the app's package; this was a 500)."""
    root = str(Path(__file__).resolve().parents[2])  # the grading child imports the fake grader
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.getenv("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    course = make_course(Path("course"), db, settings)
    try:
        client = course.client("alice")
        assert upload(client, notebook).status_code == 302
        course.grade_all()
        report = client.get("/submissions/1/report")
        assert report.status_code == 200 and b"fake report" in report.data
    finally:
        course.executor.shutdown()
