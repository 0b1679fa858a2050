"""What every request of one course server shares: the data folder, the settings, the database,
the dispatcher to wake, the clock, the rate limits and the cached learner bundle.

Why a leaf module: the blueprints (``pages``, ``api``, ``instructor``, ``live``, ``quiz_pages``)
all need it and ``app.create_app`` makes it; they import it from here, never from ``app``, so no
blueprint imports the module that registers it. :func:`current` is Flask's ``current_app``
extension, as in Flask's own examples.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from grader.server.auth import EXTENSION, RateLimiter
from grader.server.db import Database
from grader.server.models import utcnow
from grader.server.roster import Identity
from grader.server.settings import AssignmentPolicy, Settings
from grader.server.submissions import Accepted, Refused, create_submission

# the quiz services: the first one (the default assignment's, when it has a quiz), and each
# assignment's by the assignment's name
QUIZ_EXTENSION = "course_quiz"
QUIZZES_EXTENSION = "course_quizzes"


def build_bundle(out: Path, assignment: str = "") -> None:
    """Write the learner bundle of ``assignment`` (empty: the only one installed) into ``out``:
    the one place the server calls ``grader release``."""
    from grader.authoring.release import build_release

    build_release(out, assignment or None)


@dataclass
class ServerState:
    data_dir: Path
    settings: Settings
    db: Database
    dispatcher: Any = None  # grader.server.queue.Dispatcher, woken after an upload
    clock: Callable[[], dt.datetime] = utcnow
    bundle: Callable[..., None] = build_bundle
    signins: RateLimiter = field(default_factory=lambda: RateLimiter(30))
    uploads: RateLimiter = field(default_factory=lambda: RateLimiter(6))
    bundle_lock: threading.Lock = field(default_factory=threading.Lock)

    def upload(
        self,
        identity: Identity,
        data: bytes,
        filename: str = "",
        assignment: AssignmentPolicy | None = None,
    ) -> Accepted:
        """Take an upload for a signed-in learner (web page and API alike); ``filename``: the
        uploaded file's own name, as the browser or client sent it (kept with the submission,
        and it words a refusal); ``assignment``: the course's assignment it is for (default:
        the first)."""
        if identity.learner_id is None:
            raise Refused("instructors do not submit: sign in with a learner link", 403)
        if not self.uploads.allow(identity.learner_id):
            raise Refused("too many uploads in a minute; wait a little and try again", 429)
        accepted = create_submission(
            self.db,
            self.data_dir,
            self.settings,
            identity.learner_id,
            data,
            now=self.clock(),
            filename=filename,
            assignment=assignment,
        )
        self.wake()
        return accepted

    def wake(self) -> None:
        """Tell the dispatcher that jobs are waiting (nothing without one: tests, commands)."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def bundle_zip(self, assignment: AssignmentPolicy | None = None) -> Path:
        """The bundle of ``assignment`` (default: the first) as a zip, built once per server
        process (in a temp folder, then zipped)."""
        policy = assignment or self.settings.course_assignments()[0]
        name = policy.name
        target = self.data_dir / "cache" / f"{name}.zip"
        with self.bundle_lock:
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="course-bundle-") as tmp:
                    folder = Path(tmp) / name
                    self.bundle(folder, policy.assignment)
                    partial = target.with_suffix(".zip.tmp")
                    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                        for path in sorted(folder.rglob("*")):
                            if path.is_file():
                                archive.write(path, path.relative_to(tmp))
                    partial.replace(target)
        return target


def current() -> ServerState:
    """The course of the app handling this request."""
    return current_app.extensions[EXTENSION]
