"""`grader serve` end to end in a subprocess: waitress answers, a learner signs in with the link
`grader roster add` printed, submits through the API, and the real grading (sandbox none, a
notebook that does not parse: fast) ends graded with a report; an idle connection is closed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.server.conftest import _free_port, notebook_bytes, wait_for


def _request(url: str, token: str | None = None, data: bytes | None = None, headers=None):
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _multipart(field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "course"
    data.mkdir()
    port = _free_port()
    (data / "settings.yaml").write_text(
        f"sandbox: none\ncooldown_seconds: 0\nbase_url: http://127.0.0.1:{port}\n"
    )
    (tmp_path / "roster.csv").write_text("id,name,email\nanna,Anna,a@x.org\nbob,Bob,b@x.org\n")
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "roster",
            "add",
            "--data",
            str(data),
            str(tmp_path / "roster.csv"),
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    links = {row["id"]: row["link"] for row in csv.DictReader(io.StringIO(added.stdout))}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = wait_for(lambda: _request(base + "/")[0] == 200, 60)
        assert started, (tmp_path / "serve.log").read_text()
        yield base, links, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_serve_end_to_end(server):
    base, links, _ = server
    status, headers, _ = _request(base + "/")
    assert status == 200 and headers["Server"] == "waitress"
    anna = links["anna"].rsplit("/", 1)[1]
    bob = links["bob"].rsplit("/", 1)[1]
    assert links["anna"].startswith(base + "/signin/")
    notebook = notebook_bytes("# GRADED: create_example\ndef create_example(:\n    pass")
    body, kind = _multipart("notebook", "mine.ipynb", notebook)
    status, _, answer = _request(base + "/api/v1/submissions", anna, body, {"Content-Type": kind})
    assert status == 201, answer
    ident = json.loads(answer)["id"]

    def graded() -> bool:
        state = json.loads(_request(f"{base}/api/v1/submissions/{ident}", anna)[2])
        return state["status"] not in ("queued", "grading")

    assert wait_for(graded, 120, 0.3)
    state = json.loads(_request(f"{base}/api/v1/submissions/{ident}", anna)[2])
    assert state["status"] == "graded" and state["score"] == 0 and state["max_score"] > 0
    status, headers, report = _request(f"{base}/api/v1/submissions/{ident}/report", anna)
    assert status == 200 and b"<html" in report.lower()
    assert _request(f"{base}/api/v1/submissions/{ident}", bob)[0] == 404
    assert _request(f"{base}/api/v1/submissions/{ident}/report", bob)[0] == 404


def test_an_idle_connection_does_not_hold_a_thread(server):
    """Half-open clients cost a socket each, not a thread: while more idle connections than
    request threads are open, a real request is still answered."""
    base, _, _ = server
    port = int(base.rsplit(":", 1)[1])
    idle = []
    try:
        for _ in range(20):  # > the 8 request threads
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(sock)
        started = time.monotonic()
        assert _request(base + "/")[0] == 200
        assert time.monotonic() - started < 10
    finally:
        for sock in idle:
            sock.close()


@pytest.fixture
def small_caps(tmp_path, monkeypatch):
    """A course under waitress whose learner upload cap (~50 KB) is below its LMS import cap
    (~500 KB), served with the body cap ``grader serve`` gives waitress."""
    import dataclasses
    import threading

    from waitress import wasyncore

    from grader.server.db import open_database
    from grader.server.serve import body_cap, make_server
    from grader.server.settings import Settings
    from tests.server.helpers import make_course

    monkeypatch.setattr("grader.server.lms_import.IMPORT_MAX_MB", 0.5)
    data = tmp_path / "course"
    data.mkdir()
    db = open_database(data)
    settings = dataclasses.replace(
        Settings(cooldown_seconds=0, submissions_per_day=50, sandbox="none"), max_upload_mb=0.05
    )
    course = make_course(data, db, settings)
    server = make_server(course.app, "127.0.0.1", 0, 2, body_cap(settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", course
    finally:
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
        thread.join(10)
        course.executor.shutdown(wait=False)
        db.dispose()


def _zip(entries: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_learner_upload_over_its_cap_gets_flasks_message_through_waitress(small_caps):
    from tests.server.conftest import notebook_bytes

    base, course = small_caps
    big = notebook_bytes("x = 1\n# " + "a" * 200_000)  # over 0.05 MB, under the import cap
    body, kind = _multipart("notebook", "nb.ipynb", big)
    status, _, answer = _request(
        base + "/api/v1/submissions", course.tokens["alice"], body, {"Content-Type": kind}
    )
    assert status == 413, answer
    assert "larger than the limit of 0.05 MB" in json.loads(answer)["error"]


def test_an_lms_import_between_the_two_caps_passes_through_waitress(small_caps):
    from tests.server import live
    from tests.server.conftest import notebook_bytes
    from tests.server.helpers import csrf_token

    base, course = small_caps
    padding = "# " + "a" * 40_000
    export = _zip(
        {f"{who}/nb.ipynb": notebook_bytes(f"{who} = 1\n{padding}") for who in ["alice", "bob"]}
        | {f"other{i}/nb.ipynb": notebook_bytes(f"o = {i}\n{padding}") for i in range(3)}
    )
    upload_cap = course.settings.max_upload_bytes + 64 * 1024
    assert upload_cap < len(export) < 0.5 * 1024 * 1024
    instructor = live.Client(base).sign_in(f"{base}/signin/{course.tokens['instructor']}")
    status, _, page = instructor.get("/instructor/import")
    assert status == 200
    body, kind = _multipart("archive", "export.zip", export)
    token = csrf_token(page)
    body = (
        f'--{kind.rsplit("=", 1)[1]}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{token}\r\n"
    ).encode() + body
    status, _, page = instructor.request("/instructor/import", body, {"Content-Type": kind})
    assert status == 200, page[:500]
    assert b"Imported (2)" in page


def test_a_course_whose_assignment_is_not_installed_refuses_to_start(tmp_path, capsys):
    """The dispatcher resolves the course's assignment once, at its start: a wrong name stops
    `grader serve` at once, saying which (never a grading that fails later, job after job)."""
    from grader.cli import main

    data = tmp_path / "course"
    data.mkdir()
    (data / "settings.yaml").write_text("assignment: no_such_course\nsandbox: none\n")
    assert main(["serve", "--data", str(data), "--port", str(_free_port())]) == 2
    assert "no assignment 'no_such_course'" in capsys.readouterr().err


def test_a_second_server_on_the_same_sqlite_folder_is_refused(server, tmp_path):
    """The first holds DIR/.server.lock: a second refuses at once, naming it."""
    base, _, process = server
    data = tmp_path / "course"
    second = subprocess.run(
        [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"is already served by another grader serve (pid {process.pid}" in second.stderr
    assert "stop that one first" in second.stderr and "PostgreSQL" in second.stderr
    assert _request(base + "/")[0] == 200  # the first goes on


def _cmdlines(root: int) -> dict[int, bytes]:
    """The command lines of ``root`` and of every process it started (by parent pid)."""
    found: dict[int, bytes] = {}
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(name))
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                found[pid] = handle.read()
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return found


def test_the_database_password_stays_out_of_every_command_line(tmp_path, postgres_url):
    """The URL with its password comes from $GRADER_DATABASE_URL: no process of the server (nor
    the Dask workers it starts) shows it in /proc/<pid>/cmdline, the processes it starts do not
    inherit it, and `--database` with a password is refused, saying where to put it."""
    from tests.server.conftest import _new_pg_database

    password = "pw-" + uuid.uuid4().hex[:12]
    url = _new_pg_database(postgres_url).replace("postgres@", f"postgres:{password}@", 1)
    data = tmp_path / "course"
    data.mkdir()
    port = _free_port()
    (data / "settings.yaml").write_text("sandbox: none\n")
    refused = subprocess.run(
        [sys.executable, "-m", "grader", "serve", "--data", str(data), "--database", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "--database holds a password" in refused.stderr
    assert "~/.pgpass" in refused.stderr and "$GRADER_DATABASE_URL" in refused.stderr
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ | {"GRADER_DATABASE_URL": url},
    )
    try:
        assert wait_for(lambda: _request(f"http://127.0.0.1:{port}/")[0] == 200, 90), (
            tmp_path / "serve.log"
        ).read_text()
        assert not (data / "server.sqlite3").exists()  # the rows are in PostgreSQL
        lines = _cmdlines(process.pid)
        assert len(lines) >= 2, lines  # the server and its Dask cluster
        assert not [pid for pid, line in lines.items() if password.encode() in line]
        for pid in set(lines) - {process.pid}:  # read once, then gone from the environment
            with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as handle:
                assert password.encode() not in handle.read(), pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
