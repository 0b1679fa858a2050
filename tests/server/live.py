"""A live course server for the end-to-end tests and the walkthrough script: a data folder that
grades the tiny course for real (seconds, not the minutes of the real assignment), ``grader serve``
and ``grader roster`` run as subprocesses exactly as an instructor runs them, a small HTTP client
(Bearer token or signed-in cookie), and headless Chromium with the accessibility and phone checks.

Why subprocesses: what is tested is the command a course runs (waitress, the Dask cluster, the
restart after ``kill -9``), not an app object built by the test. Nothing here is imported by
``grader/``: the server has no test hook.
"""

from __future__ import annotations

import contextlib
import csv
import http.cookiejar
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.server.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY_COURSE = ROOT / "tests" / "fixtures" / "tiny_course"
SOLUTION = TINY_COURSE / "solution.ipynb"  # full marks on the tiny course
QUIZ = ROOT / "assignments" / "object_localization" / "quiz"  # a real graded quiz
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVE = [sys.executable, "-m", "grader", "serve"]
PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport
# Fast but real: the tiny course's grading, no isolation (a test machine may lack bubblewrap),
# resubmissions allowed at once, one grading at a time.
TEST_SETTINGS = {
    "assignment": str(TINY_COURSE),
    "sandbox": "none",
    "cooldown_seconds": 0,
    "submissions_per_day": 50,
    "jobs": 1,
}


def tiny_course_with_quiz(folder: Path) -> Path:
    """A copy of the tiny course in ``folder`` with a graded quiz: the installed assignment's
    ``quiz/`` and, through the copy's own ``quiz_generators`` hook, its generators (the tiny
    course itself has no quiz). Grading stays the tiny course's (its name too)."""
    import shutil

    import yaml

    copy = Path(folder) / "tiny_course"
    shutil.copytree(TINY_COURSE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(QUIZ, copy / "quiz")
    (copy / "quiz_hook.py").write_text(
        "from assignments.object_localization.quiz_generators import GENERATORS  # noqa: F401\n"
    )
    manifest = yaml.safe_load((copy / "assignment.yaml").read_text())
    manifest.setdefault("hooks", {})["quiz_generators"] = "quiz_hook:GENERATORS"
    (copy / "assignment.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grader(*args: str, timeout: float = 120) -> str:
    """Run ``python -m grader ARGS`` (the installed command line); its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "grader", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"grader {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def add_roster(data: Path, base: str, rows: list[tuple[str, str, str]]) -> dict[str, str]:
    """``grader roster add --format csv``: {learner id: sign-in link}."""
    roster = data / f"roster-{uuid.uuid4().hex[:8]}.csv"
    roster.write_text("id,name,email\n" + "".join(f"{i},{n},{e}\n" for i, n, e in rows))
    try:
        out = grader(
            "roster", "add", "--data", str(data), "--url", base, "--format", "csv", str(roster)
        )
    finally:
        roster.unlink()
    return {row["id"]: row["link"] for row in csv.DictReader(io.StringIO(out))}


def instructor_link(data: Path, base: str) -> str:
    return grader("roster", "instructor", "--data", str(data), "--url", base).strip().split()[-1]


def token_of(link: str) -> str:
    """A token is the last path segment of its sign-in link."""
    return link.rstrip("/").rsplit("/", 1)[1]


# --------------------------------------------------------------------------------------------
# grader serve


@dataclass
class Server:
    data: Path
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> Server:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [*SERVE, "--data", str(self.data), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its Dask cluster is in its process group
                cwd=ROOT,
            )
        ready = wait_for(lambda: Client(self.base).get("/")[0] == 200, timeout)
        if not ready:
            self.stop()
            raise RuntimeError(f"grader serve did not start:\n{self.log.read_text()[-3000:]}")
        return self

    def kill9(self, timeout: float = 30) -> bool:
        """``kill -9 PID`` of the server process alone. True when everything it started (its
        process group: the Dask cluster) ended by itself within ``timeout`` s; what remains is
        then killed, so that no test leaves processes behind."""
        assert self.process is not None
        group = self.process.pid
        self.process.kill()
        self.process.wait()
        self.process = None

        def group_gone() -> bool:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
            return False

        ended = wait_for(group_gone, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        return ended

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def new_course(folder: Path, **settings: Any) -> Server:
    """A data folder for the tiny course (``TEST_SETTINGS`` plus ``settings``) on a free port."""
    import yaml

    data = folder / "course"
    data.mkdir(parents=True)
    port = free_port()
    values = TEST_SETTINGS | {"base_url": f"http://127.0.0.1:{port}"} | settings
    if "assignments" in settings:  # each entry names its assignment
        values.pop("assignment")
    (data / "settings.yaml").write_text(yaml.safe_dump(values))
    return Server(data, port, folder / "serve.log")


@contextlib.contextmanager
def running(folder: Path, **settings: Any) -> Iterator[Server]:
    server = new_course(folder, **settings).start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# HTTP


class Client:
    """urllib with a Bearer token or a signed-in session cookie; never raises for an HTTP status."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.url = ""
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def request(
        self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self.opener.open(request, timeout=30) as response:
                self.url = response.geturl()  # after redirects
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            self.url = error.geturl()
            return error.code, dict(error.headers), error.read()

    def post(self, path: str, fields: dict[str, str | list[str]]) -> tuple[int, bytes]:
        """POST a form (url-encoded; a list is a repeated field), redirects followed: (status,
        body); ``self.url`` is where it ended."""
        data = urllib.parse.urlencode(fields, doseq=True).encode()
        status, _, body = self.request(
            path, data, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status, body

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return self.request(path)

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def sign_in(self, link: str) -> Client:
        """Follow a sign-in link: the session cookie is kept for the next requests."""
        status, _, body = self.get("/signin/" + token_of(link))
        if status != 200:
            raise RuntimeError(f"sign-in failed: {status} {body[:300]!r}")
        return self

    def submit(self, notebook: bytes, name: str = "notebook.ipynb") -> tuple[int, Any]:
        """``POST /api/v1/submissions`` (multipart field ``notebook``): (status, JSON answer)."""
        boundary = uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="notebook"; '
            f'filename="{name}"\r\nContent-Type: application/x-ipynb+json\r\n\r\n'
        ).encode()
        body += notebook + f"\r\n--{boundary}--\r\n".encode()
        status, _, answer = self.request(
            "/api/v1/submissions",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        return status, json.loads(answer)

    def follow(self, ident: int, timeout: float = 120) -> list[str]:
        """Poll ``/api/v1/submissions/<id>`` until the grading ends: the statuses seen, in order."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.json(f"/api/v1/submissions/{ident}")["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status not in ("queued", "grading"):
                return seen
            time.sleep(0.1)
        raise TimeoutError(f"submission {ident} still {seen[-1]} after {timeout:g} s")


# --------------------------------------------------------------------------------------------
# the browser


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (nothing downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def phone_page(chromium: Any, javascript: bool = True) -> Any:
    """A page in a fresh context (its own cookies) with a phone's viewport; downloads allowed."""
    context = chromium.new_context(
        viewport=PHONE, accept_downloads=True, java_script_enabled=javascript
    )
    context.set_default_timeout(30_000)
    return context.new_page()


SERIOUS = ("serious", "critical")


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it is now (the axe.min.js
    shipped in the axe-playwright-python wheel: nothing fetched), one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(", ".join(n["target"]) for n in v["nodes"])
        for v in results["violations"]
        if v.get("impact") in SERIOUS
    ]


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no horizontal scroll)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def check_page(page: Any, problems: list[str]) -> None:
    """The accessibility and phone checks of the page shown now; findings appended."""
    where = page.url.split("/signin/")[0]
    problems.extend(f"{where}: {p}" for p in accessibility_problems(page))
    overflow = horizontal_overflow(page)
    if overflow > 0:
        problems.append(f"{where}: {overflow}px wider than a {PHONE['width']}px phone screen")


# --------------------------------------------------------------------------------------------
# the look: each page at phone and desktop width and in the dark scheme, with a screenshot


DESKTOP = {"width": 1280, "height": 800}  # a laptop's
LOOKS = [
    ("phone", PHONE, "light"),
    ("desktop", DESKTOP, "light"),
    ("phone-dark", PHONE, "dark"),
]

# For each cell of a table that holds a score ("110 / 110"): how many lines its content takes.
LINES_OF_SCORES = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter((cell) => /^[-\\d.]+ \\/ [\\d.]+/.test(cell.textContent.trim()))
  .map((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const boxes = Array.from(range.getClientRects()).filter((r) => r.width > 0)
      .sort((a, b) => a.top - b.top);
    let lines = 0, bottom = -Infinity;
    for (const box of boxes) {
      if (box.top >= bottom - 0.5) { lines += 1; }  // no vertical overlap: a new line
      bottom = Math.max(bottom, box.bottom);
    }
    return [cell.textContent.trim(), lines];
  })"""

FOCUS_RING = """() => {
  const style = getComputedStyle(document.activeElement);
  return [document.activeElement.tagName, style.outlineStyle, parseFloat(style.outlineWidth)];
}"""


def every_violation(page: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """All of axe-core's violations on the page as shown now, whatever their impact, except the
    rules in ``ignore``."""
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(", ".join(n["target"]) for n in v["nodes"])
        for v in Axe().run(page).response["violations"]
        if v["id"] not in ignore
    ]


@dataclass
class Looker:
    """Opens pages, then looks at each at every width: a screenshot and the checks."""

    folder: Path
    problems: list[str]

    def look(self, page: Any, name: str, ignore: tuple[str, ...] = ()) -> None:
        page.wait_for_load_state()
        for look, viewport, scheme in LOOKS:
            page.set_viewport_size(viewport)
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(self.folder / f"{name}-{look}.png"), full_page=True)
            where = f"{name} ({look})"
            self.problems.extend(f"{where}: {p}" for p in every_violation(page, ignore))
            overflow = horizontal_overflow(page)
            if overflow > 0:
                self.problems.append(f"{where}: the page scrolls sideways by {overflow}px")
            for text, lines in page.evaluate(LINES_OF_SCORES, "td, th"):
                if lines != 1:
                    self.problems.append(f"{where}: {text!r} takes {lines} lines")
        page.set_viewport_size(PHONE)
        page.emulate_media(color_scheme="light")


def looker(tmp_path: Path) -> Looker:
    """A Looker that keeps its screenshots in the folder named by ``GRADER_SCREENSHOTS`` (to look
    at them after a run), else in ``tmp_path``."""
    folder = Path(os.environ.get("GRADER_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return Looker(folder, [])
