"""The database layer: the migration makes the schema from empty and is at head; SQLite is WAL,
private (0600) and waits for a busy writer; the same code runs on PostgreSQL."""

from __future__ import annotations

import os
import stat

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from grader.server.db import DB_FILE, Database, head_revision, open_database
from grader.server.models import Base


def test_migration_creates_the_schema_from_empty_and_is_at_head(data_dir, db_url):
    database = Database(db_url) if db_url else Database(f"sqlite:///{data_dir / DB_FILE}")
    assert database.revision() is None
    assert not database.tables() - {"alembic_version"}
    database.migrate()
    assert database.revision() == head_revision()
    assert {"learners", "tokens", "submissions", "jobs", "audit_log"} <= database.tables()
    with database.engine.connect() as connection:  # the migrations and the models agree
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    database.migrate()  # a second start changes nothing
    assert database.revision() == head_revision()
    database.dispose()


def test_sqlite_is_wal_private_and_waits(data_dir):
    database = open_database(data_dir)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with database.write() as session:
        session.execute(text("SELECT 1"))
    files = [p for p in data_dir.iterdir() if p.name.startswith(DB_FILE)]
    assert {p.name for p in files} >= {DB_FILE, DB_FILE + "-wal"}
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    database.dispose()
