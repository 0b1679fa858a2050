"""The resubmission policy (submissions per day, cooldown, deadline and late flag), enforced in
the transaction that creates the submission, also when two uploads race."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from grader.server import roster
from grader.server.models import Job, Submission
from grader.server.submissions import Refused, create_submission

T0 = dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def learner(db):
    roster.add_learners(db, roster.read_roster("id\nanna\n"), "http://x")
    return "anna"


def submit(db, data_dir, settings, notebook, when):
    return create_submission(db, data_dir, settings, "anna", notebook, now=when)


def test_limit_per_day(db, data_dir, settings, notebook, learner):
    limited = dataclasses.replace(settings, submissions_per_day=2)
    submit(db, data_dir, limited, notebook, T0)
    submit(db, data_dir, limited, notebook, T0 + dt.timedelta(minutes=1))
    with pytest.raises(Refused, match="used today's 2 submission") as refused:
        submit(db, data_dir, limited, notebook, T0 + dt.timedelta(minutes=2))
    assert refused.value.status == 429
    accepted = submit(db, data_dir, limited, notebook, T0 + dt.timedelta(hours=12))  # next day
    assert accepted.number == 3
    assert (data_dir / "submissions" / "anna" / "3.ipynb").is_file()


def test_cooldown(db, data_dir, settings, notebook, learner):
    cooled = dataclasses.replace(settings, cooldown_seconds=300)
    submit(db, data_dir, cooled, notebook, T0)
    with pytest.raises(Refused, match="please wait 4 min 0 s"):
        submit(db, data_dir, cooled, notebook, T0 + dt.timedelta(seconds=60))
    assert submit(db, data_dir, cooled, notebook, T0 + dt.timedelta(seconds=301)).number == 2


def test_deadline_flags_late(db, data_dir, settings, notebook, learner):
    timed = dataclasses.replace(settings, deadline=T0, late_penalty=0.5)
    assert not submit(db, data_dir, timed, notebook, T0 - dt.timedelta(seconds=1)).late
    assert submit(db, data_dir, timed, notebook, T0 + dt.timedelta(seconds=1)).late
    with db.read() as session:
        assert [s.late for s in session.scalars(select(Submission).order_by(Submission.id))] == [
            False,
            True,
        ]


def test_two_racing_uploads_do_not_both_pass_a_limit_of_one(
    db, data_dir, settings, notebook, learner
):
    limited = dataclasses.replace(settings, submissions_per_day=1)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def race() -> None:
        barrier.wait()
        try:
            outcomes.append(submit(db, data_dir, limited, notebook, T0))
        except Refused as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(type(o).__name__ for o in outcomes) == ["Accepted", "Refused"]
    with db.read() as session:
        assert session.scalar(select(func.count(Submission.id))) == 1
        assert session.scalar(select(func.count(Job.id))) == 1
    assert [p.name for p in (data_dir / "submissions" / "anna").iterdir()] == ["1.ipynb"]


def test_a_learner_not_on_the_roster_is_refused(db, data_dir, settings, notebook):
    with pytest.raises(Refused, match="not on this course's roster"):
        create_submission(db, data_dir, settings, "ghost", notebook)
