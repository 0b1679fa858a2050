"""The course server's answer time to a legitimate client while trickling sockets attack it.

A real `grader serve` process on loopback (its own data folder, sandbox none, the front's default
limits: a request's headers within 10 s, 100 connections per address). Each round: a baseline
phase (no attack) and an attack phase in which --sockets sockets, spread over five loopback
addresses (Linux routes all of 127/8 to lo), each send one byte of a request every --every
seconds and never finish; over both phases a client from 127.0.0.1 asks for the home page every
0.3 s. Printed per round and as the median of the rounds: p50, p99 and the worst answer time in
each phase, their ratio, and how many trickling sockets the server closed (the per-address cap at
once, the header deadline later).

    .venv/bin/python benchmarks/bench_slowloris.py [--sockets 520] [--every 2] [--seconds 25]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 7)]
GET = b"GET / HTTP/1.1\r\nHost: course\r\nConnection: close\r\n\r\n"
TRICKLE = b"GET / HTTP/1.1\r\nHost: course\r\nX-Padding: " + b"a" * 4000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer_seconds(port: int) -> float:
    """One legitimate request's time to its status line (10 s: gave up)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(GET)
            if not sock.recv(64).startswith(b"HTTP/1.1 200"):
                return 10.0
    except OSError:
        return 10.0
    return time.monotonic() - started


def closed(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def phase(
    port: int, seconds: float, sockets: list[socket.socket], every: float
) -> list[tuple[float, float]]:
    """(seconds into the phase, answer time) over ``seconds`` while ``sockets`` trickle a byte
    each ``every`` seconds."""
    times, position, next_byte = [], 1, time.monotonic()
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        if sockets and time.monotonic() >= next_byte:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(TRICKLE[position : position + 1])
            position, next_byte = position + 1, time.monotonic() + every
        times.append((time.monotonic() - start, answer_seconds(port)))
        time.sleep(0.3)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_round(port: int, args: argparse.Namespace) -> dict[str, float]:
    baseline = [t for _, t in phase(port, args.seconds / 2, [], args.every)]
    sockets = []
    for index in range(args.sockets):
        sock = socket.socket()
        sock.bind((ADDRESSES[index % len(ADDRESSES)], 0))
        sock.connect(("127.0.0.1", port))
        sock.send(TRICKLE[:1])
        sockets.append(sock)
    try:
        timed = phase(port, args.seconds, sockets, args.every)
        attacked = [t for _, t in timed]
        shut = sum(closed(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "base_p50": statistics.median(baseline),
        "base_worst": max(baseline),
        "p50": statistics.median(attacked),
        "p99": percentile(attacked, 0.99),
        "worst": max(attacked),
        "worst_at": max(timed, key=lambda pair: pair[1])[0],
        "closed": shut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=520, help="trickling sockets")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between their bytes")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of an attack phase")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    with tempfile.TemporaryDirectory(prefix="objloc-bench-slowloris-") as tmp:
        data = Path(tmp) / "course"
        data.mkdir()
        port = free_port()
        (data / "settings.yaml").write_text(f"sandbox: none\nbase_url: http://127.0.0.1:{port}\n")
        server = subprocess.Popen(
            [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", str(port)],
            cwd=ROOT, env=dict(os.environ, GRADER_HIDDEN_SEED="1"), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while answer_seconds(port) >= 10.0:
                if time.monotonic() > deadline:
                    raise SystemExit("grader serve did not answer within 120 s")
                time.sleep(0.5)
            rounds = []
            for number in range(1, args.rounds + 1):
                row = one_round(port, args)
                rounds.append(row)
                print(
                    f"round {number}: no attack p50 {row['base_p50'] * 1000:.1f} ms (worst "
                    f"{row['base_worst'] * 1000:.1f}); {args.sockets} trickling sockets: p50 "
                    f"{row['p50'] * 1000:.1f} ms, p99 {row['p99'] * 1000:.1f} ms, worst "
                    f"{row['worst'] * 1000:.1f} ms ({row['worst_at']:.1f} s in); {row['closed']} of them closed by the server",
                    flush=True,
                )
        finally:
            os.killpg(server.pid, 15)
            server.wait(30)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(
        f"median of {args.rounds} rounds: answer p50 {median['p50'] * 1000:.1f} ms under attack vs "
        f"{median['base_p50'] * 1000:.1f} ms without ({median['p50'] / median['base_p50']:.1f}x); "
        f"worst {median['worst'] * 1000:.1f} ms (no attack: {median['base_worst'] * 1000:.1f} ms); "
        f"{median['closed']:.0f} of {args.sockets} trickling sockets closed by the server"
    )


if __name__ == "__main__":
    main()
