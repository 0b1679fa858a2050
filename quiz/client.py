"""A tiny scripted HTTP client for the quiz's pages (``/quiz`` of ``quiz serve``, practice):
smoke-test a deployment, drive tests and benchmarks.

It walks the same forms a browser does (session cookie, CSRF token from the page), using only the
standard library, and does not follow redirects so callers can time single requests.
"""

from __future__ import annotations

import html
import http.client
import random
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_CHOICE = re.compile(r'type="(?:radio|checkbox)" name="(q[0-9]+)" value="([0-9]+)"')
_TEXT = re.compile(r'type="text" (?:inputmode="decimal" )?name="(q[0-9]+)"')


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    body: str


def csrf_token(page: str) -> str:
    """The CSRF token embedded in a form page."""
    m = _CSRF.search(page)
    if not m:
        raise ValueError("no csrf_token in the page")
    return html.unescape(m.group(1) or m.group(2))


def some_answers(page: str, rng: random.Random) -> dict[str, str]:
    """One plausible answer per question of an attempt page: an offered option, or a number."""
    answers: dict[str, str] = {}
    choices: dict[str, list[str]] = {}
    for name, value in _CHOICE.findall(page):
        choices.setdefault(name, []).append(value)
    for name, values in choices.items():
        answers[name] = rng.choice(values)
    for name in _TEXT.findall(page):
        answers[name] = str(rng.randint(0, 100))
    return answers


class QuizClient:
    """One learner's browser session against http://host:port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, timeout: float = 30) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            hdrs = dict(headers or {})
            if self.cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form, doseq=True)
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            for cookie in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            location = resp.headers.get("Location", "")
            if location.startswith("http"):
                location = urllib.parse.urlsplit(location).path
            return Reply(resp.status, location, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def start(self, learner: str) -> Reply:
        """Enter the learner id; a 303 to /quiz/attempts/<id> on success, 403/429 when refused."""
        page = self.request("GET", "/quiz/")
        return self.request(
            "POST", "/quiz/start", {"csrf_token": csrf_token(page.body), "learner": learner}
        )

    def submit(self, attempt_path: str, page: str, answers: dict[str, Any]) -> Reply:
        """POST the attempt form; `answers` maps field names (q1, q2, ...) to values."""
        return self.request("POST", attempt_path, {"csrf_token": csrf_token(page), **answers})
