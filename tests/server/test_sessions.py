"""Sessions and credentials: signing out ends the session on the server (a copy of the cookie
no longer signs in), a sign-in link opened while someone else is signed in asks before it
replaces the session (login CSRF), and Bearer tokens are rate-limited like sign-ins."""

from __future__ import annotations

import dataclasses
import io

import pytest

from tests.server.conftest import notebook_bytes
from tests.server.helpers import csrf_token, make_course


@pytest.fixture
def course(data_dir, db, settings):
    course = make_course(data_dir, db, settings)
    yield course
    course.executor.shutdown()


def _cookie(client) -> str:
    return client.get_cookie("objloc_session").value


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(course):
    client = course.client("alice")
    stolen = course.app.test_client()
    stolen.set_cookie("objloc_session", _cookie(client))  # a copy, e.g. from a shared machine
    assert b"Hello Alice" in stolen.get("/").data
    token = csrf_token(client.get("/").data)
    answer = client.post("/signout", data={"csrf_token": token}, follow_redirects=True)
    assert b"You are signed out" in answer.data and b"Hello Alice" not in answer.data
    assert b"Hello Alice" not in stolen.get("/").data
    assert stolen.get("/bundle.zip").status_code == 404
    assert b"Hello Alice" in course.client("alice").get("/").data  # the link signs in again


def test_a_link_does_not_silently_replace_another_learners_session(course, notebook):
    alice = course.client("alice")
    page = alice.get(f"/signin/{course.tokens['bob']}")
    assert page.status_code == 200
    text = " ".join(page.data.decode().split())
    assert (
        "signed in as <strong>Alice</strong>" in text and "signs in as <strong>Bob</strong>" in text
    )
    assert b"Hello Alice" in alice.get("/").data  # nothing changed yet
    # a third-party page cannot confirm for her: the form needs her session's CSRF token
    assert alice.post(f"/signin/{course.tokens['bob']}").status_code == 400
    assert b"Hello Alice" in alice.get("/").data
    confirmed = alice.post(
        f"/signin/{course.tokens['bob']}", data={"csrf_token": csrf_token(page.data)}
    )
    assert confirmed.status_code == 302
    assert b"Hello Bob" in alice.get("/").data


def test_the_same_learners_link_and_a_first_sign_in_need_no_confirmation(course):
    alice = course.client("alice")
    assert alice.get(f"/signin/{course.tokens['alice']}").status_code == 302
    assert course.app.test_client().get(f"/signin/{course.tokens['bob']}").status_code == 302


def test_an_instructor_session_asks_too(course):
    instructor = course.client("instructor")
    page = instructor.get(f"/signin/{course.tokens['alice']}")
    assert page.status_code == 200 and b"signed in as <strong>the instructor</strong>" in page.data


def test_bearer_tokens_are_rate_limited_like_sign_ins(data_dir, db, settings, notebook):
    course = make_course(data_dir, db, dataclasses.replace(settings, signin_per_minute=5))
    api = course.app.test_client()
    wrong = {"Authorization": "Bearer not-a-token"}
    statuses = [api.get("/api/v1/submissions/1", headers=wrong).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    # the address is refused before any lookup, a valid token too, and sign-in links alike
    valid = api.get("/api/v1/submissions/1", headers=course.bearer("alice"))
    assert valid.status_code == 429 and "wait a minute" in valid.get_json()["error"]
    assert api.get(f"/signin/{course.tokens['alice']}").status_code == 429
    # another address is not concerned
    elsewhere = {"REMOTE_ADDR": "10.0.0.7"}
    answer = api.post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook), "nb.ipynb")},
        headers=course.bearer("alice"),
        environ_overrides=elsewhere,
    )
    assert answer.status_code == 201


def test_valid_bearer_tokens_are_not_counted(course, notebook):
    """A learner following a grading polls with a valid token many times a minute."""
    api = course.app.test_client()
    for _ in range(40):  # more than signin_per_minute (30)
        assert api.get("/api/v1/submissions/99", headers=course.bearer("alice")).status_code == 404


def test_a_post_body_over_a_forms_cap_is_refused_unread(course):
    """Every route without a file takes a form's worth (256 KB): a bigger body is a 413 page."""
    client = course.client("alice")
    token = csrf_token(client.get("/").data)
    answer = client.post("/signout", data={"csrf_token": token, "x": "a" * 300_000})
    assert answer.status_code == 413 and b"larger than this page takes (256 KB)" in answer.data
    assert b"Hello Alice" in client.get("/").data  # not signed out


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        (
            "project.py",
            b"import numpy as np\n\ndef create_example(rng=None):\n    pass\n",
            "not a Jupyter notebook: it looks like Python code (a .py file)",
        ),
        ("notes.txt", b"my notes", "not a Jupyter notebook: it looks like plain text"),
        ("page.html", b"<!DOCTYPE html><html></html>", "it looks like a web page (HTML)"),
        ("nb.ipynb", b"PK\x03\x04rest of a zip", "it looks like a zip archive"),
    ],
)
def test_a_file_that_is_not_a_notebook_is_refused_in_plain_words(course, name, data, words):
    client = course.client("alice")
    token = csrf_token(client.get("/").data)
    answer = client.post(
        "/submit",
        data={"csrf_token": token, "notebook": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    page = answer.data.decode()
    assert answer.status_code == 400 and words in page, page
    assert "Error" not in page.split("Not accepted", 1)[1][:300]  # no exception names


def _v3_notebook() -> bytes:
    import json

    return json.dumps(
        {
            "metadata": {"name": "old"},
            "nbformat": 3,
            "nbformat_minor": 0,
            "worksheets": [
                {"cells": [{"cell_type": "code", "input": "x = 1", "language": "python"}]}
            ],
        }
    ).encode()


def test_an_old_format_notebook_is_refused_with_how_to_convert_it_and_not_counted(
    data_dir, db, settings
):
    course = make_course(data_dir, db, dataclasses.replace(settings, submissions_per_day=1))
    api = course.app.test_client()
    answer = api.post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(_v3_notebook()), "old.ipynb")},
        headers=course.bearer("alice"),
    )
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and "old format (version 3" in error
    assert "jupyter nbconvert --to notebook --nbformat 4" in error
    # the day's one submission is still there
    accepted = api.post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb")},
        headers=course.bearer("alice"),
    )
    assert accepted.status_code == 201


def test_a_notebook_with_too_many_cells_is_refused_before_it_is_validated(course):
    import json

    cell = {"cell_type": "raw", "metadata": {}, "source": ""}
    huge = json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell] * 100_000}
    ).encode()
    answer = course.app.test_client().post(
        "/api/v1/submissions",
        data={"notebook": (io.BytesIO(huge), "nb.ipynb")},
        headers=course.bearer("alice"),
    )
    assert answer.status_code == 400
    assert "has 100000 cells and the limit is 2000" in answer.get_json()["error"]
    assert not (course.data_dir / "submissions" / "alice").exists()
