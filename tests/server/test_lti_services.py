"""LTI Advantage services against the fake platform: deep linking (an instructor picks the quiz;
its launches open the quiz), Assignment and Grade Services (a line item per assignment and per
quiz, the score posted once a grading ends and its feedback is released, again after an
override, retried with backoff, never by a request), Names and Roles (the roster sync), and the
tool's key rotation (old and new keys published; the old one's signatures keep verifying until
it is retired)."""

from __future__ import annotations

import dataclasses
import io

import jwt
import pytest
import requests
from sqlalchemy import select

from grader.server import exports, views
from grader.server.lti import ags, keys
from grader.server.lti.services import ToolConnector
from grader.server.models import Learner, LtiScorePost, LtiUser
from grader.server.state import QUIZ_EXTENSION
from tests.server.conftest import notebook_bytes
from tests.server.helpers import csrf_token
from tests.server.lti_platform import CLAIM, DL, INSTRUCTOR_ROLES, LEARNER_ROLES, User
from tests.server.test_lti_launch import DANA, TEACHER, heading, lms_for

ASSIGNMENT = "assignment:object_localization"
QUIZ = "quiz:object_localization"


@pytest.fixture(params=["moodle", "canvas"])
def lms(request, data_dir, db, settings):
    ToolConnector.forget_tokens()
    made = lms_for(data_dir, db, settings, request.param)
    yield made
    made.platform.stop()
    made.course.executor.shutdown()


def submit(client) -> None:
    """Upload a notebook from the learner's page, as the browser does."""
    token = csrf_token(client.get("/").data)
    answer = client.post(
        "/submit",
        data={"csrf_token": token, "notebook": (io.BytesIO(notebook_bytes()), "nb.ipynb")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.data[:500]


def step(lms) -> int:
    """One round of the background score poster (sync, then post)."""
    with lms.course.app.app_context():
        ags.sync(lms.course.app)
        return ags.post_due(lms.course.app, requests.Session())


def scores(lms, tag: str) -> list[dict]:
    by_tag = {i["id"]: i.get("tag") for i in lms.platform.line_items.values()}
    return [s for s in lms.platform.scores if by_tag.get(s["lineitem"]) == tag]


def test_a_graded_submission_reaches_the_lms_gradebook_once(lms):
    client, _ = lms.launch(lms.platform.claims(DANA))
    submit(client)
    assert step(lms) == 0 and lms.platform.calls == []  # nothing graded yet: nothing sent
    lms.course.grade_all()  # 10 / 10
    assert step(lms) == 1
    (posted,) = scores(lms, ASSIGNMENT)
    assert posted["userId"] == DANA.sub
    assert (posted["scoreGiven"], posted["scoreMaximum"]) == (10.0, 10.0)
    assert (posted["activityProgress"], posted["gradingProgress"]) == ("Completed", "FullyGraded")
    (item,) = [i for i in lms.platform.line_items.values() if i["tag"] == ASSIGNMENT]
    assert item["resourceId"] == ASSIGNMENT and item["scoreMaximum"] == 10.0
    assert step(lms) == 0 and len(lms.platform.scores) == 1  # the same score is not sent again
    tokens = [c for c in lms.platform.calls if c.path.endswith(("token.php", "/token"))]
    assert len(tokens) == 1  # one access token, reused
    # the launch's own line item (a deep-linked resource link) is used as it is, not created
    named = f"{lms.platform.base}/lineitems/given"
    lms.platform.line_items[named] = {"id": named, "tag": "", "scoreMaximum": 10}
    other = User("8", "Eli", "eli@x.org", LEARNER_ROLES)
    eli, _ = lms.launch(lms.platform.claims(other, lineitem=named, resource_link="rl-9"))
    submit(eli)
    lms.course.grade_all()
    assert step(lms) == 1
    assert lms.platform.scores[-1]["lineitem"] == named
    assert lms.platform.scores[-1]["userId"] == "8"


def test_an_override_is_posted_again(lms):
    client, _ = lms.launch(lms.platform.claims(DANA))
    submit(client)
    lms.course.grade_all()
    step(lms)
    teacher, _ = lms.launch(lms.platform.claims(TEACHER))
    with lms.course.db.read() as s:
        learner = s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == DANA.sub))
    (row,) = views.submissions_of(lms.course.db, lms.course.data_dir, lms.course.settings, learner)
    token = csrf_token(teacher.get("/instructor").data)
    answer = teacher.post(
        f"/instructor/submissions/{row.id}/override",
        data={"csrf_token": token, "check": "", "score": "7.5", "comment": "late, agreed"},
    )
    assert answer.status_code == 302
    assert step(lms) == 1
    assert [s["scoreGiven"] for s in scores(lms, ASSIGNMENT)] == [10.0, 7.5]


def test_manual_release_holds_the_score_until_released(data_dir, sqlite_db, settings):
    settings = dataclasses.replace(settings, feedback_release="manual")
    lms = lms_for(data_dir, sqlite_db, settings, "moodle")
    try:
        client, _ = lms.launch(lms.platform.claims(DANA))
        submit(client)
        lms.course.grade_all()
        assert step(lms) == 0 and lms.platform.scores == []
        teacher, _ = lms.launch(lms.platform.claims(TEACHER))
        token = csrf_token(teacher.get("/instructor").data)
        assert teacher.post("/instructor/release", data={"csrf_token": token}).status_code == 302
        assert step(lms) == 1 and lms.platform.scores[0]["scoreGiven"] == 10.0
    finally:
        lms.platform.stop()


def test_a_quiz_attempt_goes_to_the_quizs_own_line_item(lms):
    client, _ = lms.launch(lms.platform.claims(DANA, custom={"item": QUIZ}))
    assert heading(client.get("/quiz/"))  # the launch opened the quiz
    with lms.course.db.read() as s:
        learner = s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == DANA.sub))
    quiz = lms.course.app.extensions[QUIZ_EXTENSION]
    quiz.submit(quiz.start(learner), {})  # no answer given: 0 points
    done = exports.quiz_score(lms.course.db, learner)  # the gradebook's quiz score
    assert step(lms) == 1
    (posted,) = scores(lms, QUIZ)
    assert (posted["scoreGiven"], posted["scoreMaximum"]) == (done.score, done.max_score) == (0, 10)
    assert scores(lms, ASSIGNMENT) == []


def test_a_platform_that_fails_is_retried_with_backoff_then_given_up(lms, monkeypatch):
    client, _ = lms.launch(lms.platform.claims(DANA))
    submit(client)
    lms.course.grade_all()
    lms.platform.fail_scores = 2
    assert step(lms) == 0
    with lms.course.db.read() as s:
        (row,) = s.scalars(select(LtiScorePost)).all()
        assert row.status == "pending" and "503" in row.error
        assert (row.next_attempt_at - row.created_at).total_seconds() >= ags.BACKOFF[0] - 1
    assert step(lms) == 0  # not due yet: no call made
    assert len(lms.platform.score_posts()) == 1
    monkeypatch.setattr(ags, "BACKOFF", (0,) * len(ags.BACKOFF))  # time passes
    with lms.course.db.write() as s:
        s.get(LtiScorePost, row.id).next_attempt_at = row.created_at
    assert step(lms) == 0 and step(lms) == 1  # the second failure, then accepted
    assert len(lms.platform.scores) == 1
    with lms.course.db.read() as s:
        row = s.get(LtiScorePost, row.id)
        assert (row.status, row.attempts) == ("posted", 3)
    # a platform that never answers: given up after MAX_ATTEMPTS, shown to the instructor
    lms.platform.fail_scores = 100
    teacher, _ = lms.launch(lms.platform.claims(TEACHER))
    quiz = lms.course.app.extensions[QUIZ_EXTENSION]
    with lms.course.db.read() as s:
        learner = s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == DANA.sub))
    quiz.submit(quiz.start(learner), {})
    for _ in range(ags.MAX_ATTEMPTS):
        step(lms)
    page = teacher.get("/lti/course").get_data(as_text=True)
    assert "given up: 1" in page and "503" in page


def test_posting_never_happens_in_a_request(lms):
    """The launch, the upload and the grading answer without calling the platform's services;
    only the poster does (here: its step, in the test's thread)."""
    client, _ = lms.launch(lms.platform.claims(DANA))
    lms.platform.stop()  # a platform that is down does not slow any page
    submit(client)
    lms.course.grade_all()
    assert client.get("/").status_code == 200
    step(lms)
    with lms.course.db.read() as s:
        (row,) = s.scalars(select(LtiScorePost)).all()
        assert row.status == "pending" and "Connection" in row.error


def test_deep_linking_the_quiz(lms):
    teacher, answer = lms.launch(lms.platform.claims(TEACHER, message="LtiDeepLinkingRequest"))
    assert answer.location == "/lti/deep-link"
    picker = teacher.get("/lti/deep-link").get_data(as_text=True)
    assert f'value="{ASSIGNMENT}"' in picker and f'value="{QUIZ}"' in picker
    token = csrf_token(picker.encode())
    page = teacher.post("/lti/deep-link", data={"csrf_token": token, "item": QUIZ})
    html = page.get_data(as_text=True)
    action = html.split('action="', 1)[1].split('"', 1)[0]
    value = html.split('name="JWT" value="', 1)[1].split('"', 1)[0]
    assert action == f"{lms.platform.base}/deep-link-return"
    assert requests.post(action, data={"JWT": value}, timeout=10).status_code == 200
    (response,) = lms.platform.deep_links  # verified against the tool's key set
    (content,) = response[DL + "content_items"]
    assert content["type"] == "ltiResourceLink" and content["custom"] == {"item": QUIZ}
    assert content["url"] == lms.course.settings.base_url + "/lti/launch"
    assert content["lineItem"]["tag"] == QUIZ and content["lineItem"]["scoreMaximum"] == 10
    assert response[CLAIM + "deployment_id"] == lms.platform.deployment_id
    # the answered launch cannot be answered twice; a learner cannot deep link
    assert (
        teacher.post("/lti/deep-link", data={"csrf_token": token, "item": QUIZ}).status_code == 404
    )
    claims = lms.platform.claims(DANA, message="LtiDeepLinkingRequest")
    assert lms.launch(claims)[1].status_code == 403
    # the resource link the LMS made opens the quiz
    _, answer = lms.launch(lms.platform.claims(DANA, custom=content["custom"]))
    assert answer.location == "/quiz/"


def test_the_roster_sync_adds_the_lms_courses_learners(lms):
    lms.platform.members = [
        User("21", "Fay First", "fay@x.org", LEARNER_ROLES),
        User("22", "Gus Second", "gus@x.org", ["Learner"]),  # NRPS may send short role names
        User("23", "Alice A.", "alice@lms.org", LEARNER_ROLES, sourced_id="alice"),
        User("2", "Terry Teach", "terry@x.org", INSTRUCTOR_ROLES),
        User("24", "Mo", "mo@x.org", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]),
    ]
    teacher, _ = lms.launch(lms.platform.claims(TEACHER))
    page = teacher.get("/lti/course").get_data(as_text=True)
    action = page.split('action="/lti/contexts/', 1)[1].split('"', 1)[0]
    token = csrf_token(page.encode())
    done = teacher.post(f"/lti/contexts/{action}", data={"csrf_token": token})
    assert done.status_code == 302
    text = teacher.get("/lti/course").get_data(as_text=True)
    assert "3 learner(s) added" in text and "2 member(s) who are not active learners" in text
    with lms.course.db.read() as s:
        linked = dict(s.execute(select(LtiUser.sub, LtiUser.learner_id)).all())
        assert linked["23"] == "alice"  # linked by the ID number
        assert s.get(Learner, linked["21"]).name == "Fay First"
        assert "2" in linked and linked["2"] is None  # the instructor launched; not a learner
    (call,) = [c for c in lms.platform.calls if "member" in c.path or "names_and_roles" in c.path]
    assert call.method == "GET"
    # without the CSRF token, or as a learner, nothing happens
    assert teacher.post(f"/lti/contexts/{action}").status_code == 400
    learner, _ = lms.launch(lms.platform.claims(DANA))
    token = csrf_token(learner.get("/").data)
    assert learner.post(f"/lti/contexts/{action}", data={"csrf_token": token}).status_code == 404


def test_key_rotation_keeps_old_signatures_verifiable_until_retired(lms):
    db = lms.course.db
    tool = lms.course.app.test_client()
    first = tool.get("/lti/jwks.json").get_json()["keys"]
    assert len(first) == 1 and first[0]["alg"] == "RS256" and "d" not in first[0]
    old = keys.signing_key(db)
    signed_before = jwt.encode({"iss": "tool"}, old.private_pem, "RS256", {"kid": old.kid})
    new_kid, published = keys.rotate(db)
    assert published == 2 and new_kid != old.kid
    listed = {k["kid"]: k for k in tool.get("/lti/jwks.json").get_json()["keys"]}
    assert set(listed) == {old.kid, new_kid}
    public = jwt.PyJWK(listed[old.kid]).key
    assert jwt.decode(signed_before, public, algorithms=["RS256"]) == {"iss": "tool"}
    # the services now sign with the new key, and the platform verifies it from the key set
    client, _ = lms.launch(lms.platform.claims(DANA))
    submit(client)
    lms.course.grade_all()
    ToolConnector.forget_tokens()
    assert step(lms) == 1
    (token_call,) = [c for c in lms.platform.calls if c.body and "kid" in (c.body or {})]
    assert token_call.body["kid"] == new_kid
    keys.rotate(db, retire_old=True)
    assert [k["kid"] for k in tool.get("/lti/jwks.json").get_json()["keys"]] == [new_kid]
