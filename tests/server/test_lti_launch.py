"""LTI 1.3 launches against the fake platform (``lti_platform``), in Moodle's and Canvas's claim
shapes: a learner's first launch creates their learner and signs them in on the assignment's page,
roles map to the roster, and launches that are forged, replayed, expired, for another audience or
another deployment are refused with a page in plain words and logged. Also: the session cookie's
attributes (an LMS iframe needs SameSite=None; Secure over https), framing only by the launching
LMS, and ``grader lti register``/``rotate-key``."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from grader.cli import main as grader_main
from grader.server.lti import platforms
from grader.server.models import AuditEvent, Learner, LtiUser
from tests.server import lti_platform
from tests.server.helpers import make_course
from tests.server.lti_platform import CLAIM, INSTRUCTOR_ROLES, LEARNER_ROLES, User

DANA = User("7", "Dana Doe", "dana@x.org", LEARNER_ROLES, sourced_id="", username="ddoe")
TEACHER = User("2", "Terry Teach", "terry@x.org", INSTRUCTOR_ROLES)


@dataclasses.dataclass
class Lms:
    course: object
    platform: lti_platform.FakePlatform

    def launch(self, claims, client=None):
        client = client or self.course.app.test_client()
        return client, lti_platform.launch(client, self.platform, claims)


def register(db, platform) -> None:
    platforms.register(
        db,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_id=platform.deployment_id,
        auth_url=platform.auth_url,
        token_url=platform.token_url,
        jwks_url=platform.jwks_url,
    )


def lms_for(data_dir, db, settings, flavour):
    course = make_course(data_dir, db, settings)
    platform = lti_platform.FakePlatform(
        tool_jwks=lambda: course.app.test_client().get("/lti/jwks.json").get_json(),
        tool_launch_url=settings.base_url + "/lti/launch",
        tool_login_url=settings.base_url + "/lti/login",
        flavour=flavour,
    ).start()
    register(db, platform)
    return Lms(course, platform)


@pytest.fixture(params=["moodle", "canvas"])
def lms(request, data_dir, db, settings):
    made = lms_for(data_dir, db, settings, request.param)
    yield made
    made.platform.stop()


@pytest.fixture
def moodle(data_dir, sqlite_db, settings):
    made = lms_for(data_dir, sqlite_db, settings, "moodle")
    yield made
    made.platform.stop()


def heading(response) -> str:
    text = response.get_data(as_text=True)
    return text.split("<h1>", 1)[1].split("</h1>", 1)[0] if "<h1>" in text else ""


def test_a_learners_first_launch_creates_them_and_opens_the_assignment(lms):
    client, answer = lms.launch(lms.platform.claims(DANA))
    assert answer.status_code == 302 and answer.location == "/"
    assert heading(client.get("/")) == "Hello Dana Doe"  # the existing pages, signed in
    with lms.course.db.read() as s:
        learner = s.scalar(select(Learner).join(LtiUser).where(LtiUser.sub == "7"))
        assert (learner.id, learner.name, learner.email) == ("dana@x.org", "Dana Doe", "dana@x.org")
    again, answer = lms.launch(lms.platform.claims(DANA))  # another browser, the same learner
    assert heading(again.get("/")) == "Hello Dana Doe"
    with lms.course.db.read() as s:
        assert s.scalar(select(func.count(Learner.id))) == 3  # alice, bob, dana: no duplicate
        assert s.scalar(select(func.count(LtiUser.id))) == 1


def test_a_roster_learner_is_linked_by_the_lms_sourced_id_never_by_email(moodle):
    """alice is on the roster (email a@x.org). A launch that only claims her email is another
    person (a learner can edit their email in the LMS); her ID number links her."""
    impostor = User("66", "Not Alice", "a@x.org", LEARNER_ROLES)
    client, _ = moodle.launch(moodle.platform.claims(impostor))
    assert heading(client.get("/")) == "Hello Not Alice"
    alice = User("11", "Alice A.", "alice@lms.org", LEARNER_ROLES, sourced_id="alice")
    client, _ = moodle.launch(moodle.platform.claims(alice))
    assert heading(client.get("/")) == "Hello Alice"  # the roster's alice, her own name
    with moodle.course.db.read() as s:
        assert s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == "11")) == "alice"
        assert s.scalar(select(LtiUser.learner_id).where(LtiUser.sub == "66")) != "alice"


def test_an_instructor_launch_reaches_the_instructors_pages(lms):
    client, answer = lms.launch(lms.platform.claims(TEACHER))
    assert answer.status_code == 302 and answer.location == "/lti/course"
    page = client.get("/lti/course")
    assert page.status_code == 200 and "Object localization (fake LMS course)" in page.text
    assert client.get("/instructor").status_code == 200
    learner, _ = lms.launch(lms.platform.claims(DANA))
    assert learner.get("/instructor").status_code == 404
    assert learner.get("/lti/course").status_code == 404


def _refused(answer, words: str) -> None:
    assert answer.status_code == 403, answer.data[:300]
    assert heading(answer) == "Launch refused"
    assert words in answer.get_data(as_text=True)


def _post_launch(lms, claims, sign):
    """Start a login, then post an id_token made by ``sign(claims with the nonce)``."""
    from urllib.parse import parse_qsl, urlsplit

    client = lms.course.app.test_client()
    started = client.get("/lti/login", query_string=lms.platform.login_params(claims))
    params = dict(parse_qsl(urlsplit(started.location).query))
    lms.platform.pending.pop(params["lti_message_hint"])
    token = sign({**claims, "nonce": params["nonce"]})
    return client, client.post("/lti/launch", data={"id_token": token, "state": params["state"]})


def test_forged_replayed_expired_and_foreign_launches_are_refused_and_logged(lms, caplog):
    caplog.set_level(logging.WARNING, logger="grader.server.lti.launch")
    platform = lms.platform
    forger_key, _ = lti_platform.new_key()
    cases = {
        "forged": (platform.claims(DANA), lambda c: platform.sign(c, key_pem=forger_key)),
        "expired": (
            {**platform.claims(DANA), "iat": int(time.time()) - 900, "exp": int(time.time()) - 600},
            platform.sign,
        ),
        "audience": ({**platform.claims(DANA), "aud": "another-tool"}, platform.sign),
        "deployment": (
            {**platform.claims(DANA), CLAIM + "deployment_id": "99"},
            platform.sign,
        ),
    }
    words = {
        "forged": "not sent by the registered platform",
        "expired": "The launch has expired",
        "audience": "meant for another tool",
        "deployment": "deployment of the LMS that is not registered",
    }
    for name, (claims, sign) in cases.items():
        client, answer = _post_launch(lms, claims, sign)
        _refused(answer, words[name])
        assert heading(client.get("/")) != "Hello Dana Doe", name  # nobody signed in
    # replayed: the same, valid form posted a second time (from another browser)
    from urllib.parse import parse_qsl, urlsplit

    first = lms.course.app.test_client()
    started = first.get("/lti/login", query_string=platform.login_params(platform.claims(DANA)))
    _, form = platform.authorize(dict(parse_qsl(urlsplit(started.location).query)))
    launched = first.post("/lti/launch", data=form)
    assert launched.status_code == 302
    assert launched.headers["Cache-Control"] == "no-store"  # it signs Dana in: never kept
    assert started.headers["Cache-Control"] == "no-store"
    thief = lms.course.app.test_client()
    thief.set_cookie(f"lti1p3-{form['state']}", form["state"])
    _refused(thief.post("/lti/launch", data=form), "already used")
    assert heading(thief.get("/")) != "Hello Dana Doe"
    # a mentor is neither learner nor instructor
    mentor = User(
        "9", "Mo Mentor", "mo@x.org", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]
    )
    _refused(lms.launch(platform.claims(mentor))[1], "neither")
    with lms.course.db.read() as s:
        reasons = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "lti_launch_refused")
        ).all()
    assert len(reasons) == 6
    logged = [r.getMessage() for r in caplog.records if "LTI launch refused" in r.getMessage()]
    assert len(logged) == 6
    assert any("expired" in line.lower() for line in logged)
    assert any("nonce" in line.lower() for line in logged)


def test_a_login_from_an_unregistered_platform_is_refused(moodle):
    params = moodle.platform.login_params(moodle.platform.claims(DANA))
    answer = moodle.course.app.test_client().get(
        "/lti/login", query_string={**params, "iss": "https://elsewhere.example", "client_id": "x"}
    )
    _refused(answer, "not registered on this course server")


def _session_cookie(response) -> tuple[dict[str, str], str]:
    """The session cookie's attributes (lower-cased names; a flag's value is "") and its header
    (the standard library's cookie parser does not know Partitioned)."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("objloc_session="):
            parts = [p.strip() for p in header.split(";")[1:]]
            return {p.split("=")[0].lower(): p.partition("=")[2] for p in parts}, header
    raise AssertionError(response.headers)


@pytest.mark.parametrize(
    ("base_url", "samesite", "want", "secure"),
    [
        ("https://course.example.org", "auto", "None", True),
        ("http://127.0.0.1:8000", "auto", "Lax", False),
        ("https://course.example.org", "lax", "Lax", True),
        ("http://localhost:8000", "none", "None", True),
    ],
)
def test_the_session_cookie_works_in_an_lms_iframe_over_https(
    data_dir, sqlite_db, settings, base_url, samesite, want, secure
):
    settings = dataclasses.replace(settings, base_url=base_url, cookie_samesite=samesite)
    lms = lms_for(data_dir, sqlite_db, settings, "canvas")
    try:
        client = lms.course.app.test_client()
        answer = lti_platform.launch(client, lms.platform, lms.platform.claims(DANA))
        assert answer.status_code == 302
        morsel, header = _session_cookie(answer)
        assert morsel["samesite"] == want, header
        assert ("secure" in morsel) is secure, header
        assert "httponly" in morsel, header
        assert ("partitioned" in morsel) is (want == "None"), header
    finally:
        lms.platform.stop()


def test_only_the_launching_lms_may_frame_the_pages(moodle):
    client, _ = moodle.launch(moodle.platform.claims(DANA))
    page = client.get("/")
    assert "X-Frame-Options" not in page.headers
    assert page.headers["Content-Security-Policy"] == (
        f"frame-ancestors 'self' {moodle.platform.base}"
    )
    signed_in = moodle.course.client("alice")  # a sign-in link: no LMS around it
    assert signed_in.get("/").headers["X-Frame-Options"] == "DENY"
    quiz = client.get("/quiz/")  # the quiz's own policy keeps its rules, framing aside
    policy = quiz.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {moodle.platform.base}" in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" not in policy
    # a refused launch shows its page in whatever LMS frame it was opened in
    params = moodle.platform.login_params(moodle.platform.claims(DANA))
    refused = moodle.course.app.test_client().get(
        "/lti/login", query_string={**params, "iss": "https://elsewhere.example"}
    )
    assert refused.status_code == 403 and "X-Frame-Options" not in refused.headers
    assert refused.headers["Content-Security-Policy"] == "frame-ancestors *"


def test_grader_lti_register_adds_platforms_and_deployments(tmp_path, capsys):
    data = tmp_path / "course"
    base = [
        "lti", "register", "--data", str(data), "--issuer", "https://moodle.example.edu",
        "--client-id", "abc", "--deployment-id", "1",
        "--auth-url", "https://moodle.example.edu/mod/lti/auth.php",
        "--token-url", "https://moodle.example.edu/mod/lti/token.php",
        "--jwks-url", "https://moodle.example.edu/mod/lti/certs.php",
    ]  # fmt: skip
    assert grader_main(base) == 0
    out = capsys.readouterr()
    assert "registered https://moodle.example.edu" in out.err
    assert "http://127.0.0.1:8000/lti/jwks.json" in out.out
    assert "http://127.0.0.1:8000/lti/login" in out.out
    assert "PRIVATE" not in out.out + out.err
    assert grader_main([*base[:-7], "2", *base[-6:]]) == 0  # another deployment
    canvas = [
        "lti", "register", "--data", str(data), "--issuer", "https://canvas.instructure.com",
        "--client-id", "10000000000001", "--deployment-id", "5:abc",
        "--auth-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--token-url", "https://sso.canvaslms.com/login/oauth2/token",
        "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks",
    ]  # fmt: skip
    assert grader_main(canvas) == 0
    capsys.readouterr()
    assert grader_main(["lti", "platforms", "--data", str(data)]) == 0
    listing = capsys.readouterr().out.splitlines()
    typo = tmp_path / "cuorse"  # a command that reads a course never starts an empty one
    for command in (["lti", "platforms"], ["lti", "rotate-key"], ["regrade"]):
        with pytest.raises(SystemExit) as refused:
            grader_main([*command, "--data", str(typo)])
        assert refused.value.code == 2 and not typo.exists()
        assert f"there is no course at {typo}" in capsys.readouterr().err
    assert len(listing) == 2
    assert "deployments 1, 2" in listing[0] and "10000000000001" in listing[1]
    bad = [*base[:-2], "--jwks-url", "not a url"]
    assert grader_main(bad) == 2
    assert "--jwks-url 'not a url' is not an http(s) URL" in capsys.readouterr().err
    bare_host = [*base[:5], "moodle.example.edu", *base[6:]]  # iss is a URL in every id_token
    assert grader_main(bare_host) == 2
    assert "--issuer 'moodle.example.edu' is not an http(s) URL" in capsys.readouterr().err


def test_grader_lti_register_says_when_base_url_is_not_public(tmp_path, capsys):
    data = tmp_path / "course"
    register = [
        "lti", "register", "--data", str(data), "--issuer", "https://moodle.example.edu",
        "--client-id", "abc", "--deployment-id", "1",
        "--auth-url", "https://moodle.example.edu/mod/lti/auth.php",
        "--token-url", "https://moodle.example.edu/mod/lti/token.php",
        "--jwks-url", "https://moodle.example.edu/mod/lti/certs.php",
    ]  # fmt: skip
    assert grader_main(register) == 0
    assert "an LMS needs this server's public https URL" in capsys.readouterr().err
    data.joinpath("settings.yaml").write_text("base_url: https://course.example.org/\n")
    assert grader_main(register) == 0
    out = capsys.readouterr()
    assert "https URL" not in out.err
    assert "https://course.example.org/lti/jwks.json" in out.out


def test_two_platforms_launch_the_same_course(moodle, settings):
    canvas = lti_platform.FakePlatform(
        tool_jwks=moodle.platform.tool_jwks,
        tool_launch_url=settings.base_url + "/lti/launch",
        tool_login_url=settings.base_url + "/lti/login",
        flavour="canvas",
        deployment_id="12:8865aa05b4b79b64a91a86042e43af5ea8ae79eb",
    ).start()
    try:
        register(moodle.course.db, canvas)
        same_sub = User("7", "Carla Canvas", "carla@x.org", LEARNER_ROLES)  # sub 7 there too
        from_moodle, _ = moodle.launch(moodle.platform.claims(DANA))
        from_canvas = moodle.course.app.test_client()
        lti_platform.launch(from_canvas, canvas, canvas.claims(same_sub))
        assert heading(from_moodle.get("/")) == "Hello Dana Doe"
        assert heading(from_canvas.get("/")) == "Hello Carla Canvas"  # another person
        # a launch signed by one platform under the other's issuer is refused
        forged = {**canvas.claims(same_sub), "iss": moodle.platform.issuer}
        forged["aud"] = moodle.platform.client_id
        forged[CLAIM + "deployment_id"] = moodle.platform.deployment_id
        _, answer = _post_launch(moodle, forged, canvas.sign)
        _refused(answer, "not sent by the registered platform")
    finally:
        canvas.stop()


def test_a_platform_that_rotates_its_key_keeps_launching(moodle):
    """LMSs rotate their signing key and publish the new one in their key set: the next launch,
    signed with a key the tool has not seen, is verified against the key set fetched again; a
    token signed with the old key, no longer published, is refused."""
    platform = moodle.platform
    _, answer = moodle.launch(platform.claims(DANA))
    assert answer.status_code == 302
    old_pem, old_kid = platform.private_pem, platform.jwk["kid"]
    platform.private_pem, platform.jwk = lti_platform.new_key()
    platform.private_key = serialization.load_pem_private_key(platform.private_pem.encode(), None)
    _, answer = moodle.launch(platform.claims(DANA))
    assert answer.status_code == 302 and answer.location == "/", answer.data[:300]
    _, answer = _post_launch(
        moodle, platform.claims(DANA), lambda c: platform.sign(c, key_pem=old_pem, kid=old_kid)
    )
    _refused(answer, "not sent by the registered platform")
