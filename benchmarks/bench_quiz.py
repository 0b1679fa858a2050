"""Quiz submission latency on loopback: a real `quiz serve` process (the course server's quiz pages
and store, practice mode, under waitress), a bounded number of requests.

Phase 1 (setup, not timed): N learners each start an attempt and load its page (CSRF token).
Phase 2 (open loop): the N submissions are sent at a fixed rate (default 100 req/s) whatever the
server's speed, so queueing shows up in the latency; latency is measured per request from its
scheduled send time. Phase 3 (closed loop): M more submissions from C concurrent clients, as fast as
the server answers, for the maximum rate. Goal: p99 <= 50 ms at 100 req/s.

    .venv/bin/python benchmarks/bench_quiz.py [--requests 500] [--rate 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quiz.client import QuizClient, some_answers  # noqa: E402


def start_server(db: Path) -> tuple[subprocess.Popen[str], int]:
    cmd = [
        sys.executable, "-m", "quiz", "serve", "--host", "127.0.0.1", "--port", "0", "--db", str(db),
        "--attempts", "1000000", "--cooldown", "0", "--instructor-token", "bench",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1].strip().strip("/"))


def prepare(port: int, n: int, prefix: str) -> list[tuple[QuizClient, str, str, dict[str, str]]]:
    """Open n attempts; each gets a plausible answer set (not all right: realistic scoring work)."""

    def one(i: int) -> tuple[QuizClient, str, str, dict[str, str]]:
        c = QuizClient("127.0.0.1", port)
        started = c.start(f"{prefix}{i}")
        if started.status != 303:
            raise RuntimeError(f"start failed: {started.status}")
        page = c.request("GET", started.location).body
        answers = some_answers(page, random.Random(i))
        return c, started.location, page, answers

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(n)))


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def report(name: str, latencies: list[float], seconds: float, errors: int) -> None:
    ms = [x * 1000 for x in latencies]
    print(
        f"{name}: {len(ms)} submissions in {seconds:.2f} s = {len(ms) / seconds:.1f} req/s; "
        f"latency p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms; "
        f"errors {errors}"
    )


def open_loop(work: list, rate: float) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2

    def send(i: int) -> None:
        nonlocal errors
        c, path, page, answers = work[i]
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        reply = c.submit(path, page, answers)
        took = time.perf_counter() - due
        with lock:
            latencies.append(took)
            errors += reply.status != 303

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(send, range(len(work))))
    return latencies, time.perf_counter() - t0, errors


def closed_loop(work: list, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def send(item: tuple) -> None:
        nonlocal errors
        c, path, page, answers = item
        start = time.perf_counter()
        reply = c.submit(path, page, answers)
        took = time.perf_counter() - start
        with lock:
            latencies.append(took)
            errors += reply.status != 303

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, work))
    return latencies, time.perf_counter() - t0, errors


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=500, help="submissions per phase (default 500)")
    ap.add_argument(
        "--rate", type=float, default=100.0, help="open-loop rate in req/s (default 100)"
    )
    ap.add_argument(
        "--concurrency", type=int, default=8, help="clients in the closed-loop phase (default 8)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(Path(tmp) / "bench.db")
        try:
            print(
                f"server pid {proc.pid} on 127.0.0.1:{port}; {os.cpu_count()} CPUs; preparing attempts ..."
            )
            t = time.perf_counter()
            first = prepare(port, args.requests, "open")
            second = prepare(port, args.requests, "closed")
            print(f"prepared {2 * args.requests} attempts in {time.perf_counter() - t:.1f} s")
            lat, secs, err = open_loop(first, args.rate)
            report(f"open loop at {args.rate:g} req/s", lat, secs, err)
            p99 = percentile([x * 1000 for x in lat], 99)
            print(
                f"goal p99 <= 50 ms at 100 req/s: {'met' if p99 <= 50 else 'NOT met'} (p99 {p99:.1f} ms)"
            )
            lat, secs, err = closed_loop(second, args.concurrency)
            report(f"closed loop, {args.concurrency} clients", lat, secs, err)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
