"""A term with two assignments, in a real browser (headless Chromium, Playwright) against a live
``grader serve`` that grades the tiny course for real.

The first assignment's deadline has passed. The instructor gives one learner an extension from
the learner's page; that learner submits from the first assignment's section of their home and
the submission is on time, while another learner's is late. Every page of the term (the home with
one section per assignment, the gradebook with a column per item, the learner's page with the
extension, each assignment's class summary) is looked at as ``live.Looker`` does: at phone and
desktop width, in the dark scheme, axe clean, nothing scrolling sideways, scores on one line.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.server import live

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(live.chromium_missing() is not None, reason=str(live.chromium_missing())),
]

KERAS = Path(__file__).resolve().parents[1] / "fixtures" / "keras_course"
FIRST, SECOND = "tiny_course", "keras_course"


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    folder = tmp_path_factory.mktemp("term")
    first = live.tiny_course_with_quiz(folder)  # its quiz is an item of the total too
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    with live.running(
        folder,
        quiz_points=20,
        assignments=[
            {"assignment": str(first), "deadline": past.isoformat(), "points": 50},
            {"assignment": str(KERAS), "deadline": later.isoformat(), "points": 30},
        ],
    ) as server:
        links = live.add_roster(
            server.data, server.base, [("anna", "Anna", "a@x.org"), ("bob", "Bob", "b@x.org")]
        )
        links["instructor"] = live.instructor_link(server.data, server.base)
        yield server, links


@pytest.fixture(scope="module")
def chromium():
    with live.browser() as browser:
        yield browser


def submit_first(page, link: str) -> None:
    """Sign in with ``link`` and submit the tiny course's solution from the first section."""
    page.goto(link)
    section = page.locator(f"#assignment-{FIRST}")
    section.get_by_label("Your notebook (.ipynb)").set_input_files(str(live.SOLUTION))
    section.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url("**/submissions/*")
    page.wait_for_selector("dd.status-graded", timeout=90_000)


def test_an_extension_and_the_pages_of_a_term_with_two_assignments(term, chromium, tmp_path):
    server, links = term
    looker = live.looker(tmp_path)
    teacher = live.phone_page(chromium)
    teacher.goto(links["instructor"])
    teacher.goto(server.base + "/instructor/learners/anna")
    teacher.get_by_label("Assignment").select_option(FIRST)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    teacher.get_by_label("New deadline for this learner").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    teacher.get_by_label("Why (kept in the history)").first.fill("ill last week")
    teacher.get_by_role("button", name="Set the extension").click()
    assert "ill last week" in teacher.locator("#extensions").inner_text()
    looker.look(teacher, "term-learner")

    anna, bob = live.phone_page(chromium), live.phone_page(chromium)
    submit_first(anna, links["anna"])
    submit_first(bob, links["bob"])
    anna.goto(server.base + "/")
    first = anna.locator(f"#assignment-{FIRST}")
    assert "(extended for you" in first.inner_text()
    assert "late" not in first.locator("table").inner_text()  # on time: the extension
    bob.goto(server.base + "/")
    assert "late" in bob.locator(f"#assignment-{FIRST} table").inner_text()  # no extension
    assert anna.locator(f"#assignment-{SECOND}").get_by_label("Your notebook (.ipynb)").count()
    looker.look(anna, "term-home")

    teacher.goto(server.base + "/instructor")
    headers = teacher.locator("thead th").all_inner_texts()
    assert FIRST in headers and SECOND in headers and "Total" in " ".join(headers)
    looker.look(teacher, "term-gradebook")
    teacher.set_viewport_size(live.DESKTOP)
    region = teacher.get_by_role("region", name="Gradebook")
    content, shown = region.evaluate("(r) => [r.scrollWidth, r.clientWidth]")
    assert content <= shown, f"on a laptop the whole gradebook is shown ({content} > {shown} px)"
    teacher.set_viewport_size(live.PHONE)
    for name in (FIRST, SECOND):
        teacher.goto(f"{server.base}/instructor/summary/{name}/")
        assert teacher.locator("h1").count() == 1
        looker.look(teacher, f"term-summary-{name}")
    teacher.goto(f"{server.base}/instructor/summary/{FIRST}/")
    assert {"anna", "bob"} <= set(re.findall(r'href="(\w+)/report\.html"', teacher.content()))
    assert not looker.problems, "\n".join(looker.problems)
