"""SQLite store for web (and optionally terminal) attempts: the server-side source of truth.

Attempt limits and the cooldown are decided here, inside one `BEGIN IMMEDIATE` transaction, so two
concurrent "start" requests cannot both slip under the limit, and a submission is accepted exactly
once (`UPDATE ... WHERE submitted_at IS NULL`). Every connection is per call (threads never share
one), WAL mode lets readers run during writes, and a busy timeout makes writers queue instead of
failing. Timestamps are UNIX seconds from an injectable clock, so tests need not sleep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quiz.model import QuizResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY,
    token         TEXT NOT NULL UNIQUE,
    learner       TEXT NOT NULL,
    number        INTEGER NOT NULL,
    seed          INTEGER NOT NULL,
    bank          TEXT NOT NULL,
    started_at    REAL NOT NULL,
    submitted_at  REAL,
    score         REAL,
    max_score     REAL,
    passed        INTEGER,
    result        TEXT,
    UNIQUE (learner, number)
);
CREATE TABLE IF NOT EXISTS item_results (
    attempt_id  INTEGER NOT NULL REFERENCES attempts(id),
    position    INTEGER NOT NULL,
    question    TEXT NOT NULL,
    score       REAL NOT NULL,
    max_score   REAL NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
CREATE INDEX IF NOT EXISTS item_results_question ON item_results(question);
CREATE TABLE IF NOT EXISTS meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""


class AttemptRefused(Exception):
    """The learner may not start an attempt now; `retry_at` is set when waiting will help."""

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Attempt:
    id: int
    token: str
    learner: str
    number: int
    seed: int
    bank: str
    started_at: float
    submitted_at: float | None
    score: float | None
    max_score: float | None
    passed: bool | None
    result: dict[str, Any] | None

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None


def sqlite_path(url_or_path: str | Path) -> str:
    """Accept a plain path or a `sqlite:///relative.db` / `sqlite:////abs.db` URL."""
    s = str(url_or_path)
    if "://" not in s:
        return s
    scheme, _, rest = s.partition("://")
    if scheme != "sqlite":
        raise ValueError(f"unsupported database URL {s!r}: only sqlite:///PATH is built in")
    if not rest.startswith("/") or rest == "/":
        raise ValueError(
            f"bad sqlite URL {s!r}: use sqlite:///relative.db or sqlite:////abs/path.db"
        )
    return rest[1:]


class Store:
    """Attempts and per-question results in one SQLite file."""

    def __init__(self, db: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = sqlite_path(db)
        if self.path == ":memory:":
            raise ValueError("use a file: an in-memory database is not shared between threads")
        self.clock = clock
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @staticmethod
    def _attempt(row: sqlite3.Row | None) -> Attempt | None:
        if row is None:
            return None
        return Attempt(
            id=row["id"],
            token=row["token"],
            learner=row["learner"],
            number=row["number"],
            seed=row["seed"],
            bank=row["bank"],
            started_at=row["started_at"],
            submitted_at=row["submitted_at"],
            score=row["score"],
            max_score=row["max_score"],
            passed=None if row["passed"] is None else bool(row["passed"]),
            result=json.loads(row["result"]) if row["result"] else None,
        )

    def start_attempt(
        self,
        learner: str,
        attempt_limit: int,
        cooldown_seconds: float,
        bank: str = "",
        seed: int | None = None,
    ) -> Attempt:
        """The learner's open attempt, or a new one if the limit and cooldown allow it.

        Resuming an open attempt (same seed) means reloading the page never yields a new variant.
        """
        now = self.clock()
        with self._transaction() as con:
            rows = con.execute(
                "SELECT * FROM attempts WHERE learner = ? ORDER BY number", (learner,)
            ).fetchall()
            attempts = [a for a in map(self._attempt, rows) if a is not None]
            open_ = [a for a in attempts if not a.submitted]
            if open_:
                return open_[-1]
            if len(attempts) >= attempt_limit:
                raise AttemptRefused(f"All {attempt_limit} attempts have been used.")
            if attempts:
                last = max(a.submitted_at or 0.0 for a in attempts)
                retry_at = last + cooldown_seconds
                if now < retry_at:
                    raise AttemptRefused(
                        "The waiting time after the last attempt has not passed yet.", retry_at
                    )
            number = len(attempts) + 1
            token = secrets.token_urlsafe(18)
            seed = secrets.randbelow(2**31) if seed is None else seed
            cur = con.execute(
                "INSERT INTO attempts (token, learner, number, seed, bank, started_at) VALUES (?,?,?,?,?,?)",
                (token, learner, number, seed, bank, now),
            )
            row = con.execute("SELECT * FROM attempts WHERE id = ?", (cur.lastrowid,)).fetchone()
        attempt = self._attempt(row)
        assert attempt is not None
        return attempt

    def get(self, token: str) -> Attempt | None:
        with self._connect() as con:
            return self._attempt(
                con.execute("SELECT * FROM attempts WHERE token = ?", (token,)).fetchone()
            )

    def submit(self, token: str, result: QuizResult) -> bool:
        """Record the result once; False if the attempt was already submitted (or is unknown)."""
        now = self.clock()
        with self._transaction() as con:
            cur = con.execute(
                "UPDATE attempts SET submitted_at = ?, score = ?, max_score = ?, passed = ?, result = ? "
                "WHERE token = ? AND submitted_at IS NULL",
                (
                    now,
                    result.score,
                    result.max_score,
                    int(result.passed),
                    json.dumps(result.to_dict()),
                    token,
                ),
            )
            if cur.rowcount != 1:
                return False
            (attempt_id,) = con.execute(
                "SELECT id FROM attempts WHERE token = ?", (token,)
            ).fetchone()
            con.executemany(
                "INSERT INTO item_results (attempt_id, position, question, score, max_score) VALUES (?,?,?,?,?)",
                [(attempt_id, r.number, r.qid, r.score, r.max_score) for r in result.items],
            )
        return True

    def next_allowed(
        self, learner: str, attempt_limit: int, cooldown_seconds: float
    ) -> float | None:
        """When the learner may start again (None: never, attempts used up)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT submitted_at FROM attempts WHERE learner = ?", (learner,)
            ).fetchall()
        if len(rows) >= attempt_limit:
            return None
        done = [r["submitted_at"] for r in rows if r["submitted_at"] is not None]
        return max(done) + cooldown_seconds if done else self.clock()

    # ------------------------------------------------------------------------ instructor views

    def set_instructor_token(self, token: str) -> None:
        """Record the instructor's token (its SHA-256 only): `quiz show --answers` checks it."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._transaction() as con:
            con.execute(
                "INSERT INTO meta (key, value) VALUES ('instructor_token', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (digest,),
            )

    def instructor_token_ok(self, token: str | None) -> bool:
        """Whether `token` is the instructor token recorded in this store (False if none is)."""
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'instructor_token'").fetchone()
        if row is None or not token:
            return False
        digest = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(digest, row["value"])

    def attempts(self) -> list[Attempt]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM attempts ORDER BY started_at, id").fetchall()
        return [a for a in map(self._attempt, rows) if a is not None]

    def question_stats(self) -> list[dict[str, Any]]:
        """Per question: times answered and mean score share (the classical difficulty index)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT question, COUNT(*) AS n, SUM(score) AS s, SUM(max_score) AS m, "
                "SUM(score >= max_score - 1e-9) AS full FROM item_results GROUP BY question ORDER BY question"
            ).fetchall()
        return [
            {
                "question": r["question"],
                "answered": r["n"],
                "difficulty": (r["s"] / r["m"]) if r["m"] else 0.0,
                "fully_correct": r["full"],
            }
            for r in rows
        ]

    def summary(self) -> dict[str, Any]:
        with self._connect() as con:
            r = con.execute(
                "SELECT COUNT(*) AS n, SUM(passed) AS p, COUNT(DISTINCT learner) AS l, AVG(score / max_score) AS mean "
                "FROM attempts WHERE submitted_at IS NOT NULL"
            ).fetchone()
            open_ = con.execute(
                "SELECT COUNT(*) FROM attempts WHERE submitted_at IS NULL"
            ).fetchone()[0]
        n = r["n"] or 0
        return {
            "submitted": n,
            "open": open_,
            "learners": r["l"] or 0,
            "passed": r["p"] or 0,
            "pass_rate": (r["p"] or 0) / n if n else 0.0,
            "mean_score": r["mean"] or 0.0,
        }
