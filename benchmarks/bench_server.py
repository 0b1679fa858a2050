"""The course server under polling load, and the grading queue's overhead per submission.

A real `grader serve` process on loopback (its own data folder, sandbox none). Phase 1 (not timed):
a roster of N learners; each signs in (session cookie) and submits one notebook through the API.
Phase 2 (bounded: --seconds): while those gradings run, C client threads poll as N learners would,
alternating the learner's page (GET /) and the API (GET /api/v1/submissions/<id>); latency per
request, p50/p99 per kind. Phase 3: the queue's overhead per submission: from the upload to
"graded" through the server, against the engine (`grader.grade.grade` of the same
`GradingJob`) on the same notebook in this process (the
notebook's code does not parse by default, so a grading is seconds, and the overhead shows; pass
--notebook for a real one: then a grading takes minutes).

    .venv/bin/python benchmarks/bench_server.py [--learners 200] [--clients 16] [--seconds 30]
"""

from __future__ import annotations

import argparse
import csv
import http.cookiejar
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNPARSABLE = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "# GRADED: create_example\ndef create_example(:\n    pass",
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grader(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def multipart(content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="notebook"; filename="nb.ipynb"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return (
        head + content + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def call(opener, url: str, token: str | None = None, data: bytes | None = None, kind: str = ""):
    request = urllib.request.Request(url, data=data)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if kind:
        request.add_header("Content-Type", kind)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="concurrent polling threads")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the polling phase")
    parser.add_argument("--jobs", type=int, default=1, help="grader serve -j")
    parser.add_argument("--notebook", type=Path, help="the notebook every learner submits")
    args = parser.parse_args()
    notebook = args.notebook.read_bytes() if args.notebook else UNPARSABLE

    with tempfile.TemporaryDirectory(prefix="objloc-bench-server-") as tmp:
        data = Path(tmp) / "course"
        data.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        (data / "settings.yaml").write_text(
            f"sandbox: none\ncooldown_seconds: 0\nuploads_per_minute: 1000\n"
            f"signin_per_minute: 100000\nbase_url: {base}\n"
        )
        roster = Path(tmp) / "roster.csv"
        roster.write_text(
            "id,name,email\n" + "".join(f"l{i},L {i},l{i}@x\n" for i in range(args.learners))
        )
        links = list(
            csv.DictReader(
                io.StringIO(
                    grader("roster", "add", "--data", str(data), str(roster), "--format", "csv")
                )
            )
        )
        env = dict(os.environ, GRADER_HIDDEN_SEED=os.environ.get("GRADER_HIDDEN_SEED", "1"))
        server = subprocess.Popen(
            [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", str(port),
             "-j", str(args.jobs), "--threads", "8"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            plain = urllib.request.build_opener()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if call(plain, base + "/")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            learners = []
            body, kind = multipart(notebook)
            uploaded: dict[int, float] = {}
            for row in links:
                token = row["link"].rsplit("/", 1)[1]
                opener = urllib.request.build_opener(
                    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
                )
                call(opener, row["link"])  # sign in: the session cookie
                started = time.monotonic()
                status, answer = call(plain, base + "/api/v1/submissions", token, body, kind)
                assert status == 201, answer
                ident = json.loads(answer)["id"]
                uploaded[ident] = started
                learners.append((opener, token, ident))
            print(
                f"{len(learners)} learners signed in and submitted; polling for {args.seconds:g} s"
            )

            latencies: dict[str, list[float]] = {"page": [], "api": []}
            graded_at: dict[int, float] = {}
            errors = [0]
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds

            def poll(offset: int) -> None:
                i = offset
                while time.monotonic() < stop:
                    opener, token, ident = learners[i % len(learners)]
                    i += args.clients
                    for what, url, bearer in (
                        ("page", base + "/", None),
                        ("api", f"{base}/api/v1/submissions/{ident}", token),
                    ):
                        t0 = time.monotonic()
                        status, answer = call(opener if what == "page" else plain, url, bearer)
                        elapsed = time.monotonic() - t0
                        with lock:
                            latencies[what].append(elapsed)
                            if status != 200:
                                errors[0] += 1
                            elif what == "api" and json.loads(answer)["status"] == "graded":
                                graded_at.setdefault(ident, time.monotonic())

            threads = [threading.Thread(target=poll, args=(c,)) for c in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for what, values in latencies.items():
                print(
                    f"{what:4}: {len(values)} requests, p50 {percentile(values, 0.5):.1f} ms, "
                    f"p99 {percentile(values, 0.99):.1f} ms"
                )
            print(f"non-200 answers: {errors[0]}; graded during polling: {len(graded_at)}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)

        # the queue's overhead: through the server (upload -> graded seen by a poller) vs direct
        if graded_at:
            spans = sorted(graded_at[i] - uploaded[i] for i in graded_at)
            first = min(graded_at.values()) - min(uploaded.values())
            print(f"through the queue: first graded {first:.2f} s after the first upload; "
                  f"{len(spans)} graded in {max(graded_at.values()) - min(uploaded.values()):.1f} s")  # fmt: skip
        from grader.grade import grade
        from grader.job import GradingJob

        path = Path(tmp) / "direct.ipynb"
        path.write_bytes(notebook)
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            grade(GradingJob.of_file(path, sandbox_mode="none", seed=1))
            times.append(time.monotonic() - t0)
        direct = statistics.median(times)
        print(f"the engine in this process (warm imports): median {direct:.2f} s of 3")
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "grader", "grade", str(path), "--sandbox", "none",
             "--out", str(Path(tmp) / "cli"), "-j", "1"],
            cwd=ROOT, env=env, capture_output=True, check=True,
        )  # fmt: skip
        cli = time.monotonic() - t0
        print(f"`grader grade` of the same notebook (a fresh process): {cli:.2f} s")
        if len(graded_at) >= 2:
            per = (max(graded_at.values()) - min(uploaded.values())) / len(graded_at)
            print(
                f"per submission through the queue (-j {args.jobs}): {per:.2f} s, "
                f"{per / direct:.2f}x the engine in-process, {per / cli:.2f}x `grader grade`"
            )


if __name__ == "__main__":
    main()
