"""A course for the web tests: a data folder, a roster of two learners and an instructor, the app
(bundle builder faked), and a dispatcher over a thread pool with a fake grading function."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from grader.server import roster
from grader.server.app import create_app
from grader.server.db import Database
from grader.server.queue import Dispatcher
from grader.server.settings import Settings
from tests.server.fakes import fake_grade


@dataclass
class Course:
    data_dir: Path
    db: Database
    settings: Settings
    app: Flask
    tokens: dict[str, str]  # alice, bob, instructor
    executor: ThreadPoolExecutor

    def client(self, who: str | None = None):
        client = self.app.test_client()
        if who:
            response = client.get(f"/signin/{self.tokens[who]}")
            assert response.status_code == 302, response.data
        return client

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def dispatcher(self, grade=fake_grade) -> Dispatcher:
        return Dispatcher(
            self.db, self.data_dir, self.settings, grade=grade, executor=self.executor, capacity=2
        )

    def grade_all(self, grade=fake_grade) -> None:
        assert self.dispatcher(grade).drain(60)


def fake_bundle(out: Path, assignment: str = "") -> None:
    out.mkdir(parents=True)
    (out / "object_localization.ipynb").write_text("{}")
    (out / "README.md").write_text("the bundle")


def make_course(data_dir: Path, db: Database, settings: Settings, **app_options) -> Course:
    issued, _ = roster.add_learners(
        db,
        roster.read_roster("id,name,email\nalice,Alice,a@x.org\nbob,Bob,b@x.org\n"),
        "http://testserver",
    )
    tokens = {row.id: row.link.rsplit("/", 1)[1] for row in issued}
    tokens["instructor"] = roster.instructor_link(db, "http://testserver").link.rsplit("/", 1)[1]
    app = create_app(data_dir, settings, db, bundle=fake_bundle, secret_key="test", **app_options)
    app.config["TESTING"] = True
    return Course(data_dir, db, settings, app, tokens, ThreadPoolExecutor(2))


def csrf_token(html: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        rb'name="csrf_token" value="([^"]+)"', html
    )
    assert match, html[:2000]
    return match.group(1).decode()
