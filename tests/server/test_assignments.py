"""Several assignments on one server: ``assignments:`` in settings.yaml (each its deadline, late
penalty, submissions a day and points), uploads and the API naming the assignment (the first by
default, as older clients send), each submission graded as its own assignment, and the
instructor's per-learner extensions (a later deadline, more submissions a day)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from grader.server import views
from grader.server.history import describe_event
from grader.server.models import AuditEvent, Extension, Submission
from grader.server.settings import AssignmentPolicy, SettingsError, from_mapping, load_settings
from tests.server.assignment_fakes import per_assignment_grade
from tests.server.conftest import notebook_bytes
from tests.server.helpers import csrf_token, make_course

KERAS = str(Path(__file__).resolve().parents[1] / "fixtures" / "keras_course")
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
FUTURE = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def two_assignments(settings, **second):
    return dataclasses.replace(
        settings,
        assignments=(
            AssignmentPolicy("object_localization", FUTURE, 0.0, 50),
            AssignmentPolicy(KERAS, **({"submissions_per_day": 50} | second)),
        ),
    )


@pytest.fixture
def make(data_dir, db):
    made = []

    def build(settings):
        course = make_course(data_dir, db, settings)
        made.append(course)
        return course

    yield build
    for course in made:
        course.executor.shutdown()


def upload(client, assignment: str = "", name: str = "nb.ipynb"):
    token = csrf_token(client.get("/").data)
    return client.post(
        f"/submit?assignment={assignment}" if assignment else "/submit",
        data={"csrf_token": token, "notebook": (io.BytesIO(notebook_bytes()), name)},
        content_type="multipart/form-data",
    )


# ------------------------------------------------------------------------------ settings


def test_the_assignments_list_is_read_with_top_level_defaults(tmp_path):
    (tmp_path / "settings.yaml").write_text(
        "late_penalty: 0.2\nsubmissions_per_day: 3\nquiz_points: 10\nassignments:\n"
        "  - assignment: object_localization\n    deadline: 2027-01-31T23:59:00+01:00\n"
        "    points: 60\n"
        f"  - assignment: {KERAS}\n    late_penalty: 0.5\n    submissions_per_day: 1\n"
        "    quiz_points: 25\n"
    )
    settings = load_settings(tmp_path)
    first, second = settings.course_assignments()
    assert (first.name, first.points, first.late_penalty, first.submissions_per_day) == (
        "object_localization",
        60.0,
        0.2,
        3,
    )
    assert first.deadline == dt.datetime(2027, 1, 31, 22, 59, tzinfo=dt.UTC)
    assert (second.name, second.deadline, second.late_penalty, second.submissions_per_day) == (
        "keras_course",
        None,
        0.5,
        1,
    )
    assert (first.quiz_points, second.quiz_points) == (None, 25.0)  # None: the top-level 10
    assert settings.chosen_assignment().name == "object_localization"  # the default one
    assert settings.policy_of("") is first and settings.policy_of("keras_course") is second
    assert settings.policy_of("nothing") is None


def test_the_single_assignment_keys_keep_working():
    settings = from_mapping(
        {"deadline": "2027-01-31T23:59:00+00:00", "late_penalty": 0.1, "notebook_points": 80}
    )
    (only,) = settings.course_assignments()
    assert (only.deadline, only.late_penalty, only.points) == (
        dt.datetime(2027, 1, 31, 23, 59, tzinfo=dt.UTC),
        0.1,
        80.0,
    )
    assert settings.is_late(dt.datetime(2027, 2, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"assignments": []}, "assignments needs at least 1 item"),
        ({"assignments": "object_localization"}, "assignments should be a list of assignments"),
        ({"assignments": [{"deadline": None}]}, "assignments[0] needs assignment"),
        ({"assignments": [{"assignment": "a", "dedline": 1}]}, "unknown key of an assignment"),
        ({"assignments": [{"assignment": "a", "late_penalty": 3}]}, "late_penalty is a fraction"),
        ({"assignments": [{"assignment": "a", "points": -1}]}, "points must not be negative"),
        (
            {"assignments": [{"assignment": "a", "quiz_points": "x"}]},
            "quiz_points should be a number of points",
        ),
        (
            {"assignments": [{"assignment": "a", "deadline": "2027-01-31"}]},
            "assignments[0].deadline needs a time zone",
        ),
        ({"assignments": [{"assignment": "a"}, {"assignment": "a"}]}, "lists a more than once"),
        (
            {"assignment": "a", "deadline": None, "assignments": [{"assignment": "a"}]},
            "top-level assignment (give each assignment its assignment), deadline",
        ),
        (
            {"notebook_points": 5, "assignments": [{"assignment": "a"}]},
            "notebook_points (give each assignment its points)",
        ),
    ],
)
def test_bad_assignment_lists_are_refused_with_a_clear_message(values, message):
    with pytest.raises(SettingsError) as refused:
        from_mapping(values)
    assert message in str(refused.value)


# ------------------------------------------------------------------------ uploads, grading


def test_each_submission_is_graded_as_its_own_assignment(make, settings):
    course = make(two_assignments(settings))
    alice = course.client("alice")
    assert upload(alice).status_code == 302  # no assignment named: the first
    assert upload(alice, "keras_course").status_code == 302
    answer = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb"), "assignment": "keras_course"},
        headers=course.bearer("bob"),
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201 and answer.get_json()["assignment"] == "keras_course"
    older = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb")},
        headers=course.bearer("bob"),
        content_type="multipart/form-data",
    )
    assert older.get_json()["assignment"] == "object_localization"  # an older client's upload
    course.grade_all(per_assignment_grade)
    rows = {
        learner: views.submissions_of(course.db, course.data_dir, course.settings, learner)
        for learner in ("alice", "bob")
    }
    scores = {
        (learner, row.assignment): (row.score, row.max_score)
        for learner, found in rows.items()
        for row in found
    }
    assert scores == {
        ("alice", "object_localization"): (6.0, 10.0),
        ("alice", "keras_course"): (3.0, 5.0),
        ("bob", "object_localization"): (6.0, 10.0),
        ("bob", "keras_course"): (3.0, 5.0),
    }
    refused = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb"), "assignment": "nope"},
        headers=course.bearer("bob"),
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    assert "object_localization, keras_course" in refused.get_json()["error"]
    assert upload(alice, "nope").status_code == 404


def test_the_home_page_lists_each_assignment_with_its_own_bundle(make, settings):
    course = make(two_assignments(settings, deadline=PAST, late_penalty=0.5))
    alice = course.client("alice")
    upload(alice, "keras_course")
    course.grade_all(per_assignment_grade)
    page = alice.get("/").get_data(as_text=True)
    assert "Keras Course: Classifying Shapes" in page and "Object Localization" in page
    assert 'action="/submit?assignment=keras_course"' in page
    assert "Deadline: 2020-01-01 00:00 UTC" in page and "lose 50% of their score" in page
    # late: 3 / 5 halved, and it counts so in the total (5 points: its own maximum)
    assert "1.5 / 5 in your total" in page
    assert "Not submitted yet" in page  # the first assignment
    bundle = alice.get("/bundle.zip?assignment=keras_course")
    assert bundle.status_code == 200 and "keras_course.zip" in bundle.headers["Content-Disposition"]
    assert alice.get("/bundle.zip?assignment=nope").status_code == 404
    default = alice.get("/bundle.zip")
    assert "object_localization.zip" in default.headers["Content-Disposition"]


def test_an_upload_over_the_limit_says_so_at_its_own_assignment(make, settings):
    course = make(two_assignments(settings, submissions_per_day=1))
    alice = course.client("alice")
    assert upload(alice, "keras_course").status_code == 302
    refused = upload(alice, "keras_course")
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    section = page.split('id="assignment-keras_course"', 1)[1]
    assert "Not accepted: you have used today&#39;s 1 submission(s)" in section
    assert "Not accepted" not in page.split('id="assignment-keras_course"', 1)[0]
    assert upload(alice).status_code == 302  # the other assignment's limit is its own


def test_rows_from_before_several_assignments_belong_to_the_first(make, settings):
    course = make(settings)
    alice = course.client("alice")
    upload(alice)
    course.grade_all(per_assignment_grade)
    with course.db.write() as session:  # as migration 0009 leaves an older row
        session.execute(update(Submission).values(assignment=""))
    course = make(two_assignments(settings))
    (row,) = views.gradebook(course.db, course.data_dir, course.settings)[:1]
    assert row.assignments["object_localization"].submissions == 1
    assert row.assignments["keras_course"].submissions == 0
    (mine,) = views.submissions_of(course.db, course.data_dir, course.settings, "alice")
    assert mine.assignment == "object_localization" and mine.score == 6.0


# ------------------------------------------------------------------------------ extensions


def grant(teacher, learner: str, **fields):
    page = teacher.get(f"/instructor/learners/{'bob' if learner == 'nobody' else learner}")
    assert b"Set the extension" in page.data
    return teacher.post(
        f"/instructor/learners/{learner}/extension",
        data={"csrf_token": csrf_token(page.data)} | fields,
    )


def test_an_extension_lets_one_learner_submit_after_the_deadline_without_a_late_flag(
    make, settings
):
    course = make(two_assignments(settings, deadline=PAST, late_penalty=0.5))
    alice, bob, teacher = course.client("alice"), course.client("bob"), course.client("instructor")
    answer = grant(
        teacher, "bob", assignment="keras_course", deadline="2099-06-01T12:00", comment="ill"
    )
    assert answer.status_code == 303
    assert "keras_course: extension stored" in teacher.get(answer.headers["Location"]).get_data(
        as_text=True
    )
    upload(alice, "keras_course")
    upload(bob, "keras_course")
    course.grade_all(per_assignment_grade)
    late = {
        learner: views.submissions_of(course.db, course.data_dir, course.settings, learner)[0]
        for learner in ("alice", "bob")
    }
    assert late["alice"].late and late["alice"].score == 1.5  # the course's deadline, penalised
    assert not late["bob"].late and late["bob"].score == 3.0  # his extension
    home = bob.get("/").get_data(as_text=True)
    assert "Deadline: 2099-06-01 12:00 UTC (extended for you" in home
    assert "extended for you" not in alice.get("/").get_data(as_text=True)
    with course.db.read() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "extension_granted")
        ).one()
    assert (event.actor, event.subject) == ("instructor", "bob")
    assert event.detail["assignment"] == "keras_course" and event.detail["comment"] == "ill"
    learner_page = teacher.get("/instructor/learners/bob").get_data(as_text=True)
    assert "keras_course: deadline 2099-06-01 12:00 UTC" in learner_page
    # the history, in a sentence
    assert "Deadline of keras_course extended to 2099-06-01 12:00 UTC by instructor: ill." in (
        learner_page
    )


def test_extra_submissions_a_day_for_one_learner(make, settings):
    course = make(two_assignments(settings, submissions_per_day=1))
    alice, bob, teacher = course.client("alice"), course.client("bob"), course.client("instructor")
    assert grant(teacher, "bob", assignment="keras_course", extra_per_day="1").status_code == 303
    for client in (alice, bob):
        assert upload(client, "keras_course").status_code == 302
    assert upload(alice, "keras_course").status_code == 429
    assert upload(bob, "keras_course").status_code == 302
    assert upload(bob, "keras_course").status_code == 429
    assert "At most 2 submission(s) a day (1 more granted to you)" in bob.get("/").get_data(
        as_text=True
    )
    # an empty form ends it: the course's limit again
    assert grant(teacher, "bob", assignment="keras_course").status_code == 303
    with course.db.read() as session:
        assert len(session.scalars(select(Extension)).all()) == 2  # the history is kept
    assert "more granted to you" not in bob.get("/").get_data(as_text=True)
    history = teacher.get("/instructor/learners/bob").get_data(as_text=True)
    assert "1 more submission a day for keras_course, granted by instructor." in history
    assert (
        "Extension of keras_course ended by instructor; the deadline and daily limit of the "
        "course apply." in history
    )


def test_an_extension_of_both_reads_as_one_sentence():
    event = AuditEvent(
        actor="instructor",
        action="extension_granted",
        subject="bob",
        detail={
            "assignment": "keras_course",
            "deadline": "2099-06-01T12:00:00+02:00",
            "extra_per_day": 3,
            "comment": "ill",
        },
    )
    assert describe_event(event) == (
        "Deadline of keras_course extended to 2099-06-01 10:00 UTC, with 3 more submissions a "
        "day, by instructor: ill."
    )


def test_extensions_are_the_instructors_only_and_checked(make, settings):
    course = make(two_assignments(settings, deadline=FUTURE))
    alice, teacher = course.client("alice"), course.client("instructor")
    page = alice.get("/")
    forged = alice.post(
        "/instructor/learners/alice/extension",
        data={"csrf_token": csrf_token(page.data), "assignment": "keras_course", "deadline": ""},
    )
    assert forged.status_code == 404
    no_token = teacher.post(
        "/instructor/learners/bob/extension", data={"assignment": "keras_course"}
    )
    assert no_token.status_code == 400
    earlier = grant(teacher, "bob", assignment="keras_course", deadline="2098-01-01T00:00")
    flashed = teacher.get(earlier.headers["Location"]).get_data(as_text=True)
    assert "No extension stored: the new deadline must be after the assignment" in flashed
    garbled = grant(teacher, "bob", assignment="keras_course", deadline="next week")
    assert "is not a date and time" in teacher.get(garbled.headers["Location"]).get_data(
        as_text=True
    )
    assert grant(teacher, "nobody", assignment="keras_course").status_code == 404
    assert grant(teacher, "bob", assignment="nope").status_code == 404
    with course.db.read() as session:
        assert session.scalars(select(Extension)).all() == []


def test_regrading_everyone_regrades_the_latest_of_each_assignment(make, settings):
    from grader.server.leases import regrade_all
    from grader.server.models import Job

    course = make(two_assignments(settings))
    alice = course.client("alice")
    for assignment in ("", "", "keras_course"):
        assert upload(alice, assignment).status_code == 302
    course.grade_all(per_assignment_grade)
    assert regrade_all(course.db) == 2  # submission 2 (the first's latest) and 3
    with course.db.read() as session:
        queued = session.scalars(
            select(Submission.number).join(Job).where(Job.status == "queued")
        ).all()
    assert sorted(queued) == [2, 3]


def test_a_quiz_attempt_belongs_to_the_default_assignment(make, settings):
    from grader.server.assignments import name_of
    from grader.server.models import QuizAttempt
    from grader.server.state import QUIZ_EXTENSION

    course = make(two_assignments(settings))
    course.app.extensions[QUIZ_EXTENSION].start("alice")
    with course.db.read() as session:
        (attempt,) = session.scalars(select(QuizAttempt)).all()
    assert name_of(course.settings, attempt.assignment) == "object_localization"


def database_at(data_dir, db_url, revision: str):
    """A course database migrated up to ``revision`` only, holding one learner, ann."""
    from alembic import command
    from sqlalchemy import text

    from grader.server.db import DB_FILE, Database, alembic_config

    database = Database(db_url) if db_url else Database(f"sqlite:///{data_dir / DB_FILE}")
    with database.engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        connection.execute(
            text(
                "INSERT INTO learners (id, name, email, extra, created_at) "
                "VALUES ('ann', 'Ann', '', '{}', '2027-01-01 00:00:00')"
            )
        )
        connection.commit()
    return database


def test_migration_0009_gives_older_rows_the_default_assignment(data_dir, db_url):
    from sqlalchemy import text

    database = database_at(data_dir, db_url, "0008_quiz_grants")
    with database.engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO submissions (learner_id, number, path, sha256, created_at, late) "
                "VALUES ('ann', 1, 'submissions/ann/1.ipynb', 'x', '2027-01-01 00:00:00', false)"
            )
        )
        connection.commit()
    database.migrate()
    with database.read() as session:
        (stored,) = session.scalars(select(Submission.assignment)).all()
    assert stored == ""  # the default (first) assignment of whatever the settings hold
    database.dispose()


def test_the_class_summary_shows_one_assignment_each(make, settings):
    course = make(two_assignments(settings))
    alice, bob = course.client("alice"), course.client("bob")
    assert upload(alice).status_code == upload(bob).status_code == 302
    assert upload(alice, "keras_course").status_code == 302
    course.grade_all(per_assignment_grade)
    instructor = course.client("instructor")
    gradebook = instructor.get("/instructor").get_data(as_text=True)
    assert 'href="/instructor/summary/object_localization/"' in gradebook
    assert 'href="/instructor/summary/keras_course/"' in gradebook
    first = instructor.get("/instructor/summary/object_localization/").get_data(as_text=True)
    second = instructor.get("/instructor/summary/keras_course/").get_data(as_text=True)
    assert set(re.findall(r'href="(\w+)/report\.html"', first)) == {"alice", "bob"}
    assert set(re.findall(r'href="(\w+)/report\.html"', second)) == {"alice"}
    report = instructor.get("/instructor/summary/keras_course/alice/report.html")
    assert report.status_code == 200 and b"keras report: 3" in report.data
    assert instructor.get("/instructor/summary/keras_course/bob/report.html").status_code == 404
    default = instructor.get("/instructor/summary/alice/report.html")  # the first assignment's
    assert default.status_code == 200 and b"keras report" not in default.data
    assert instructor.get("/instructor/summary/nothing/").status_code == 404


def test_migration_0011_numbers_attempts_per_quiz_and_keeps_the_stored_ones(data_dir, db_url):
    """Attempts stored before each quiz numbered its own (one count over every quiz) stay as
    they are; the new rule takes a number again in another quiz and refuses it twice in one
    quiz; a downgrade renumbers per learner so that the former rule holds again."""
    from alembic import command
    from sqlalchemy import text

    from grader.server.db import alembic_config
    from grader.server.models import QuizAttempt

    database = database_at(data_dir, db_url, "0010_quiz_per_assignment")
    with database.engine.connect() as connection:
        for number, assignment in ((1, "a"), (2, "b")):
            connection.execute(
                text(
                    "INSERT INTO quiz_attempts (learner_id, number, seed, bank, started_at, "
                    "expired, practice, assignment) VALUES ('ann', :n, 1, 'x', "
                    "'2027-01-01 00:00:00', false, false, :a)"
                ),
                {"n": number, "a": assignment},
            )
        connection.commit()
    database.migrate()
    with database.write() as session:  # the new rule: learner, quiz, number
        started = "2027-01-02 00:00:00"
        for assignment in ("a", "c"):
            session.add(
                QuizAttempt(
                    learner_id="ann",
                    number=1 if assignment == "c" else 2,
                    seed=1,
                    bank="x",
                    started_at=dt.datetime.fromisoformat(started).replace(tzinfo=dt.UTC),
                    assignment=assignment,
                )
            )
    with pytest.raises(IntegrityError), database.write() as session:
        session.add(QuizAttempt(learner_id="ann", number=2, seed=1, bank="x", assignment="a"))
    with database.engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0010_quiz_per_assignment")
        connection.commit()
        numbers = connection.execute(
            text("SELECT number FROM quiz_attempts ORDER BY number")
        ).scalars()
        assert list(numbers) == [1, 2, 3, 4]
    database.dispose()
