"""The course server's database: SQLite in ``DIR`` by default, any SQLAlchemy URL with
``--database`` (PostgreSQL through psycopg 3), brought to the latest schema by Alembic at start.

Why these choices. SQLite needs no service: one file in ``DIR`` (mode 0600, as are its WAL
files, which SQLite creates with the database's mode), WAL so that pages keep reading while a
write commits, a busy timeout so that a writer waits instead of failing, ``synchronous=FULL`` so
that an acknowledged upload survives a power cut. Writes that check a policy before they insert
(the submission limit, claiming a job) run in :meth:`Database.write`, which on SQLite starts with
``BEGIN IMMEDIATE``: the write lock is taken before the first read, so two such transactions
cannot both read "under the limit" and both insert. On PostgreSQL the same code locks the rows it
decides on (``SELECT ... FOR UPDATE``). The schema is made by the migrations shipped in
``grader/server/migrations`` (Alembic's ``upgrade head``), never by ``create_all``, so that a
course's database is upgraded in place when the server changes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

DB_FILE = "server.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_MS = 30_000  # a writer waits this long for another's transaction before failing


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILE}"


def _normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default driver is psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_set_up(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine and the two kinds of transaction the server uses (:meth:`read`, :meth:`write`)."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if path and path != ":memory:":
                _create_private(Path(path))
            self.engine = create_engine(self.url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
            _sqlite_set_up(self.engine)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=10)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (and simple writes that check nothing first); commits at exit."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction holds the write lock from its start (SQLite: BEGIN
        IMMEDIATE; PostgreSQL: lock rows with ``with_for_update``): commits at exit, rolls back on
        an exception."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(immediate=True)
            with connection.begin(), Session(bind=connection, expire_on_commit=False) as session:
                yield session
                session.flush()

    def migrate(self) -> None:
        """Bring the schema to the latest migration (``alembic upgrade head``)."""
        from alembic import command

        with self.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "head")
            connection.commit()

    def revision(self) -> str | None:
        """The schema's current Alembic revision (None before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def tables(self) -> set[str]:
        return set(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic config pointing at the shipped migrations (and at ``connection`` when given)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _create_private(path: Path) -> None:
    """Create the database file mode 0600 before SQLite does (SQLite gives its WAL and shared
    memory files the database file's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def store_url(value: str | Path) -> str:
    """A database URL from ``quiz --db``: a plain path (an SQLite file) or a URL
    (``sqlite:///relative.db``, ``sqlite:////abs.db``, ``postgresql://user@host/db``)."""
    text = str(value)
    if "://" in text:
        return text
    if text in ("", ":memory:"):
        raise ValueError("give a database file: an in-memory one is not shared between threads")
    return f"sqlite:///{Path(text).resolve()}"


def open_store(value: str | Path) -> Database:
    """The database ``value`` names (:func:`store_url`), migrated to head; ValueError when it
    cannot be opened."""
    from sqlalchemy.exc import ArgumentError

    try:
        database = Database(store_url(value))
    except ArgumentError as error:
        raise ValueError(f"cannot open the database {value!r}: {error}") from None
    database.migrate()
    return database


def open_database(data_dir: Path, url: str | None = None, *, migrate: bool = True) -> Database:
    """The course's database: ``url`` or ``DIR/server.sqlite3``, migrated to head."""
    database = Database(url or sqlite_url(data_dir))
    if migrate:
        database.migrate()
    return database
