"""The course server's "Done when" walkthrough (issue 12), against a running ``grader serve``:

    python -m tests.server.course_walkthrough --data DIR [--url URL]    # from the repository root
    python -m tests.server.course_walkthrough --start                   # a throwaway server of its own

It adds a roster of two learners with ``grader roster add``; learner A submits the reference
solution through the API and through the browser (Playwright and Debian's Chromium; skipped with a
message when they are missing) and sees queued -> graded with full marks and the report; learner B
is refused every one of A's resources, pages and API; the quiz refuses a visitor who is not signed
in, and scores and records an attempt of A's (taken through the pages, with the CSRF token), which
B cannot open; the instructor downloads gradebook.csv and finds A's marks there, overrides a check
of A's latest submission with a comment (A's score and report then show it), and downloads the
Canvas and Moodle grade import CSVs (their header rows, A's total: notebook plus quiz).

The server must grade the tiny course (``assignment:`` in ``DIR/settings.yaml``: real grading in
seconds; ``tests.server.live.tiny_course_with_quiz`` makes a copy with a graded quiz, which the
tiny course itself lacks) or ``--notebook`` must be the full-marks solution of the course's own
assignment; the assignment must have a quiz, and the course must accept two submissions in a row
(``cooldown_seconds: 0``). ``tests/server/test_walkthrough.py`` runs this script against a server
it starts. Exit status 0 when every step passed, 1 with the failed step's message otherwise.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from tests.server import live


class StepFailed(AssertionError):
    """A step of the walkthrough did not behave as a course relies on."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def ok(text: str) -> None:
    print(f"ok: {text}", flush=True)


def skipped(text: str) -> None:
    print(f"SKIPPED: {text}", flush=True)


@dataclass
class Walk:
    base: str
    data: Path
    notebook: Path
    links: dict[str, str] = field(default_factory=dict)  # a, b, instructor
    ids: dict[str, str] = field(default_factory=dict)  # a, b: learner ids on the roster
    submissions: list[int] = field(default_factory=list)  # A's
    quiz: tuple[float, float] = (0.0, 0.0)  # A's scored attempt: score, max
    notebook_score: float = 0.0  # A's latest submission's score, overridden

    def api(self, who: str) -> live.Client:
        return live.Client(self.base, live.token_of(self.links[who]))

    def pages(self, who: str) -> live.Client:
        return live.Client(self.base).sign_in(self.links[who])


def check_settings(walk: Walk) -> None:
    from grader.server.settings import load_settings

    settings = load_settings(walk.data)
    expect(
        settings.cooldown_seconds == 0 and settings.submissions_per_day >= 2,
        f"{walk.data}/settings.yaml must allow two submissions in a row (cooldown_seconds: 0, "
        f"submissions_per_day: 2 or more); it has {settings.cooldown_seconds} and "
        f"{settings.submissions_per_day}",
    )
    if walk.notebook == live.SOLUTION:
        graded = settings.chosen_assignment().name
        expect(
            graded == "tiny_course",
            f"the server grades {graded}, and {walk.notebook} is the tiny course's solution: set "
            f"assignment: {live.TINY_COURSE} in {walk.data}/settings.yaml, or give --notebook "
            f"with the full-marks solution of {graded}",
        )
    folder = settings.chosen_assignment().folder
    expect(
        folder is not None and (folder / "quiz" / "quiz.yaml").is_file(),
        f"the course's assignment ({folder}) has no graded quiz (quiz/quiz.yaml): the walkthrough "
        f"takes one; for the tiny course, use a copy made by tests.server.live.tiny_course_with_quiz",
    )
    ok(f"the course in {walk.data} has a quiz and takes two submissions in a row")


def add_roster(walk: Walk) -> None:
    suffix = uuid.uuid4().hex[:6]  # the walkthrough can run again on the same course
    walk.ids = {"a": f"walk-a-{suffix}", "b": f"walk-b-{suffix}"}
    links = live.add_roster(
        walk.data,
        walk.base,
        [(walk.ids["a"], "Learner A", "a@example.org"), (walk.ids["b"], "Learner B", "b@x.org")],
    )
    expect(set(links) == set(walk.ids.values()), f"grader roster add printed {sorted(links)}")
    walk.links = {who: links[learner] for who, learner in walk.ids.items()}
    walk.links["instructor"] = live.instructor_link(walk.data, walk.base)
    expect(all(link.startswith(walk.base + "/signin/") for link in walk.links.values()), "links")
    ok(f"grader roster add: {walk.ids['a']} and {walk.ids['b']}, one sign-in link each")


def full_marks(walk: Walk, ident: int, seen: list[str]) -> None:
    expect(seen[0] in ("queued", "grading"), f"submission {ident} started as {seen[0]}")
    expect(seen[-1] == "graded", f"submission {ident} ended {seen[-1]}")
    order = ["queued", "grading", "graded"]
    expect(seen == sorted(seen, key=order.index), f"statuses out of order: {seen}")
    state = walk.api("a").json(f"/api/v1/submissions/{ident}")
    expect(
        state["max_score"] and state["score"] == state["max_score"],
        f"submission {ident}: {state['score']}/{state['max_score']}, not full marks",
    )
    status, _, report = walk.api("a").get(f"/api/v1/submissions/{ident}/report")
    expect(status == 200 and b"<html" in report.lower(), f"report of {ident}: {status}")
    status, _, page = walk.pages("a").get(f"/submissions/{ident}/report")
    expect(status == 200 and page == report, f"report page of {ident}: {status}")
    ok(f"A sees {' -> '.join(seen)} with {state['score']:g}/{state['max_score']:g} and the report")


def submit_through_api(walk: Walk) -> None:
    status, answer = walk.api("a").submit(walk.notebook.read_bytes(), walk.notebook.name)
    expect(status == 201 and "id" in answer, f"POST /api/v1/submissions: {status} {answer}")
    walk.submissions.append(answer["id"])
    ok(f"A submitted through the API: submission {answer['id']}")
    full_marks(walk, answer["id"], walk.api("a").follow(answer["id"]))


def submit_through_browser(walk: Walk) -> None:
    missing = live.chromium_missing()
    if missing:
        skipped(f"A submits through the browser: {missing}")
        return
    with live.browser() as chromium:
        page = live.phone_page(chromium)
        page.goto(walk.links["a"])
        page.get_by_label("Your notebook (.ipynb)").set_input_files(str(walk.notebook))
        page.get_by_role("button", name="Submit for grading").click()
        page.wait_for_url("**/submissions/*")
        ident = int(page.url.rstrip("/").rsplit("/", 1)[1])
        seen = [page.locator("dd[class^=status-]").inner_text().strip()]
        page.wait_for_selector("dd.status-graded", timeout=120_000)
        seen.append("graded")
        page.get_by_role("link", name="Read the report").click()
        expect(page.url.endswith(f"/submissions/{ident}/report"), f"report at {page.url}")
    walk.submissions.append(ident)
    ok(f"A submitted through the browser: submission {ident}")
    full_marks(walk, ident, seen)


def b_is_refused(walk: Walk) -> None:
    """Every one of A's resources, pages and API, refused to B (404, as for a missing one), and
    to a visitor who is not signed in."""
    b_pages, b_api = walk.pages("b"), walk.api("b")
    visitor = live.Client(walk.base)
    tried = 0
    for ident in walk.submissions:
        for path in (f"/submissions/{ident}", f"/submissions/{ident}/report"):
            for client, who in ((b_pages, "B"), (visitor, "a visitor")):
                status, _, body = client.get(path)
                expect(status == 404, f"{who} got {status} for A's {path}")
                expect(walk.ids["a"].encode() not in body, f"{path} shows A's id to {who}")
                tried += 1
        for path in (f"/api/v1/submissions/{ident}", f"/api/v1/submissions/{ident}/report"):
            status, _, body = b_api.get(path)
            expect(status == 404 and b"score" not in body, f"B's token got {status} for {path}")
            expect(visitor.get(path)[0] == 401, f"no token: {path} not 401")
            tried += 2
    status, _, body = b_api.get("/api/v1/gradebook.csv")
    expect(status == 403 and walk.ids["a"].encode() not in body, f"B: gradebook.csv {status}")
    expect(b_pages.get("/instructor")[0] == 404, "B reaches the instructor's page")
    expect(visitor.get("/api/v1/gradebook.csv")[0] == 401, "gradebook.csv without a token")
    home = b_pages.get("/")[2]
    expect(walk.ids["a"].encode() not in home and b"Learner A" not in home, "B's home shows A")
    ok(f"B (and a visitor) refused all {tried + 3} requests for A's resources")


def instructor_gradebook(walk: Walk) -> None:
    status, headers, body = walk.api("instructor").get("/api/v1/gradebook.csv")
    expect(status == 200 and "text/csv" in headers.get("Content-Type", ""), f"gradebook {status}")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(body.decode()))}
    a, b = rows.get(walk.ids["a"]), rows.get(walk.ids["b"])
    expect(a is not None and b is not None, "gradebook.csv lacks the walkthrough's learners")
    expected_count = str(len(walk.submissions))
    expect(a["submissions"] == expected_count, f"A: {a['submissions']} submissions")
    expect(a["status"] == "graded" and a["score"] == a["max_score"], f"A's row: {a}")
    expect(a["submission_id"] == str(max(walk.submissions)), "A's latest submission")
    expect(b["status"] == "not submitted" and not b["score"], f"B's row: {b}")
    ok(f"the instructor's gradebook.csv: A {a['score']}/{a['max_score']}, B not submitted")


def csrf_of(page: bytes, where: str) -> str:
    match = re.search(rb'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page)
    expect(match, f"{where} has no form with a CSRF token")
    assert match is not None
    return match.group(1).decode()


class Fields(HTMLParser):
    """The quiz questions' answer fields of an attempt page: name -> (input type, first value)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("name") or ""
        if tag == "input" and re.fullmatch(r"q[0-9]+", name) and name not in self.fields:
            self.fields[name] = (found.get("type") or "text", found.get("value") or "")


def take_quiz(walk: Walk) -> None:
    """A visitor is sent to sign in; A starts an attempt, answers every question (the first
    option, or "0": right or wrong, it is scored) and sees the score, recorded on A's quiz page;
    neither B nor a visitor opens A's attempt."""
    visitor = live.Client(walk.base)
    status, _, body = visitor.get("/quiz/")
    expect(status == 401 and b"Sign in to take the quiz" in body, f"visitor at /quiz/: {status}")
    a = walk.pages("a")
    status, _, home = a.get("/quiz/")
    expect(status == 200, f"A at /quiz/: {status} (does the course's assignment have a quiz/?)")
    status, page = a.post("/quiz/start", {"csrf_token": csrf_of(home, "/quiz/")})
    found = re.search(r"/quiz/attempts/([0-9]+)$", a.url)
    expect(status == 200 and found, f"starting an attempt ended at {a.url} with {status}")
    assert found is not None
    attempt = int(found.group(1))
    parser = Fields()
    parser.feed(page.decode())
    expect(parser.fields, f"attempt {attempt}'s page has no questions")
    answers = {
        name: ("0" if kind == "text" else value) for name, (kind, value) in parser.fields.items()
    }
    status, result = a.post(
        f"/quiz/attempts/{attempt}",
        answers | {"csrf_token": csrf_of(page, "the attempt page"), "submit": "1"},
    )
    scored = re.search(rb"Score: ([0-9.]+)/([0-9.]+)", result)
    expect(status == 200 and a.url.endswith(f"/quiz/attempts/{attempt}/result"), f"{a.url}")
    expect(scored, f"attempt {attempt}'s result shows no score")
    assert scored is not None
    walk.quiz = (float(scored.group(1)), float(scored.group(2)))
    expect(0 <= walk.quiz[0] <= walk.quiz[1] > 0, f"score {walk.quiz}")
    listed = a.get("/quiz/")[2].decode()
    expect(
        f"{scored.group(1).decode()} / {scored.group(2).decode()}" in listed,
        "A's quiz page does not list the scored attempt",
    )
    b = walk.pages("b")
    b_token = csrf_of(b.get("/quiz/")[2], "B's /quiz/")
    for path in (f"/quiz/attempts/{attempt}", f"/quiz/attempts/{attempt}/result"):
        for client, who in ((b, "B"), (visitor, "a visitor")):
            status, _, body = client.get(path)
            expect(status == 404 and b"Score:" not in body, f"{who} got {status} for A's {path}")
    status, _ = b.post(f"/quiz/attempts/{attempt}", answers | {"csrf_token": b_token})
    expect(status == 404, f"B answering A's attempt got {status}")
    expect(visitor.post("/quiz/start", {})[0] in (400, 404), "a visitor started an attempt")
    ok(
        f"the quiz: a visitor is sent to sign in; A's attempt {attempt} scored "
        f"{walk.quiz[0]:g}/{walk.quiz[1]:g} and recorded; B and a visitor get 404 for it"
    )


def override_a_check(walk: Walk) -> None:
    """The instructor sets one check of A's latest submission to 0 with a comment; A's score and
    report page show it."""
    ident = max(walk.submissions)
    instructor = walk.pages("instructor")
    path = f"/instructor/submissions/{ident}/override"
    status, _, form = instructor.get(path)
    expect(status == 200, f"the override form of {ident}: {status}")
    rows = re.findall(rb"<td>([^<]+)</td><td>([0-9.]+) / ([0-9.]+)</td>", form)
    expect(rows, f"the override form of {ident} lists no checks")
    name, graded, _ = (value.decode() for value in rows[0])
    name = html.unescape(name)
    expect(float(graded) > 0, f"check {name} of a full-marks solution scored {graded}")
    before = walk.api("a").json(f"/api/v1/submissions/{ident}")["score"]
    comment = f"Walkthrough {uuid.uuid4().hex[:8]}: {name} set to 0 by the instructor"
    status, page = instructor.post(
        path,
        {"csrf_token": csrf_of(form, path), "check": name, "score": "0", "comment": comment},
    )
    expect(status == 200 and f"Overrode check {name}.".encode() in page, f"override: {status}")
    after = walk.api("a").json(f"/api/v1/submissions/{ident}")["score"]
    expect(abs(after - (before - float(graded))) < 1e-9, f"A's score {before} -> {after}")
    report = walk.pages("a").get(f"/submissions/{ident}/report")[2].decode()
    expect(comment in report and "Your instructor changed" in report, "A's report lacks it")
    walk.notebook_score = after
    ok(
        f"the instructor overrode check {name} of A's submission: {before:g} -> {after:g}, A sees why"
    )


def lms_exports(walk: Walk) -> None:
    """Canvas's and Moodle's grade import files: their documented header rows, and A's row with
    A's total (notebook as overridden, plus the quiz)."""
    from grader.server.settings import load_settings

    column = load_settings(walk.data).title
    total = walk.notebook_score + walk.quiz[0]
    a, b = walk.ids["a"], walk.ids["b"]
    expected = {
        "canvas": (
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column],
            lambda row: row[2] == a and row[0] == "A, Learner" and row[1] == row[3] == "",
            lambda row: row[2] == b,
        ),
        "moodle": (
            ["First name", "Last name", "ID number", "Email address", column],
            lambda row: row[:4] == ["Learner", "A", a, "a@example.org"],
            lambda row: row[2] == b,
        ),
    }
    for kind, (header, is_a, is_b) in expected.items():
        path = f"/instructor/export/{kind}.csv"
        status, headers, body = walk.api("instructor").get(path)
        expect(status == 200 and "text/csv" in headers.get("Content-Type", ""), f"{path} {status}")
        rows = list(csv.reader(io.StringIO(body.decode())))
        expect(rows and rows[0] == header, f"{path}: header {rows[:1]}, not {header}")
        [row_a] = [row for row in rows[1:] if is_a(row)] or [None]
        expect(row_a is not None, f"{path} has no row for A as {header[:-1]}")
        assert row_a is not None
        close = row_a[-1] and abs(float(row_a[-1]) - total) <= 0.005  # the quiz page: 2 decimals
        expect(close, f"A's total in {path}: {row_a}, not {total:g}")
        row_b = [row for row in rows[1:] if is_b(row)]
        expect(row_b and row_b[0][-1] == "", f"{path}: B has no grade yet, got {row_b}")
        expect(walk.api("a").get(path)[0] == 404, f"A's token reaches {path}")
    ok(f"the Canvas and Moodle import CSVs: their headers, A's total {total:g}, B's empty")


STEPS = [
    check_settings,
    add_roster,
    submit_through_api,
    submit_through_browser,
    b_is_refused,
    take_quiz,
    instructor_gradebook,
    override_a_check,
    lms_exports,
]


def walkthrough(base: str, data: Path, notebook: Path = live.SOLUTION) -> Walk:
    """Every step in order, against the server at ``base`` whose data folder is ``data``."""
    walk = Walk(base.rstrip("/"), Path(data), Path(notebook))
    for step in STEPS:
        step(walk)
    return walk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.server.course_walkthrough", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, help="the running server's data folder")
    parser.add_argument("--url", help="the server's base URL (default: settings' base_url)")
    parser.add_argument("--notebook", type=Path, default=live.SOLUTION, help="A's notebook")
    parser.add_argument("--start", action="store_true", help="start a throwaway server first")
    args = parser.parse_args(argv)
    if not args.start and args.data is None:
        parser.error("give --data DIR of the running server, or --start")
    try:
        if args.start:
            with (
                tempfile.TemporaryDirectory(prefix="objloc-walk-") as tmp,
                live.running(
                    Path(tmp), assignment=str(live.tiny_course_with_quiz(Path(tmp)))
                ) as server,
            ):
                print(f"started grader serve on {server.base} (data {server.data})")
                walkthrough(server.base, server.data, args.notebook)
        else:
            from grader.server.settings import load_settings

            base = args.url or load_settings(args.data).base_url
            walkthrough(base, args.data, args.notebook)
    except StepFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print("walkthrough passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
