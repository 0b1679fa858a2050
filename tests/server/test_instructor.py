"""The instructor's pages: only the instructor reaches them (a learner or a visitor gets 404 on
every one), every form needs its CSRF token, the gradebook and a learner's history show what
happened, an override changes the score everywhere it is shown (and is shown above the report,
which stays as graded), feedback release hides then shows, the class summary is ``grader
grade``'s, and an LMS zip export enters the queue matched to the roster, never guessed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import re
import zipfile

import pytest
from sqlalchemy import select

from grader.server import roster
from grader.server.models import AuditEvent, Submission
from tests.server.conftest import notebook_bytes
from tests.server.helpers import csrf_token, make_course
from tests.server.instructor_fakes import checks_grade


@pytest.fixture
def course(data_dir, db, settings):
    course = make_course(data_dir, db, settings)
    yield course
    course.executor.shutdown()


def api_upload(course, who: str, data: bytes | None = None):
    return course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(data or notebook_bytes()), "nb.ipynb")},
        headers=course.bearer(who),
        content_type="multipart/form-data",
    )


def graded(course, who: str = "alice") -> int:
    ident = api_upload(course, who).get_json()["id"]
    course.grade_all(checks_grade)
    return ident


def post(client, path: str, data: dict | None = None, **options):
    token = csrf_token(client.get("/instructor").data)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **options)


def override(client, submission_id: int, check: str, score: str, comment: str = "checked by hand"):
    return post(
        client,
        f"/instructor/submissions/{submission_id}/override",
        {"check": check, "score": score, "comment": comment},
    )


def api_state(course, who: str, ident: int) -> dict:
    client = course.app.test_client()
    return client.get(f"/api/v1/submissions/{ident}", headers=course.bearer(who)).get_json()


def instructor_urls(app, submission_id: int, job_id: int) -> list[tuple[str, str]]:
    """(method, url) of every instructor route, filled with real ids."""
    values = {
        "submission_id": submission_id,
        "job_id": job_id,
        "learner_id": "alice",
        "kind": "canvas",
        "assignment": "object_localization",
    }
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("instructor."):
            continue
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, url))
    return urls


def test_learners_and_visitors_get_404_on_every_instructor_route(course):
    ident = graded(course)
    urls = instructor_urls(course.app, ident, 1)
    assert len(urls) >= 13  # every page, form and download of instructor.py
    for who in ("alice", "bob", None):
        client = course.client(who)
        for method, url in urls:
            data = {"csrf_token": csrf_token(client.get("/").data)} if who else {}
            response = client.open(url, method=method, data=data)
            assert response.status_code == 404, (who, method, url)
            assert b"fake report" not in response.data and b"alice" not in response.data.lower()
    api = course.app.test_client()
    for who in ("alice", "bob"):  # a learner's token on the exports
        response = api.get("/instructor/export/canvas.csv", headers=course.bearer(who))
        assert response.status_code == 404
    bad = api.get("/instructor/export/canvas.csv", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    ok = api.get("/instructor/export/moodle.csv", headers=course.bearer("instructor"))
    assert ok.status_code == 200 and b"alice" in ok.data
    instructor = course.client("instructor")
    for method, url in urls:
        if method == "GET" and "/summary" not in url:
            assert instructor.get(url).status_code == 200, url


def test_every_instructor_form_needs_its_csrf_token(course):
    ident = graded(course)
    instructor = course.client("instructor")
    for method, url in instructor_urls(course.app, ident, 1):
        if method == "POST":
            response = instructor.post(url, data={"check": "", "score": "1", "comment": "x"})
            assert response.status_code == 400 and b"The form was refused" in response.data, url
    with course.db.read() as session:
        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.action == "score_overridden")
        ).all()


def test_gradebook_shows_every_learner_with_scores_quiz_total_and_links(data_dir, db, settings):
    late = dataclasses.replace(settings, deadline=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    course = make_course(data_dir, db, late)
    ident = graded(course)
    page = course.client("instructor").get("/instructor").data.decode()
    alice = page[page.index('learners/alice"') : page.index('learners/bob"')]
    assert "6 / 10" in alice and "late" in alice
    assert re.search(
        r"<td[^>]*>- / 10</td>", alice
    )  # no quiz attempt yet: 0 of the quiz's 10 points
    assert f"/submissions/{ident}/report" in alice and f"/submissions/{ident}/override" in alice
    assert 'href="/instructor/learners/alice"' in page
    bob = page[page.index(">bob<") :]
    assert "not submitted" in bob
    for header in ("Notebook", "Quiz", "Total", "Late", "Status"):
        assert re.search(rf'<th scope="col"[^>]*>{header}</th>', page)


def test_learner_history_shows_submissions_gradings_and_events(course):
    first = graded(course)
    post(course.client("instructor"), "/instructor/regrade")
    course.grade_all(checks_grade)
    api_upload(course, "bob")
    page = course.client("instructor").get("/instructor/learners/alice").data.decode()
    assert "Submission 1" in page and page.count("/instructor/jobs/") == 2  # two gradings
    history = page.split("<h2>History</h2>")[1]
    for sentence in (
        "Added to the roster",
        "Uploaded submission 1 (",
        "Grading of submission 1 started (attempt 1)",
        "Submission 1 graded: 6 / 10.",
    ):
        assert sentence in history
    assert "{" not in history  # words, no raw JSON
    assert "/instructor/jobs/" in page
    report = course.client("instructor").get("/instructor/jobs/1/report")
    assert report.status_code == 200 and b"graded report: 6" in report.data
    with course.db.read() as session:
        bobs = session.scalar(select(Submission.id).where(Submission.learner_id == "bob"))
    assert f"submission id {bobs}" not in history  # not Bob's events
    assert course.client("instructor").get("/instructor/learners/nobody").status_code == 404
    assert f"/submissions/{first}/override" in page


def test_a_check_override_changes_the_score_everywhere_and_shows_above_the_report(course):
    ident = graded(course)
    instructor = course.client("instructor")
    on_disk = next((course.data_dir / "results").rglob("report.html"))
    before = on_disk.read_bytes()
    response = override(
        instructor, ident, "iou_metric", "3", "your IoU clamps; the check <was> wrong"
    )
    assert response.status_code == 302
    assert api_state(course, "alice", ident)["score"] == 9.0
    assert "9 / 10" in instructor.get("/instructor").data.decode()
    csv_text = course.app.test_client().get(
        "/api/v1/gradebook.csv", headers=course.bearer("instructor")
    )
    assert ",graded,9.0,10.0," in csv_text.data.decode()
    for kind in ("canvas", "moodle"):
        assert ",9\r\n" in instructor.get(f"/instructor/export/{kind}.csv").data.decode()
    report = course.client("alice").get(f"/submissions/{ident}/report").data.decode()
    assert "your IoU clamps; the check &lt;was&gt; wrong" in report  # escaped
    assert report.index("iou_metric") < report.index("graded report: 6")  # above the report
    assert on_disk.read_bytes() == before  # the report on disk stays as graded
    # the report is shown whole, unchanged, in a sandboxed frame below the overrides
    framed = re.search(r'<iframe title="The grading report" sandbox srcdoc="([^"]*)"', report)
    assert framed and html.unescape(framed.group(1)) == before.decode()
    api_report = course.app.test_client().get(
        f"/api/v1/submissions/{ident}/report", headers=course.bearer("alice")
    )
    assert b"your IoU clamps" in api_report.data
    assert b"your IoU clamps" in course.client("alice").get(f"/submissions/{ident}").data
    assert b"your IoU clamps" not in course.client("bob").get(f"/submissions/{ident}/report").data
    with course.db.read() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "score_overridden"))
        assert event.detail["check"] == "iou_metric" and event.detail["original"] == 0.0
        assert event.detail["score"] == 3.0 and event.subject == str(ident)


def test_a_total_override_is_final_and_can_be_cleared(data_dir, db, settings):
    late = dataclasses.replace(
        settings, deadline=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), late_penalty=0.5
    )
    course = make_course(data_dir, db, late)
    ident = graded(course)
    instructor = course.client("instructor")
    assert api_state(course, "alice", ident)["score"] == 3.0  # 6 with the late penalty
    assert override(instructor, ident, "iou_metric", "4").status_code == 302
    assert api_state(course, "alice", ident)["score"] == 5.0  # (6 - 0 + 4) * 0.5
    assert override(instructor, ident, "", "8.5", "extension granted").status_code == 302
    assert api_state(course, "alice", ident)["score"] == 8.5  # no penalty on a total override
    assert override(instructor, ident, "", "", "").status_code == 302  # cleared
    assert api_state(course, "alice", ident)["score"] == 5.0
    post(instructor, "/instructor/regrade")  # an override outlives a regrade
    course.grade_all(checks_grade)
    assert api_state(course, "alice", ident)["score"] == 5.0
    with course.db.read() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject == str(ident))
        ).all()
    assert actions.count("score_overridden") == 2 and "override_cleared" in actions


@pytest.mark.parametrize(
    ("check", "score", "comment", "message"),
    [
        ("iou_metric", "abc", "x", b"is not a number"),
        ("iou_metric", "\u0663", "x", b"is not a number"),  # an Arabic-Indic digit
        ("iou_metric", "5", "x", b"between 0 and 4"),
        ("iou_metric", "-1", "x", b"between 0 and 4"),
        ("", "11", "x", b"between 0 and 10"),
        ("no_such_check", "1", "x", b"no check named"),
        ("iou_metric", "1", "", b"say why in the comment"),
        ("iou_metric", "nan", "x", b"is not a number"),
        ("iou_metric", "1e999", "x", b"finite"),
    ],
)
def test_a_bad_override_is_a_400_with_a_message(course, check, score, comment, message):
    ident = graded(course)
    response = override(course.client("instructor"), ident, check, score, comment)
    assert response.status_code == 400 and message in response.data
    assert api_state(course, "alice", ident)["score"] == 6.0


def test_an_override_waits_for_the_grading_and_needs_a_submission(course):
    ident = api_upload(course, "alice").get_json()["id"]
    instructor = course.client("instructor")
    response = override(instructor, ident, "", "5")
    assert response.status_code == 400 and b"still being graded" in response.data
    assert override(instructor, 999, "", "5").status_code == 404


def test_manual_release_hides_scores_reports_and_overrides_until_released(data_dir, db, settings):
    course = make_course(data_dir, db, dataclasses.replace(settings, feedback_release="manual"))
    ident = graded(course)
    instructor = course.client("instructor")
    override(instructor, ident, "iou_metric", "4", "regraded by hand")
    alice = course.client("alice")
    state = api_state(course, "alice", ident)
    assert state["status"] == "graded" and state["score"] is None and state["max_score"] is None
    assert state["report"] is False
    api = course.app.test_client()
    assert (
        api.get(f"/api/v1/submissions/{ident}/report", headers=course.bearer("alice")).status_code
        == 404
    )
    assert alice.get(f"/submissions/{ident}/report").status_code == 404
    for page in (alice.get("/").data, alice.get(f"/submissions/{ident}").data):
        assert b"not released yet" in page or b"releases the feedback later" in page
        assert b"10 / 10" not in page and b"regraded by hand" not in page
    assert b"10 / 10" in instructor.get("/instructor").data  # the instructor sees it
    assert post(instructor, "/instructor/release").status_code == 302
    assert api_state(course, "alice", ident)["score"] == 10.0
    assert b"regraded by hand" in alice.get(f"/submissions/{ident}/report").data


def test_the_class_summary_is_grader_grades_page_from_the_latest_results(course):
    graded(course, "alice")
    graded(course, "bob")
    instructor = course.client("instructor")
    assert instructor.get("/instructor/summary").status_code == 302
    response = instructor.get("/instructor/summary/")
    page = response.data.decode()
    assert response.status_code == 200 and "Class summary" in page
    assert "Pass rate per check" in page and "2.1 iou_metric" in page
    assert "0 / 2 (0.0%)" in page and "disjoint boxes should score 0" in page
    link = re.search(r'href="(alice/report\.html)"', page).group(1)
    report = instructor.get("/instructor/summary/" + link)
    assert report.status_code == 200 and b"graded report: 6" in report.data
    assert instructor.get("/instructor/summary/nobody/report.html").status_code == 404


def moodle_and_canvas_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def import_zip(client, data: bytes, name: str = "export.zip"):
    return post(
        client,
        "/instructor/import",
        {"archive": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_an_lms_export_is_matched_to_the_roster_and_queued(data_dir, db, settings):
    strict = dataclasses.replace(settings, submissions_per_day=1, cooldown_seconds=3600)
    course = make_course(data_dir, db, strict)
    issued, _ = roster.add_learners(
        db,
        roster.read_roster(
            "id,name,email,canvas_id\ncarol,Carol Smith,c@x.org,4242\n"
            "dave,Dan Lee,d@x.org,\ndan2,Dan Lee,d2@x.org,\n"
        ),
        "http://testserver",
    )
    course.tokens |= {row.id: row.link.rsplit("/", 1)[1] for row in issued}
    assert api_upload(course, "bob").status_code == 201  # Bob used today's one submission
    notebook = notebook_bytes("alice's work")
    export = moodle_and_canvas_zip(
        {
            "Alice_101_assignsubmission_file_/nb.ipynb": notebook,  # Moodle, by name
            "Dan Lee_102_assignsubmission_file_/nb.ipynb": notebook_bytes("dan"),  # two Dan Lees
            "Zed Nobody_103_assignsubmission_file_/nb.ipynb": notebook_bytes("z"),  # not enrolled
            "smithcarol_LATE_4242_9_nb.ipynb": notebook_bytes("carol"),  # Canvas, by user id
            "bob_77_9_nb.ipynb": notebook_bytes("bob's"),  # Canvas, by name
            "Alice_101_assignsubmission_file_/notes.txt": b"notes",
        }
    )
    instructor = course.client("instructor")
    response = import_zip(instructor, export)
    page = response.data.decode()
    assert response.status_code == 200 and "Imported (3)" in page, page
    assert "fits several learners (dan2, dave)" in page and "Zed Nobody" in page
    assert "not on the roster" in page
    with course.db.read() as session:
        rows = {
            s.learner_id: s for s in session.scalars(select(Submission).order_by(Submission.id))
        }
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "imported")).all()
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["carol"].late and not rows["alice"].late
    assert (course.data_dir / rows["alice"].path).read_bytes() == notebook
    # each report names the file as the export held it (stored as <number>.ipynb)
    assert {learner: row.filename for learner, row in rows.items()} == {
        "alice": "nb.ipynb",
        "bob": "bob_77_9_nb.ipynb",
        "carol": "smithcarol_LATE_4242_9_nb.ipynb",
    }
    assert len(events) == 3 and all(e.actor == "instructor" for e in events)
    assert {e.detail["learner"] for e in events} == {"alice", "bob", "carol"}
    assert any(e.detail["source"].endswith("!smithcarol_LATE_4242_9_nb.ipynb") for e in events)
    course.grade_all(checks_grade)
    gradebook = instructor.get("/instructor").data.decode()
    assert gradebook.count("6 / 10") == 3  # the notebook of the three imported
    assert gradebook.count("6 / 20") == 3  # their total: no quiz attempt is 0 of its 10 points
    again = import_zip(instructor, export).data.decode()  # idempotent
    assert "Imported (0)" in again and "Skipped (3)" in again
    assert list((course.data_dir / "imports").iterdir())  # the export is kept
    # Bob was over today's limit, yet his export was imported; an import then counts like any
    # other submission for the learner's own uploads
    assert rows["bob"].number == 2
    assert api_upload(course, "carol").status_code == 429


def test_an_import_refuses_what_is_not_a_zip_and_lists_non_notebooks(course):
    instructor = course.client("instructor")
    response = import_zip(instructor, b"not a zip at all")
    assert response.status_code == 400 and b"not a zip archive" in response.data
    response = post(instructor, "/instructor/import", {}, content_type="multipart/form-data")
    assert response.status_code == 400 and b"choose the LMS" in response.data
    export = moodle_and_canvas_zip(
        {
            "Alice_101_assignsubmission_file_/answers.pdf": b"%PDF-1.4",
            "bob/a.ipynb": notebook_bytes("1"),
            "bob/b.ipynb": notebook_bytes("2"),
        }
    )
    page = import_zip(instructor, export).data.decode()
    assert "Imported (0)" in page and "Refused" in page
    assert "not a Jupyter notebook" in page and "2 notebooks for bob" in page
    with course.db.read() as session:
        assert session.scalars(select(Submission)).all() == []


def test_an_import_over_its_size_cap_is_a_413_with_a_message(course, monkeypatch):
    monkeypatch.setattr("grader.server.lms_import.IMPORT_MAX_MB", 0.01)  # ~10 KB
    export = moodle_and_canvas_zip({"alice/nb.ipynb": notebook_bytes("x = 1\n# " + "a" * 40_000)})
    response = import_zip(course.client("instructor"), export)
    assert response.status_code == 413 and b"larger than 0.01 MB" in response.data
    assert not (course.data_dir / "imports").exists() or not any(
        (course.data_dir / "imports").iterdir()
    )


def test_an_import_may_be_bigger_than_one_upload(data_dir, db, settings):
    small = dataclasses.replace(settings, max_upload_mb=0.05)  # ~52 KB per notebook
    course = make_course(data_dir, db, small)
    padding = "# " + "a" * 30_000
    export = moodle_and_canvas_zip(
        {
            f"{who}/nb.ipynb": notebook_bytes(f"{who} = 1\n{padding}")
            for who in ["alice", "bob", "c", "d", "e"]
        }
    )
    assert len(export) > course.app.config["MAX_CONTENT_LENGTH"]
    page = import_zip(course.client("instructor"), export)
    assert page.status_code == 200 and b"Imported (2)" in page.data
