"""The gradebook exports: gradebook.csv (kept at /api/v1/gradebook.csv), the Canvas and the
Moodle grade import files (their documented columns, one row per roster learner, the total
score, an empty cell when there is none), and learner text that a spreadsheet would run as a
formula neutralised in every one of them."""

from __future__ import annotations

import csv
import io

import pytest

from grader.server import roster
from grader.server.exports import QuizScore, canvas_csv, gradebook_lines, moodle_csv
from tests.server.conftest import notebook_bytes
from tests.server.helpers import make_course
from tests.server.instructor_fakes import checks_grade

HOSTILE = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def course(data_dir, db, settings):
    course = make_course(data_dir, db, settings)
    roster.add_learners(
        db,
        roster.read_roster(
            "id,name,email,canvas_id,sis_user_id,section,idnumber\n"
            f'carol,"{HOSTILE.replace(chr(34), chr(34) * 2)}",@c@x.org,4242,S-17,+Sec A,-7\n'
            "dora,Dora Maria Ruiz,d@x.org,,,,\n"
        ),
        "http://testserver",
    )
    yield course
    course.executor.shutdown()


def grade_alice(course) -> int:
    response = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb")},
        headers=course.bearer("alice"),
        content_type="multipart/form-data",
    )
    course.grade_all(checks_grade)
    return response.get_json()["id"]


def download(course, kind: str, query: str = "") -> list[list[str]]:
    response = course.client("instructor").get(f"/instructor/export/{kind}.csv{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.data.decode())))


def by_first_cell(rows: list[list[str]], column: int = 0) -> dict[str, list[str]]:
    return {row[column]: row for row in rows[1:]}


def test_canvas_import_file_has_canvas_columns_and_the_total(course):
    grade_alice(course)
    rows = download(course, "canvas", "?column=Object%20Localization%20(1234)")
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Object Localization (1234)",
    ]
    assert len(rows) == 1 + 4  # every roster learner
    students = by_first_cell(rows, 2)  # by SIS User ID
    assert students["alice"] == ["Alice", "", "alice", "", "", "6"]
    assert students["bob"][-1] == ""  # nothing to import: Canvas leaves the grade alone
    assert students["dora"][0] == "Ruiz, Dora Maria"  # Canvas's "Last, First"
    assert students["S-17"][1:3] == ["4242", "S-17"]


def test_moodle_import_file_has_moodle_columns_and_the_total(course):
    grade_alice(course)
    rows = download(course, "moodle")
    assert rows[0][:4] == ["First name", "Last name", "ID number", "Email address"]
    assert rows[0][4] == course.settings.title  # the grade column defaults to the course title
    people = by_first_cell(rows, 3)  # by email, as Moodle's "Map from: Email address"
    assert people["a@x.org"] == ["Alice", "", "alice", "a@x.org", "6"]
    assert people["d@x.org"][:2] == ["Dora Maria", "Ruiz"]
    assert people["b@x.org"][-1] == ""


def test_formulas_are_neutralised_in_every_export(course):
    grade_alice(course)
    for kind in ("canvas", "moodle", "gradebook"):
        rows = download(course, kind, "?column=%3DSUM(A1)")
        cells = [cell for row in rows for cell in row]
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells), kind
        assert any(cell == "'" + HOSTILE for cell in cells), kind
    canvas = by_first_cell(download(course, "canvas"), 1)["4242"]
    assert (
        canvas[3:5] == ["", "'+Sec A"] and download(course, "canvas", "?column=%3DX")[0][5] == "'=X"
    )
    moodle = by_first_cell(download(course, "moodle"), 2)["'-7"]
    assert moodle[3] == "'@c@x.org"


def test_gradebook_csv_is_kept_and_agrees_with_the_lms_files(course):
    ident = grade_alice(course)
    api = course.app.test_client()
    response = api.get("/api/v1/gradebook.csv", headers=course.bearer("instructor"))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.data.decode())))
    alice = by_first_cell(rows)["alice"]
    assert alice[rows[0].index("score")] == "6.0" and alice[rows[0].index("submission_id")] == str(
        ident
    )
    assert by_first_cell(download(course, "gradebook"))["alice"] == alice
    bearer = api.get("/instructor/export/canvas.csv", headers=course.bearer("instructor"))
    assert (
        bearer.status_code == 200
        and bearer.data == course.client("instructor").get("/instructor/export/canvas.csv").data
    )
    assert course.client("instructor").get("/instructor/export/other.csv").status_code == 404


def test_the_total_counts_the_quiz_alike_with_or_without_an_attempt(course, monkeypatch):
    """No attempt is 0 of the quiz's points, never a smaller maximum (test_totals checks that
    every view shows these totals)."""
    grade_alice(course)
    lines = gradebook_lines(course.db, course.data_dir, course.settings, 10.0)
    alice = next(line for line in lines if line.learner.id == "alice")
    assert alice.quiz is None and alice.total == 6.0 and alice.total_max == 20.0
    monkeypatch.setattr(
        "grader.server.exports.quiz_score",
        lambda db, learner_id, *names: (
            QuizScore(8.0, 10.0) if learner_id in ("alice", "bob") else None
        ),
    )
    lines = gradebook_lines(course.db, course.data_dir, course.settings, 10.0)
    totals = {line.learner.id: (line.total, line.total_max) for line in lines}
    assert totals["alice"] == (14.0, 20.0) and totals["bob"] == (8.0, 20.0)
    assert totals["dora"] == (None, 20.0)  # no score at all: no total to import
    canvas = list(csv.reader(io.StringIO(canvas_csv(lines, "A"))))
    assert by_first_cell(canvas, 2)["bob"][-1] == "8"
    assert by_first_cell(canvas, 2)["dora"][-1] == ""
    moodle = list(csv.reader(io.StringIO(moodle_csv(lines, "A"))))
    assert by_first_cell(moodle, 3)["a@x.org"][-1] == "14"
    # a course without a quiz: the notebook alone
    lines = gradebook_lines(course.db, course.data_dir, course.settings, None)
    assert {line.learner.id: line.total_max for line in lines}["dora"] == 10.0


def test_the_gradebook_reads_each_learners_best_submitted_quiz_attempt(course):
    """The signed-in quiz's attempts feed the gradebook: the best submitted one, not an open one."""
    from grader.server.exports import quiz_score
    from grader.server.models import QuizAttempt

    with course.db.write() as session:
        session.add_all(
            [
                QuizAttempt(
                    learner_id="bob", number=1, seed=1, bank="b", score=6.0, max_score=10.0
                ),
                QuizAttempt(
                    learner_id="bob", number=2, seed=2, bank="b", score=9.0, max_score=10.0
                ),
                QuizAttempt(learner_id="bob", number=3, seed=3, bank="b"),  # open: no score yet
            ]
        )
    assert quiz_score(course.db, "bob") == QuizScore(9.0, 10.0)
    assert quiz_score(course.db, "alice") is None
    lines = gradebook_lines(course.db, course.data_dir, course.settings, 10.0)
    assert next(line for line in lines if line.learner.id == "bob").quiz == QuizScore(9.0, 10.0)


def test_every_grade_export_is_offered_by_name(course):
    """The gradebook page links each export of the registry, and each one downloads."""
    from grader.server.exports import GRADE_EXPORTS

    page = course.client("instructor").get("/instructor").data.decode()
    for name, export in GRADE_EXPORTS.items():
        assert f'href="/instructor/export/{name}.csv">{export.label}</a>' in page
        response = course.client("instructor").get(f"/instructor/export/{name}.csv")
        assert export.filename in response.headers["Content-Disposition"]
