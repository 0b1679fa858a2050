"""The course in an LMS, in a real browser: headless Chromium opens a course page of the fake
platform (``lti_platform``, Moodle's shape) that shows the tool in an iframe, against a live
``grader serve`` grading the shipped assignment for real.

The server has two assignments (the tiny course first, the shipped one second). A learner's
launch from a resource link of the second lands on its section of the learner's page inside the
iframe, submits the reference solution through that section's form, reads the report, and the
platform receives that assignment's score through Assignment and Grade Services (posted by the
server's background poster), and no other. An instructor's deep
linking launch picks the quiz, and the platform receives the signed content item. Forged,
replayed and expired launches are refused with the refusal page.
"""

from __future__ import annotations

import re

import pytest

from tests.objloc import SOLUTION_NOTEBOOK
from tests.server import live
from tests.server.conftest import wait_for
from tests.server.lti_platform import (
    DL,
    INSTRUCTOR_ROLES,
    LEARNER_ROLES,
    User,
    registered_with,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(live.chromium_missing() is not None, reason=str(live.chromium_missing())),
]

LEARNER = User("31", "Lee Learner", "lee@x.org", LEARNER_ROLES, username="lee")
TEACHER = User("32", "Tia Teacher", "tia@x.org", INSTRUCTOR_ROLES, username="tia")
SHIPPED = "object_localization"
ITEM = {"item": f"assignment:{SHIPPED}"}  # a resource link of the second assignment
GRADING_SECONDS = 900  # the real assignment's grading (~2 min here, more under load)


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """A live server of two assignments, the shipped one second, and a fake Moodle registered
    with it."""
    folder = tmp_path_factory.mktemp("lti-browser")
    server = live.new_course(
        folder,
        assignments=[{"assignment": str(live.TINY_COURSE)}, {"assignment": SHIPPED}],
    )
    platform = registered_with(server)
    server.start()
    try:
        yield server, platform
    finally:
        server.stop()
        platform.stop()


@pytest.fixture(scope="module")
def chromium():
    with live.browser() as browser:
        yield browser


def tool_frame(page):
    return page.frame_locator("iframe[name=tool]")


def test_a_learner_launched_from_the_lms_submits_and_the_lms_gets_the_score(lms, chromium):
    _, platform = lms
    page = live.phone_page(chromium)
    page.set_viewport_size({"width": 1200, "height": 1000})
    page.goto(platform.frame_url(platform.claims(LEARNER, custom=ITEM)))
    frame = tool_frame(page)
    assert frame.locator("h1").inner_text() == "Hello Lee Learner"  # signed in, in the iframe
    assert page.frame(name="tool").url.endswith(f"/#assignment-{SHIPPED}")  # at its section
    section = frame.locator(f"#assignment-{SHIPPED}")
    section.get_by_label("Your notebook (.ipynb)").set_input_files(str(SOLUTION_NOTEBOOK))
    section.get_by_role("button", name="Submit for grading").click()
    frame.locator("dd.status-graded").wait_for(timeout=GRADING_SECONDS * 1000)
    assert "100 / 100" in frame.locator("main").inner_text()
    frame.get_by_role("link", name="Read the report").click()
    inner = page.frame(name="tool")
    inner.wait_for_url("**/report")
    inner.wait_for_load_state()
    assert "100.0/100.0" in inner.title()
    assert wait_for(lambda: platform.scores, timeout=60)  # the server's poster sent it
    (score,) = platform.scores
    assert score["userId"] == LEARNER.sub
    assert (score["scoreGiven"], score["scoreMaximum"]) == (100.0, 100.0)
    assert score["gradingProgress"] == "FullyGraded"
    tags = {item["id"]: item.get("tag") for item in platform.line_items.values()}
    assert tags[score["lineitem"]] == f"assignment:{SHIPPED}"  # the line item of its assignment


def test_an_instructor_deep_links_the_quiz(lms, chromium):
    _, platform = lms
    page = live.phone_page(chromium)
    page.set_viewport_size({"width": 1200, "height": 1000})
    page.goto(platform.frame_url(platform.claims(TEACHER, message="LtiDeepLinkingRequest")))
    frame = tool_frame(page)
    assert frame.locator("h1").inner_text() == "Choose what the link opens"
    frame.get_by_role("button", name="Quiz: ").click()
    frame.locator("h1", has_text="Added: Quiz").wait_for()  # back in the LMS
    (response,) = platform.deep_links
    (content,) = response[DL + "content_items"]
    assert content["custom"] == {"item": "quiz:object_localization"}
    assert content["lineItem"]["scoreMaximum"] == 10
    # the link now opens the quiz for a learner
    learner = live.phone_page(chromium)
    learner.goto(platform.frame_url(platform.claims(LEARNER, custom=content["custom"])))
    tool_frame(learner).get_by_role("button", name="Start").first.wait_for()


@pytest.mark.parametrize("attack", ["forged", "expired", "replayed"])
def test_forged_expired_and_replayed_launches_are_refused(lms, chromium, attack):
    _, platform = lms
    page = live.phone_page(chromium)
    if attack == "replayed":
        page.goto(platform.frame_url(platform.claims(LEARNER)))
        assert tool_frame(page).locator("h1").inner_text() == "Hello Lee Learner"
        thief = live.phone_page(chromium)  # another browser posts the captured launch again
        thief.goto(platform.base + "/replay")
        assert thief.locator("h1").inner_text() == "Launch refused"
        assert "already used" in thief.locator("main").inner_text()
        return
    platform.tamper = attack
    page.goto(platform.frame_url(platform.claims(LEARNER)))
    frame = tool_frame(page)
    assert frame.locator("h1").inner_text() == "Launch refused"
    words = {"forged": "not sent by the registered platform", "expired": "has expired"}
    assert words[attack] in frame.locator("main").inner_text()


def test_the_lti_pages_pass_the_accessibility_and_phone_checks(lms, chromium, tmp_path):
    """The instructor's LTI page, the deep linking picker, a learner's page at the assignment
    a link opened and a refusal, opened top-level at phone
    and desktop width and in the dark scheme: axe finds nothing, nothing scrolls sideways (the
    screenshots go where ``live.looker`` says)."""
    _, platform = lms
    looker = live.looker(tmp_path)
    page = live.phone_page(chromium)
    page.goto(platform.login_url(platform.claims(TEACHER)))
    page.wait_for_url("**/lti/course")
    assert page.locator("h1").inner_text() == "Your LMS courses"
    looker.look(page, "lti-course")
    page.goto(platform.login_url(platform.claims(TEACHER, message="LtiDeepLinkingRequest")))
    page.wait_for_url("**/lti/deep-link")
    looker.look(page, "lti-deep-link")
    page.goto(platform.login_url(platform.claims(LEARNER, custom=ITEM)))
    page.wait_for_url(re.compile(f"/#assignment-{SHIPPED}$"))
    looker.look(page, "lti-learner-at-an-assignment")
    platform.tamper = "expired"
    page.goto(platform.login_url(platform.claims(LEARNER)))
    page.locator("h1", has_text="Launch refused").wait_for()
    looker.look(page, "lti-refused")
    assert not looker.problems, "\n".join(looker.problems)
