"""`grader submit` (grader/submit.py) against a live course server: waitress on a free port in
this process, the app and its dispatcher with a fake grading function (fast, no TensorFlow).
The learner's side is followed through queued -> grading -> graded, the link is kept mode 0600,
and every failure a learner meets (wrong or revoked link, instructor link, server down, a
refusal by policy, another learner's submission) is a clear message and an exit status, never a
traceback. The bundle's copy runs with the standard library only (`python -S`)."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from waitress import wasyncore

from grader import submit as client
from grader.authoring.release import build_release
from grader.server import roster
from grader.server.db import open_database
from grader.server.serve import make_server
from grader.server.settings import Settings
from tests.server.conftest import _free_port, notebook_bytes, wait_for
from tests.server.fakes import fake_grade
from tests.server.helpers import make_course

GATE_ENV = "GRADER_TEST_GATE"  # a folder: gated_grade writes "started", waits for "open"


def gated_grade(job):
    """Runs in the grading's child process (grader.bounded.grade_bounded): it signals through files."""
    gate = Path(os.environ[GATE_ENV])
    (gate / "started").write_text("")
    assert wait_for(lambda: (gate / "open").exists(), 30), "the test never opened the gate"
    return fake_grade(job)


@dataclasses.dataclass
class Live:
    base: str
    course: object
    links: dict[str, str]

    def dispatch(self, grade=fake_grade):
        dispatcher = self.course.dispatcher(grade)
        dispatcher.poll_seconds = 0.05
        self.course.app.extensions["course_server"].dispatcher = dispatcher
        self._dispatchers.append(dispatcher.start())
        return dispatcher

    def settings(self, **changes):
        state = self.course.app.extensions["course_server"]
        state.settings = dataclasses.replace(state.settings, **changes)


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A course served on a free port; its dispatcher starts when the test says so."""
    data = tmp_path / "course"
    data.mkdir()
    db = open_database(data)
    settings = Settings(cooldown_seconds=0, submissions_per_day=50, sandbox="none")
    course = make_course(data, db, settings)
    server = make_server(course.app, "127.0.0.1", 0, 4, settings.max_upload_bytes)
    base = f"http://127.0.0.1:{server.effective_port}"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    links = {who: f"{base}/signin/{token}" for who, token in course.tokens.items()}
    state = Live(base, course, links)
    state._dispatchers = []
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # The grading child unpickles the fake grader from tests/: importable whatever the cwd
    # (a test changes to the notebook's folder, as a learner does).
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv(client.LINK_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(client, "POLL_FIRST", 0.05)
    monkeypatch.setattr(client, "POLL_MAX", 0.2)
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv(GATE_ENV, str(gate))
    state.gate = gate
    try:
        yield state
    finally:
        (gate / "open").write_text("")
        for dispatcher in state._dispatchers:
            dispatcher.stop()
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
        thread.join(10)
        course.executor.shutdown(wait=False)
        db.dispose()


@pytest.fixture
def notebook_file(tmp_path) -> Path:
    path = tmp_path / "work" / "mine.ipynb"
    path.parent.mkdir()
    path.write_bytes(notebook_bytes("def create_example():\n    return 1"))
    return path


def test_submit_shows_queued_grading_graded_and_the_score(live, notebook_file):
    client.save_link(live.links["alice"])
    out = io.StringIO()
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(client.send(notebook_file, out=out)), daemon=True
    )
    worker.start()
    # nothing grades until the client has seen "queued"; then a grading waits at the gate
    assert wait_for(lambda: "queued\n" in out.getvalue(), 20), out.getvalue()
    live.dispatch(gated_grade)
    assert wait_for(lambda: (live.gate / "started").exists(), 30)
    assert wait_for(lambda: "grading\n" in out.getvalue(), 20), out.getvalue()
    (live.gate / "open").write_text("")
    worker.join(30)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines.index("queued") < lines.index("grading") < lines.index("graded")
    assert "graded: 10 / 10 points" in text
    assert f"{live.base}/submissions/{result['id']}" in text and "Read the report" in text
    assert result["status"] == "graded" and result["score"] == 10
    # the same submission as the API answers it to its owner
    assert client.Client(client.credentials()).status(result["id"])["status"] == "graded"


def test_the_link_is_kept_for_the_learner_only(live, tmp_path):
    path = client.save_link(live.links["alice"] + "\n")
    assert path == tmp_path / "config" / "grader" / "link"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    creds = client.credentials()
    assert creds == client.Credentials(live.base, live.course.tokens["alice"])
    # --server overrides the address, the token stays the link's; $GRADER_LINK overrides the file
    assert client.credentials("http://elsewhere:1/").server == "http://elsewhere:1"
    os.environ[client.LINK_ENV] = live.links["bob"]
    try:
        assert client.credentials().token == live.course.tokens["bob"]
    finally:
        del os.environ[client.LINK_ENV]


@pytest.mark.parametrize(
    "link",
    ["", "not a link", "https://course.example.org/", "ftp://x/signin/abc", "http://x/signin/"],
)
def test_what_is_not_a_sign_in_link_is_refused(live, link, capsys):
    assert client.main(["--link", link]) == 2
    assert "sign-in link" in capsys.readouterr().err
    assert not client.link_file().exists()


def test_no_link_saved_says_how_to_save_one(live, notebook_file, capsys):
    assert client.main([str(notebook_file)]) == 2
    assert "grader submit --link" in capsys.readouterr().err


def test_a_wrong_or_revoked_link_is_a_clear_401(live, notebook_file, capsys):
    wrong = live.links["alice"][:-4] + "AAAA"
    assert client.main(["--link", wrong, str(notebook_file)]) == 2
    err = capsys.readouterr().err
    assert "did not accept your sign-in link" in err and "Traceback" not in err
    roster.revoke(live.course.db, "alice")
    assert client.main(["--link", live.links["alice"], str(notebook_file)]) == 2
    assert "ask your instructor for a new link" in capsys.readouterr().err


def test_an_instructor_link_cannot_submit(live, notebook_file, capsys):
    assert client.main(["--link", live.links["instructor"], str(notebook_file)]) == 2
    assert "instructors do not submit" in capsys.readouterr().err


def test_a_server_that_is_down_is_named(live, notebook_file, capsys):
    down = f"http://127.0.0.1:{_free_port()}"
    client.save_link(live.links["alice"])
    assert client.main(["--server", down, str(notebook_file)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the course server at {down}" in err and "Traceback" not in err


def test_refusals_show_the_servers_words(live, notebook_file, tmp_path, capsys):
    live.dispatch()
    client.save_link(live.links["alice"])
    text = tmp_path / "notes.ipynb"
    text.write_text("these are my notes, not a notebook")
    assert client.main([str(text)]) == 1
    assert "the server refused the upload: this is not a Jupyter notebook" in (
        capsys.readouterr().err
    )
    live.settings(submissions_per_day=1)
    assert client.main(["--no-wait", str(notebook_file)]) == 0
    assert "Submission 1 received" in capsys.readouterr().out
    assert client.main([str(notebook_file)]) == 1
    err = capsys.readouterr().err
    assert "you have used today's 1 submission(s)" in err and "(HTTP 429)" in err


def test_another_learners_submission_cannot_be_followed(live, notebook_file, capsys):
    live.dispatch()
    client.save_link(live.links["alice"])
    state = client.send(notebook_file, out=io.StringIO())
    assert state["status"] == "graded"
    assert client.main(["--status", str(state["id"])]) == 0
    assert "10 / 10 points" in capsys.readouterr().out
    client.save_link(live.links["bob"])
    assert client.main(["--status", str(state["id"])]) == 1
    err = capsys.readouterr().err
    assert "not found (or is not yours)" in err and "10 / 10" not in err


def test_submit_from_a_notebook_finds_the_notebook(live, notebook_file, monkeypatch, capsys):
    live.dispatch()
    monkeypatch.setenv(client.LINK_ENV, live.links["alice"])
    monkeypatch.chdir(notebook_file.parent)
    state = client.submit()  # the only .ipynb here
    assert state is not None and state["status"] == "graded"
    assert "Submitting mine.ipynb" in capsys.readouterr().out
    (notebook_file.parent / "other.ipynb").write_bytes(notebook_file.read_bytes())
    assert client.submit() is None  # two notebooks: which one?
    said = capsys.readouterr().out
    assert said.startswith("Not submitted: which notebook?") and "other.ipynb" in said
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook_file.parent / "other.ipynb"))
    assert client.find_notebook() == notebook_file.parent / "other.ipynb"  # Jupyter's kernel
    assert client.submit(wait=False)["status"] == "queued"
    assert "Submitting other.ipynb" in capsys.readouterr().out


def test_the_bundles_client_runs_on_the_standard_library_alone(live, tmp_path):
    """`python -S` leaves site-packages out: the bundle's client has no dependency to find."""
    live.dispatch()
    bundle = tmp_path / "bundle"
    build_release(bundle)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", client.LINK_ENV)}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "learner-config")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-S", "-m", "grader.submit", *args],
            cwd=bundle,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    saved = run("--link", live.links["alice"])
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "learner-config" / "grader" / "link").read_text().strip() == live.links[
        "alice"
    ]
    done = run("object_localization.ipynb")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "graded: 10 / 10 points" in done.stdout
    importer = subprocess.run(
        [sys.executable, "-S", "-c", "import grader.submit, sys; print(sorted(sys.modules))"],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert importer.returncode == 0, importer.stderr
    assert "sqlalchemy" not in importer.stdout and "flask" not in importer.stdout
