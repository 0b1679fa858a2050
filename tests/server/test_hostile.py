"""The server under hostile clients (``grader serve``'s front, ``grader.server.guard``), on
loopback with raw sockets: trickling sockets neither keep a request from its answer nor hold a
socket past their deadline, one address cannot take every connection, and a body over its route's
cap is answered from its headers without being read (the LMS import's large cap only for the
instructor's session).

Clients come from several loopback addresses (127.0.0.2, ...: Linux routes all of 127/8 to lo), so
that the per-address cap and the legitimate client (127.0.0.1) are told apart as on a network.
Times are bounded with margins: the deadline sweep runs every second."""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from waitress import wasyncore

from grader.server.db import open_database
from grader.server.guard import Limits
from grader.server.serve import body_cap, make_server
from grader.server.settings import Settings
from tests.server.helpers import make_course

HEAD_SECONDS = 3.0  # the test's deadline for a request's headers (grader serve: 10 s)
PER_ADDRESS = 100


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors():
    """600 client sockets and as many server sockets live in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if wanted < 2048:
        pytest.skip(f"the descriptor limit ({hard}) is too low for 600 sockets on each side")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclasses.dataclass
class Served:
    port: int
    course: object
    server: object


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    data = tmp_path / "course"
    data.mkdir()
    db = open_database(data)
    settings = Settings(cooldown_seconds=0, submissions_per_day=50, sandbox="none")
    settings = dataclasses.replace(settings, max_upload_mb=0.5)
    course = make_course(data, db, settings)
    limits = Limits(head_seconds=HEAD_SECONDS, per_address=PER_ADDRESS)
    server = make_server(course.app, "127.0.0.1", 0, 4, body_cap(settings), limits=limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Served(int(server.effective_port), course, server)
    finally:
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
        thread.join(10)
        course.executor.shutdown(wait=False)
        db.dispose()


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed this socket (EOF or reset), without waiting."""
    poller = select.poll()  # select() stops at descriptor 1024
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def _answer(port: int, request: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send ``request`` from 127.0.0.1; (the answer's status line, seconds until it came)."""
    started = time.monotonic()
    with contextlib.closing(_connect(port)) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.split(b"\r\n", 1)[0], time.monotonic() - started


GET = b"GET / HTTP/1.1\r\nHost: course\r\nConnection: close\r\n\r\n"
TRICKLE = b"GET / HTTP/1.1\r\nHost: course\r\nX-Padding: " + b"a" * 200


def test_trickling_sockets_keep_no_request_from_its_answer(served):
    """500 sockets (100 from each of five addresses) trickle a byte every half second and never
    finish; another 100 from one of those addresses are over its cap. A legitimate request from
    another address is answered within a second throughout; the 100 over the cap are closed at
    once; each trickler is closed once its deadline passes, not before."""
    port = served.port
    addresses = [f"127.0.0.{i}" for i in range(2, 7)]
    tricklers: list[tuple[socket.socket, float]] = []
    over_cap: list[socket.socket] = []
    try:
        for address in addresses:
            for _ in range(PER_ADDRESS):
                sock = _connect(port, address)
                sock.send(TRICKLE[:1])
                tricklers.append((sock, time.monotonic()))
        time.sleep(0.5)  # the server has accepted the 500 before the next 100 knock
        over_cap = [_connect(port, addresses[0]) for _ in range(PER_ADDRESS)]
        worst, answers = 0.0, 0
        closed_at: dict[int, float] = {}
        position = 1
        end = time.monotonic() + HEAD_SECONDS + 3.0
        while time.monotonic() < end:
            for index, (sock, _) in enumerate(tricklers):
                if index in closed_at:
                    continue
                if _closed(sock):
                    closed_at[index] = time.monotonic()
                    continue
                with contextlib.suppress(OSError):
                    sock.send(TRICKLE[position : position + 1])
            position = min(position + 1, len(TRICKLE) - 1)
            status, seconds = _answer(port, GET)
            assert status == b"HTTP/1.1 200 OK", status
            worst, answers = max(worst, seconds), answers + 1
            time.sleep(0.4)
        assert answers >= 10
        assert worst < 1.0, f"a legitimate request waited {worst:.2f} s"
        refused = sum(_closed(sock) for sock in over_cap)
        assert refused == PER_ADDRESS  # every connection over the address's cap, at once
        assert len(closed_at) == len(tricklers), f"{len(tricklers) - len(closed_at)} still open"
        held = [closed_at[i] - started for i, (_, started) in enumerate(tricklers)]
        assert min(held) > HEAD_SECONDS - 0.1  # not before its deadline
        assert max(held) < HEAD_SECONDS + 2.5  # the sweep runs every second
    finally:
        for sock, _ in tricklers:
            sock.close()
        for sock in over_cap:
            sock.close()


def test_a_slow_but_honest_client_is_answered(served):
    """Headers sent in three parts over 1.5 s, within the deadline: answered as usual."""
    with contextlib.closing(_connect(served.port, "127.0.0.9")) as sock:
        for part in (GET[:10], GET[10:30], GET[30:]):
            sock.sendall(part)
            time.sleep(0.5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_a_body_trickled_after_its_headers_is_closed_at_its_deadline(served):
    """Headers sent at once, then a declared 1,000-byte body one byte at a time (a slow POST):
    the connection is closed once the headers' deadline plus the body's time at the least rate
    has passed, however often a byte arrives, while a legitimate request is answered within a
    second throughout."""
    length = 1000
    deadline = HEAD_SECONDS + length / Limits().body_rate
    worst = 0.0
    with contextlib.closing(_connect(served.port, "127.0.0.8")) as sock:
        sock.sendall(_post("/signout", length, kind="application/x-www-form-urlencoded"))
        started = time.monotonic()
        closed = None
        while time.monotonic() - started < deadline + 3.0:
            if _closed(sock):
                closed = time.monotonic() - started
                break
            with contextlib.suppress(OSError):
                sock.send(b"a")
            status, seconds = _answer(served.port, GET)
            assert status == b"HTTP/1.1 200 OK", status
            worst = max(worst, seconds)
            time.sleep(0.3)
    assert closed is not None, "the trickled body was never cut off"
    assert deadline - 0.5 < closed < deadline + 2.5  # the sweep runs every second
    assert worst < 1.0, f"a legitimate request waited {worst:.2f} s"


def _post(path: str, length: int, cookie: str = "", kind: str = "application/octet-stream"):
    headers = f"POST {path} HTTP/1.1\r\nHost: course\r\nContent-Length: {length}\r\n"
    headers += f"Content-Type: {kind}\r\n"
    if cookie:
        headers += f"Cookie: {cookie}\r\n"
    return (headers + "\r\n").encode()


def _session_cookie(served: Served, who: str) -> str:
    status, headers = _get_with_headers(served.port, f"/signin/{served.course.tokens[who]}")
    assert status.startswith(b"HTTP/1.1 302"), status
    value = headers["set-cookie"].split(";", 1)[0]
    return value


def _get_with_headers(port: int, path: str) -> tuple[bytes, dict[str, str]]:
    with contextlib.closing(_connect(port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: course\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    return head[0].encode(), headers


def test_a_body_over_its_routes_cap_is_answered_unread(served):
    """400 MB announced to / or to the LMS import without the instructor's session: answered
    from the headers alone, without a byte of the body sent."""
    for path, expected in (("/", b"405"), ("/instructor/import", b"404"), ("/signout", b"413")):
        status, seconds = _answer(served.port, _post(path, 400 * 1024 * 1024), timeout=5)
        assert expected in status, (path, status)
        assert seconds < 2.0
    learner = _session_cookie(served, "alice")
    status, _ = _answer(served.port, _post("/instructor/import", 400 * 1024 * 1024, learner))
    assert b"404" in status


def test_the_lms_imports_large_cap_is_the_instructors_only(served):
    """The instructor's session may send a body far over a learner's upload cap: the server
    waits for it (no early answer), as it would read an LMS export."""
    cookie = _session_cookie(served, "instructor")
    with contextlib.closing(_connect(served.port)) as sock:
        sock.sendall(_post("/instructor/import", 100 * 1024 * 1024, cookie))
        sock.settimeout(1.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)


def test_an_upload_over_the_cap_gets_the_course_page_with_the_limit(served):
    """A learner's notebook over the cap (0.5 MB here) is dropped as it arrives, and the answer
    is the learner's page saying the limit: what a browser, which sends the whole body before
    reading, shows."""
    cookie = _session_cookie(served, "alice")
    boundary = "xyz"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="notebook"; filename="nb.ipynb"'
            "\r\n\r\n"
        ).encode()
        + b"{"
        + b" " * (2 * 1024 * 1024)
        + f"}}\r\n--{boundary}--\r\n".encode()
    )
    kind = f"multipart/form-data; boundary={boundary}"
    with contextlib.closing(_connect(served.port)) as sock:
        sock.sendall(_post("/submit", len(body), cookie, kind) + body)
        answer = b""
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            answer += chunk
    page = answer.decode("utf-8", "replace")
    assert page.startswith("HTTP/1.1 413"), page[:200]
    assert "Hello Alice" in page and "the limit is 0.5 MB" in page
