"""The instructor's LMS zip import on a server with two assignments: the form asks which
assignment the notebooks are submissions of (the first by default), and they are filed, graded
and deduplicated as that assignment's."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from grader.server.models import AuditEvent, Submission
from tests.server.conftest import notebook_bytes
from tests.server.helpers import make_course
from tests.server.test_assignments import two_assignments
from tests.server.test_instructor import moodle_and_canvas_zip, post

EXPORT = moodle_and_canvas_zip(
    {
        "Alice_101_assignsubmission_file_/nb.ipynb": notebook_bytes("alice's work"),
        "bob_77_9_nb.ipynb": notebook_bytes("bob's"),
    }
)


@pytest.fixture
def make(data_dir, db):
    made = []

    def build(settings):
        made.append(make_course(data_dir, db, settings))
        return made[-1]

    yield build
    for course in made:
        course.executor.shutdown()


def import_as(client, assignment: str | None):
    fields = {"archive": (io.BytesIO(EXPORT), "export.zip")}
    if assignment is not None:
        fields["assignment"] = assignment
    return post(client, "/instructor/import", fields, content_type="multipart/form-data")


def filed(course) -> list[tuple[str, str]]:
    with course.db.read() as session:
        rows = session.scalars(select(Submission).order_by(Submission.id)).all()
        return [(row.learner_id, row.assignment) for row in rows]


def test_an_lms_export_is_filed_under_the_assignment_the_instructor_chooses(make, settings):
    course = make(two_assignments(settings))
    instructor = course.client("instructor")
    form = instructor.get("/instructor/import").get_data(as_text=True)
    assert '<select id="import-assignment" name="assignment">' in form
    assert 'value="object_localization"' in form and 'value="keras_course"' in form

    page = import_as(instructor, "keras_course").get_data(as_text=True)
    assert "Imported (2) as submissions of keras_course" in page, page
    assert filed(course) == [("alice", "keras_course"), ("bob", "keras_course")]
    with course.db.read() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "lms_import"))
    assert event.detail["assignment"] == "keras_course"

    # the same files are new submissions of the other assignment (none chosen: the first),
    # and already stored for the second
    page = import_as(instructor, None).get_data(as_text=True)
    assert "Imported (2) as submissions of object_localization" in page, page
    assert [a for _, a in filed(course)][2:] == ["object_localization"] * 2
    again = import_as(instructor, "keras_course").get_data(as_text=True)
    assert "Imported (0)" in again and "Skipped (2)" in again

    refused = import_as(instructor, "no_such_assignment")
    assert refused.status_code == 400
    assert "choose one of this course&#39;s assignments" in refused.get_data(as_text=True)
    assert len(filed(course)) == 4


def test_a_one_assignment_course_has_no_choice_to_make(make, settings):
    course = make(settings)
    form = course.client("instructor").get("/instructor/import").get_data(as_text=True)
    assert "import-assignment" not in form
