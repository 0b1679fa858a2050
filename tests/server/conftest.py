"""Fixtures of the course server's tests: a data folder, a migrated database (SQLite, and
PostgreSQL when a throwaway cluster can be started here), settings, notebooks."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from grader.server.db import Database, open_database
from grader.server.settings import Settings

PG_USER = 65534  # postgres refuses to run as root: the cluster runs as nobody


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--clear-groups", "--"]


@pytest.fixture(scope="session")
def postgres_url():
    """A base URL of a throwaway PostgreSQL cluster (skips with the reason when none starts)."""
    # On PATH, else where Debian's `postgresql` package puts them (/usr/lib/postgresql/NN/bin).
    debian = ":".join(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    pg_ctl = shutil.which("pg_ctl") or shutil.which("pg_ctl", path=debian)
    initdb = shutil.which("initdb") or shutil.which("initdb", path=debian)
    if not pg_ctl or not initdb:
        pytest.skip("PostgreSQL tests: pg_ctl/initdb not found (apt-get install postgresql)")
    # not under pytest's temp folder: that one is private to root, and the cluster runs as nobody
    root = Path(tempfile.mkdtemp(prefix="objloc-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
        for path in (root, data):
            os.chown(path, PG_USER, PG_USER)
    run = _as_postgres_user()
    port = _free_port()
    try:
        subprocess.run(
            [*run, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *run,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError) as error:
        detail = getattr(error, "stderr", b"") or b""
        pytest.skip(f"PostgreSQL tests: the throwaway cluster did not start: {error} {detail!r}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*run, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


_counter = itertools.count()


def _new_pg_database(base: str) -> str:
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(base + "/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str | None:
    """None (SQLite in the data folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return _new_pg_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "course"
    path.mkdir()
    return path


@pytest.fixture
def db(data_dir, db_url) -> Database:
    database = open_database(data_dir, db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(data_dir) -> Database:
    database = open_database(data_dir)
    yield database
    database.dispose()


@pytest.fixture
def settings() -> Settings:
    return Settings(cooldown_seconds=0, submissions_per_day=50, sandbox="none")


def notebook_bytes(source: str = "x = 1") -> bytes:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(notebook).encode()


@pytest.fixture
def notebook() -> bytes:
    return notebook_bytes()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        time.sleep(interval)
    return False
