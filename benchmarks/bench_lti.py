"""LTI 1.3 on loopback: launch-to-page latency and Assignment and Grade Services posts per
grading, against a real ``grader serve`` (the tiny test course, graded for real) and the test
suite's fake platform (``tests/server/lti_platform.py``, Moodle's shape) in this process.

Launch-to-page: from the platform's login initiation to the learner's page received, as a
browser walks it: ``GET /lti/login`` -> the platform's authentication endpoint (its auto-posting
form, parsed) -> ``POST /lti/launch`` (the tool fetches the platform's key set and validates) ->
``GET /`` (the assignment's page). First launches (a learner created) and repeat launches are
timed apart; the figure is the median of each, with the slowest step named.

AGS posts per grading: every launched learner submits once; once the gradings end, the score
posts the platform received (and its token and line item calls) divided by the gradings.

    .venv/bin/python benchmarks/bench_lti.py [--learners 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import logging
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server import live  # noqa: E402
from tests.server.conftest import wait_for  # noqa: E402
from tests.server.lti_platform import LEARNER_ROLES, FakePlatform, User, registered_with  # noqa: E402


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)


def fetch(opener, url: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=60) as answer:
            return answer.status, answer.headers.get("Location", ""), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), error.read().decode()


def one_launch(
    server: live.Server, platform: FakePlatform, user: User, opener=None
) -> dict[str, float]:
    """One launch as a browser walks it (``opener``: its cookies); seconds per step."""
    opener = opener or browser()
    times: dict[str, float] = {}
    start = time.perf_counter()
    status, location, _ = fetch(opener, platform.login_url(platform.claims(user)))
    assert status == 302, status
    times["login"] = time.perf_counter() - start
    mark = time.perf_counter()
    status, _, page = fetch(opener, location)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    action = re.search(r'action="([^"]+)"', page).group(1)
    times["platform"] = time.perf_counter() - mark
    mark = time.perf_counter()
    status, location, body = fetch(opener, action, fields)
    assert status == 302, (status, body[:300])
    times["launch"] = time.perf_counter() - mark
    mark = time.perf_counter()
    status, _, page = fetch(opener, server.base + location)
    assert status == 200 and f"Hello {user.name}" in page, page[:300]
    times["page"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    return times


def summary(name: str, runs: list[dict[str, float]]) -> None:
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    steps = {k: v for k, v in median.items() if k != "total"}
    slowest = max(steps, key=steps.get)
    print(
        f"{name}: median {median['total'] * 1000:.0f} ms over {len(runs)} launches "
        f"(max {max(r['total'] for r in runs) * 1000:.0f} ms); steps: "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items())
        + f"; slowest step: {slowest}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="repeat launches per learner")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake platform's request log
    with tempfile.TemporaryDirectory(prefix="bench-lti-") as tmp:
        server = live.new_course(Path(tmp))
        platform = registered_with(server)
        server.start()
        try:
            users = [
                User(str(100 + i), f"Bench Learner{i}", f"b{i}@x.org", LEARNER_ROLES)
                for i in range(args.learners)
            ]
            fetch(browser(), server.base + "/lti/jwks.json")  # the key pair made once
            summary("first launch", [one_launch(server, platform, u) for u in users])
            repeats = [one_launch(server, platform, u) for u in users for _ in range(args.repeats)]
            summary("repeat launch", repeats)
            notebook = live.SOLUTION.read_bytes()
            gradings = 0
            for user in users:  # each learner launches and submits once from their page
                opener = browser()
                one_launch(server, platform, user, opener)
                page = fetch(opener, server.base + "/")[2]
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
                token = token or re.search(r'name="csrf_token" value="([^"]+)"', page)
                boundary = "benchboundary"
                body = (
                    (
                        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                        f"{token.group(1)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
                        f'name="notebook"; filename="nb.ipynb"\r\n'
                        f"Content-Type: application/x-ipynb+json\r\n\r\n"
                    ).encode()
                    + notebook
                    + f"\r\n--{boundary}--\r\n".encode()
                )
                request = urllib.request.Request(
                    server.base + "/submit",
                    data=body,
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                )
                try:
                    opener.open(request, timeout=60)
                except urllib.error.HTTPError as error:
                    assert error.code == 302, error.code
                gradings += 1
            started = time.perf_counter()
            ok = wait_for(lambda: len(platform.scores) >= gradings, timeout=60 * gradings)
            waited = time.perf_counter() - started
            time.sleep(5)  # any late duplicate would arrive now
            posts = len(platform.score_posts())
            tokens = sum(1 for c in platform.calls if c.path.endswith("token.php"))
            lineitem_calls = sum(1 for c in platform.calls if "/lineitems?" in c.path)
            print(
                f"AGS: {gradings} gradings -> {posts} score posts ({posts / gradings:.2f} per "
                f"grading), {tokens} token request(s), {lineitem_calls} line item call(s); all "
                f"scores arrived: {ok} ({waited:.0f} s after the last submission)"
            )
        finally:
            server.stop()
            platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
