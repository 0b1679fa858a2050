"""``grader submit --assignment NAME`` on a course with several assignments; without it, the
course's first, so that clients from before keep working."""

from __future__ import annotations

import argparse
import io

from sqlalchemy import select

from grader import submit as client
from grader.server.models import Submission
from grader.server.settings import AssignmentPolicy
from tests.server.test_assignments import KERAS
from tests.server.test_client import live, notebook_file  # noqa: F401 (fixtures)


def test_the_client_names_the_assignment(live, notebook_file):  # noqa: F811
    live.settings(assignments=(AssignmentPolicy("object_localization"), AssignmentPolicy(KERAS)))
    client.save_link(live.links["alice"])
    client.send(notebook_file, out=io.StringIO(), wait_for_grade=False, assignment="keras_course")
    client.send(notebook_file, out=io.StringIO(), wait_for_grade=False)
    parser = argparse.ArgumentParser()
    client.add_arguments(parser)
    args = parser.parse_args([str(notebook_file), "--assignment", "keras_course", "--no-wait"])
    assert client.run(args) == 0
    with live.course.db.read() as session:
        named = session.scalars(select(Submission.assignment).order_by(Submission.id)).all()
    assert named == ["keras_course", "object_localization", "keras_course"]
