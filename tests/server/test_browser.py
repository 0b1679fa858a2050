"""The course server in a real browser (issue 12, deliverable 7): headless Debian Chromium driven
by Playwright against a live ``grader serve`` that grades the tiny course for real.

The learner path (sign-in link -> bundle -> upload -> queued -> graded -> report) and the
instructor path (instructor link -> gradebook -> report -> override form -> an override with a
comment -> the learner's history -> the gradebook's new score -> the Canvas and Moodle CSV
downloads) run on a phone-sized screen; on every page
they visit, axe-core (shipped offline in axe-playwright-python) must report no violation of impact
serious or critical, and the page must not scroll sideways. The learner path also runs with
JavaScript off: the pages are forms and links, and a grading in progress reloads itself.

The look: every main page (welcome, the learner's home, a submission, its report, the quiz, the
gradebook, a learner's history, the override form, the LMS import) is opened at phone and desktop
width and in the dark scheme; axe must find no violation at all, the page must not scroll
sideways (the gradebook scrolls inside its own region), a score such as "110 / 110" must stay on
one line, and a keyboard user must see where the focus is. Screenshots of each go to the folder
named by ``GRADER_SCREENSHOTS`` (default: the test's temporary folder) for a human to look at.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server import live

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(live.chromium_missing() is not None, reason=str(live.chromium_missing())),
]


@dataclass
class LiveCourse:
    server: live.Server
    links: dict[str, str]  # anna, bob (never submits), cleo (without JavaScript), instructor
    overridden: float = 0.0  # the graded score of the check the instructor path sets to 0

    @property
    def base(self) -> str:
        return self.server.base

    def api(self, who: str) -> live.Client:
        return live.Client(self.base, live.token_of(self.links[who]))


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> LiveCourse:
    folder = tmp_path_factory.mktemp("browser")
    course_with_quiz = live.tiny_course_with_quiz(folder)  # the quiz's pages are looked at too
    with live.running(folder, assignment=str(course_with_quiz)) as server:
        links = live.add_roster(
            server.data,
            server.base,
            [("anna", "Anna", "a@x.org"), ("bob", "Bob", "b@x.org"), ("cleo", "Cleo", "c@x.org")],
        )
        links["instructor"] = live.instructor_link(server.data, server.base)
        yield LiveCourse(server, links)


@pytest.fixture(scope="module")
def chromium():
    with live.browser() as browser:
        yield browser


@pytest.fixture
def problems() -> list[str]:
    """Accessibility and phone-layout findings of the pages a test visits (none allowed: each
    test asserts so at its end)."""
    return []


def _status(page: Any) -> str:
    return page.locator("dd[class^=status-]").inner_text().strip()


def test_learner_path(course, chromium, problems):
    page = live.phone_page(chromium)
    page.goto(course.base + "/")
    assert "Sign in with the personal link" in page.inner_text("main")
    live.check_page(page, problems)

    page.goto(course.links["anna"])
    assert page.url == course.base + "/"  # the token is not left in the address bar
    assert page.locator("h1").inner_text() == "Hello Anna"
    live.check_page(page, problems)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the assignment bundle").click()
    bundle = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = {Path(name).name for name in bundle.namelist()}
    assert {"learner.ipynb", "README.md"} <= names
    assert not names & {"solution.ipynb", "reference.py", "test_hidden.py"}, names

    page.set_input_files(
        "input[type=file]",
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a notebook"},
    )
    page.get_by_role("button", name="Submit for grading").click()
    assert "Not accepted" in page.get_by_role("alert").inner_text()
    live.check_page(page, problems)

    page.get_by_label("Your notebook (.ipynb)").set_input_files(str(live.SOLUTION))
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url("**/submissions/*")
    assert "received and queued" in page.get_by_role("status").inner_text()
    assert _status(page) in ("queued", "grading")
    live.check_page(page, problems)

    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded
    page.wait_for_selector("dd.status-graded", timeout=90_000)
    assert page.evaluate("window.sameDocument === true"), "the status was not updated in place"
    assert "5 / 5" in page.inner_text("main")
    live.check_page(page, problems)

    page.get_by_role("link", name="Read the report").click()
    page.wait_for_url("**/report")
    page.wait_for_load_state()  # the title is read from the loaded report, not mid-navigation
    assert "5.0/5.0" in page.title()
    live.check_page(page, problems)

    page.goto(course.base + "/")
    row = page.locator("tbody tr").first
    assert "graded" in row.inner_text() and "5 / 5" in row.inner_text()
    assert row.get_by_role("link", name="report").count() == 1
    live.check_page(page, problems)

    # another learner, signed in, reaches none of it: the same "not found" as a missing page
    submission = page.locator("tbody tr a").first.get_attribute("href")
    other = live.phone_page(chromium)
    other.goto(course.links["bob"])
    for path in (submission, submission + "/report"):
        response = other.goto(course.base + path)
        assert response.status == 404 and "5 / 5" not in other.content()
    assert other.locator("h1").inner_text() == "Not found"
    live.check_page(other, problems)
    assert not problems, "\n".join(problems)


def test_learner_path_without_javascript(course, chromium):
    """Forms and links only: the upload works, and the submission's page reloads itself (a
    <noscript> refresh) until the grading ends."""
    page = live.phone_page(chromium, javascript=False)
    page.goto(course.links["cleo"])
    assert page.locator("h1").inner_text() == "Hello Cleo"
    page.get_by_label("Your notebook (.ipynb)").set_input_files(str(live.SOLUTION))
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url("**/submissions/*")
    page.wait_for_selector("dd.status-graded", timeout=90_000)
    page.get_by_role("link", name="Read the report").click()
    page.wait_for_url("**/report")
    page.wait_for_load_state()  # the title is read from the loaded report, not mid-navigation
    assert "5.0/5.0" in page.title()


# The instructor path: each step takes the page and the course and leaves the page where the next
# step starts: gradebook -> a report -> the override form -> an override of one of anna's checks
# with a comment -> the gradebook with the new score -> the Canvas and Moodle CSV downloads.


def _gradebook(page: Any, course: LiveCourse, problems: list[str]) -> None:
    page.goto(course.links["instructor"])
    assert page.url == course.base + "/instructor"
    assert page.locator("h1").inner_text() == "Gradebook"
    rows = {r.locator("td").first.inner_text(): r for r in page.locator("tbody tr").all()}
    assert {"anna", "bob", "cleo"} <= set(rows)
    assert "not submitted" in rows["bob"].inner_text()
    assert "graded" in rows["anna"].inner_text() and "5 / 5" in rows["anna"].inner_text()
    live.check_page(page, problems)


def _open_report(page: Any, course: LiveCourse, problems: list[str]) -> None:
    row = page.locator("tbody tr", has_text="anna")
    row.get_by_role("link", name="report").click()
    page.wait_for_url("**/report")
    page.wait_for_load_state()  # the title is read from the loaded report, not mid-navigation
    assert page.url.endswith("/report") and "5.0/5.0" in page.title()
    live.check_page(page, problems)
    page.go_back()


OVERRIDE_COMMENT = "Checked by hand: the first check counts 0 (browser test)."


def _override(page: Any, course: LiveCourse, problems: list[str]) -> None:
    """The override form of anna's latest submission; the first check set to 0 with a comment."""
    row = page.locator("tbody tr", has_text="anna")
    row.get_by_role("link", name="override").click()
    page.wait_for_url("**/override*")
    page.wait_for_load_state()
    assert "/override" in page.url and page.locator("h1").inner_text().startswith("Override: anna")
    live.check_page(page, problems)
    first = page.locator("tbody tr").first.locator("td")
    name, graded = first.nth(1).inner_text(), first.nth(2).inner_text()
    assert graded.split(" / ")[0] == graded.split(" / ")[1] != "0", graded  # full marks
    page.get_by_label("Check", exact=True).select_option(name)
    page.get_by_label("New score").fill("0")
    page.get_by_label("Comment").fill(OVERRIDE_COMMENT)
    with page.expect_navigation():  # the form posts, then the page reloads with the result
        page.get_by_role("button", name="Save").click()
    assert f"Overrode check {name}." in page.inner_text("main")
    assert OVERRIDE_COMMENT in page.locator("tbody tr").first.inner_text()
    live.check_page(page, problems)
    course.overridden = float(graded.split(" / ")[0])


def _gradebook_shows_the_override(page: Any, course: LiveCourse, problems: list[str]) -> None:
    page.get_by_role("link", name="history").click()
    page.wait_for_url("**/instructor/learners/anna")
    page.wait_for_load_state()
    assert page.url.endswith("/instructor/learners/anna") and OVERRIDE_COMMENT in page.content()
    live.check_page(page, problems)
    page.goto(course.base + "/instructor")
    cells = page.locator("tbody tr", has_text="anna").locator("td")
    new = 5 - course.overridden
    assert cells.nth(4).inner_text() == f"{new:g} / 5 (o)"  # notebook, overridden
    assert cells.nth(5).inner_text() == "- / 10"  # no quiz attempt yet
    assert cells.nth(6).inner_text() == f"{new:g} / 15"  # the quiz not taken counts 0
    live.check_page(page, problems)


def _download(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.get_by_role("link", name=link).click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


def _lms_exports(page: Any, course: LiveCourse, problems: list[str]) -> None:
    """Both LMS files: the documented header row, and anna's row with her overridden total."""
    title = page.title()  # the course's title: the LMS grade column's default name
    new = f"{5 - course.overridden:g}"
    canvas = _download(page, "Canvas import CSV")
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert len(canvas[0]) == 6 and canvas[0][5] == title
    assert ["Anna", "", "anna", "", "", new] in canvas[1:], canvas
    moodle = _download(page, "Moodle import CSV")
    assert moodle[0][:4] == ["First name", "Last name", "ID number", "Email address"]
    assert len(moodle[0]) == 5 and moodle[0][4] == canvas[0][5]
    assert ["Anna", "", "anna", "a@x.org", new] in moodle[1:], moodle
    assert page.url == course.base + "/instructor"  # a download leaves the page as it was
    live.check_page(page, problems)


INSTRUCTOR_PATH: list[Callable[[Any, LiveCourse, list[str]], None]] = [
    _gradebook,
    _open_report,
    _override,
    _gradebook_shows_the_override,
    _lms_exports,
]


@pytest.fixture(scope="module")
def anna_graded(course) -> int:
    """One graded submission of anna's, sent through the API (the instructor path needs one)."""
    client = course.api("anna")
    status, answer = client.submit(live.SOLUTION.read_bytes())
    assert status == 201, answer
    assert client.follow(answer["id"])[-1] == "graded"
    return answer["id"]


def test_instructor_path(course, chromium, anna_graded, problems):
    status, _, answer = course.api("bob").get("/api/v1/gradebook.csv")
    assert status == 403 and "instructor" in json.loads(answer)["error"]
    page = live.phone_page(chromium)
    for step in INSTRUCTOR_PATH:
        step(page, course, problems)
    assert not problems, "\n".join(problems)


# The look: each main page at phone and desktop width, and in the dark scheme (live.Looker).


@pytest.fixture
def looker(tmp_path) -> live.Looker:
    return live.looker(tmp_path)


def test_every_page_looks_cared_for_at_phone_and_desktop_width(
    course, chromium, anna_graded, looker
):
    learner = live.phone_page(chromium)
    learner.goto(course.base + "/")
    looker.look(learner, "welcome")
    learner.goto(course.links["anna"])
    looker.look(learner, "home")
    learner.goto(f"{course.base}/submissions/{anna_graded}")
    looker.look(learner, "submission")
    learner.goto(f"{course.base}/submissions/{anna_graded}/report")
    looker.look(learner, "report")
    learner.goto(course.base + "/quiz/")
    looker.look(learner, "quiz-home")
    learner.get_by_role("button", name="Start attempt 1").click()
    learner.wait_for_url("**/quiz/attempts/*")
    looker.look(learner, "quiz-attempt")
    for question in learner.locator("fieldset.question").all():  # the first option, or "1"
        choice = question.locator("input[type=radio], input[type=checkbox]")
        if choice.count():
            choice.first.check()
        else:
            question.locator("input[type=text]").fill("1")
    learner.get_by_role("button", name="Submit answers").click()
    learner.wait_for_url("**/result")
    looker.look(learner, "quiz-result")
    learner.goto(course.base + "/submissions/999999")
    looker.look(learner, "not-found")
    learner.goto(course.links["bob"])  # another learner's link: a question, not a switch
    assert learner.locator("h1").inner_text() == "Switch to another account?"
    looker.look(learner, "switch-account")

    teacher = live.phone_page(chromium)
    teacher.goto(course.links["instructor"])
    looker.look(teacher, "gradebook")
    gradebook = teacher.get_by_role("region", name="Gradebook")
    widths = "(region) => [region.scrollWidth, region.clientWidth]"
    content, shown = gradebook.evaluate(widths)
    assert content > shown, "on a phone the gradebook scrolls inside its region"
    teacher.set_viewport_size(live.DESKTOP)
    content, shown = gradebook.evaluate(widths)
    assert content <= shown, f"on a laptop the whole gradebook is shown ({content} > {shown} px)"
    for _ in range(40):  # a keyboard user reaches a button and sees where the focus is
        teacher.keyboard.press("Tab")
        tag, outline, width = teacher.evaluate(live.FOCUS_RING)
        if tag == "BUTTON":
            break
    assert (tag, outline) == ("BUTTON", "solid") and width >= 2, (tag, outline, width)
    teacher.goto(course.base + "/instructor/learners/anna")
    looker.look(teacher, "learner")
    teacher.goto(f"{course.base}/instructor/submissions/{anna_graded}/override")
    looker.look(teacher, "override")
    teacher.goto(course.base + "/instructor/import")
    looker.look(teacher, "import")
    teacher.goto(course.base + "/quiz/instructor")
    looker.look(teacher, "quiz-instructor")
    assert not looker.problems, "\n".join(looker.problems)


def test_the_icon_and_the_stylesheet_are_served(course):
    """Browsers ask for /favicon.ico whatever the page links: it answers (no 404 in the logs)."""
    client = live.Client(course.base)
    status, headers, body = client.get("/favicon.ico")
    assert status == 200 and client.url.endswith("/static/favicon.svg")
    assert headers["Content-Type"].startswith("image/svg+xml") and body.startswith(b"<svg")
    _, _, page = client.get("/")
    for link in (
        'rel="icon" href="/static/favicon.svg"',
        'rel="stylesheet" href="/static/course.css"',
    ):
        assert link.encode() in page
    status, headers, _ = client.get("/static/course.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
