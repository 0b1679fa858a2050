"""The roster: ids normalised (NFKC, case-folded) with collisions refused, one unguessable link
per learner stored only as a hash, relink revokes the old link, the CLI prints the links."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest
from sqlalchemy import select

from grader.server import roster
from grader.server.models import Learner, Token


def test_ids_are_normalised():
    assert roster.normalise("Anna") == "anna"
    assert roster.normalise("\uff21nna") == "anna"  # full-width A
    assert roster.normalise("STRASSE") == roster.normalise("straße")
    for bad in ("", "a b", "..", "x" * 65, "a/b"):
        with pytest.raises(roster.RosterError):
            roster.normalise(bad)


def test_lookalike_rows_in_one_roster_are_refused(db):
    with pytest.raises(roster.RosterError, match="row 3: id 'ＡNNA' is the same learner as 'anna'"):
        roster.read_roster("id,name\nanna,A\n\uff21NNA,B\n")


def test_add_keeps_extra_columns_and_stores_only_hashes(db):
    rows = roster.read_roster("id,name,email,section\nAnna,Anna A,a@x.org,3\nbob,Bob,,\n")
    issued, notes = roster.add_learners(db, rows, "https://c.org/")
    assert notes == []
    assert [(i.id, i.name) for i in issued] == [("anna", "Anna A"), ("bob", "Bob")]
    links = [i.link for i in issued]
    assert all(link.startswith("https://c.org/signin/") for link in links)
    tokens = [link.rsplit("/", 1)[1] for link in links]
    assert len(set(tokens)) == 2 and all(len(t) >= 43 for t in tokens)  # 32 random bytes
    with db.read() as session:
        anna = session.get(Learner, "anna")
        assert anna.extra == {"section": "3", "roster_id": "Anna"}
        digests = set(session.scalars(select(Token.digest)))
    assert not any(t in d for t in tokens for d in digests)
    assert {roster.digest(t) for t in tokens} <= digests
    assert roster.identify(db, tokens[0]).learner_id == "anna"


def test_readding_skips_and_a_lookalike_of_an_existing_learner_is_refused(db):
    roster.add_learners(db, roster.read_roster("id\nanna\n"), "http://x")
    issued, notes = roster.add_learners(db, roster.read_roster("id\nanna\ncarl\n"), "http://x")
    assert [i.id for i in issued] == ["carl"] and "already on the roster" in notes[0]
    with pytest.raises(roster.RosterError, match="normalises to 'anna'"):
        roster.add_learners(db, roster.read_roster("id\nANNA\ndora\n"), "http://x")
    with db.read() as session:  # all or nothing: dora was not added
        assert session.get(Learner, "dora") is None


def test_relink_and_revoke(db):
    issued, _ = roster.add_learners(db, roster.read_roster("id\nanna\n"), "http://x")
    old = issued[0].link.rsplit("/", 1)[1]
    new = roster.relink(db, "ANNA", "http://x").link.rsplit("/", 1)[1]
    assert roster.identify(db, old) is None
    assert roster.identify(db, new).learner_id == "anna"
    assert roster.revoke(db, "anna") == 1
    assert roster.identify(db, new) is None
    teacher = roster.instructor_link(db, "http://x").link.rsplit("/", 1)[1]
    assert roster.identify(db, teacher).is_instructor
    assert roster.revoke(db, None, instructor=True) == 1
    assert roster.identify(db, teacher) is None
    with pytest.raises(roster.RosterError):
        roster.relink(db, "nobody", "http://x")


def grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_roster_commands(tmp_path, db_url):
    data = tmp_path / "course"
    (tmp_path / "roster.csv").write_text(
        "id,name,email,team\nAnna,Anna A,a@x.org,red\nbob,=1+1,b@x,\n"
    )
    extra = ["--database", db_url] if db_url else []
    added = grader(
        "roster",
        "add",
        "--data",
        str(data),
        *extra,
        str(tmp_path / "roster.csv"),
        "--format",
        "csv",
        "--url",
        "https://c.org",
    )
    assert added.returncode == 0, added.stderr
    rows = list(csv.DictReader(io.StringIO(added.stdout)))
    assert [r["id"] for r in rows] == ["anna", "bob"]
    assert rows[1]["name"] == "'=1+1"  # a spreadsheet formula neutralised
    assert all(r["link"].startswith("https://c.org/signin/") for r in rows)
    relinked = grader("roster", "relink", "--data", str(data), *extra, "anna")
    assert relinked.returncode == 0 and relinked.stdout.startswith(
        "anna\thttp://127.0.0.1:8000/signin/"
    )
    teacher = grader("roster", "instructor", "--data", str(data), *extra)
    assert teacher.returncode == 0 and teacher.stdout.startswith("instructor\thttp")
    revoked = grader("roster", "revoke", "--data", str(data), *extra, "bob")
    assert revoked.returncode == 0 and "revoked 1 link(s)" in revoked.stdout
    missing = grader("roster", "relink", "--data", str(data), *extra, "nobody")
    assert missing.returncode == 2 and "no learner 'nobody'" in missing.stderr
    regraded = grader("regrade", "--data", str(data), *extra)
    assert regraded.returncode == 0 and "queued 0 grading(s)" in regraded.stdout
    (data / "settings.yaml").write_text("submision_limit: 3\n")
    refused = grader("roster", "instructor", "--data", str(data))
    assert refused.returncode == 2 and "unknown setting(s) submision_limit" in refused.stderr
