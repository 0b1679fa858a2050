"""``grader serve``: the course's web app behind its front (``guard``: waitress with a deadline
per request, a cap on connections per address and a body cap per route), with the grading
dispatcher beside it.

Why waitress: a production WSGI server in pure Python (no compiler, installs from PyPI
everywhere the grader does) whose I/O is asynchronous and whose request threads are a fixed
pool, so slow or half-open clients cost a socket, not a thread; ``guard`` adds what it lacks
against hostile clients (its docstring says what was measured). Werkzeug's development server is
never used.

One server per SQLite folder: the server holds ``DIR/.server.lock`` (``flock``, gone with its
process) while it serves, and a second ``grader serve`` on the same folder refuses at once,
naming the first. Several servers share one course only through PostgreSQL (``--database``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

# Descriptors kept for the process itself (database, logs, Dask, grading children) beside the
# connections: the connection limit is what the process's descriptor limit leaves.
RESERVED_DESCRIPTORS = 256
SERVER_LOCK = ".server.lock"
BACKLOG = 1024  # connections the kernel queues while every connection slot is in use

PROG = "grader serve"


def serve(args: argparse.Namespace, settings: Any, db: Any) -> int:
    """Start the dispatcher of the course in ``args.data`` (its ``settings`` and ``db``), serve
    until interrupted (Ctrl-C, SIGTERM)."""
    from grader.preflight import refusal
    from grader.secret import SecretError, hidden_seed

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("grader.server").setLevel(logging.INFO)
    if args.jobs is not None:
        if args.jobs < 1:
            print(f"{PROG}: -j must be at least 1", file=sys.stderr)
            return 2
        settings = dataclasses.replace(settings, jobs=args.jobs)
    refused = refusal(settings.sandbox, PROG, scheduler=args.scheduler)
    if refused:
        print(f"{PROG}: {refused}", file=sys.stderr)
        return 2
    try:
        seed = hidden_seed()
    except SecretError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    try:
        with contextlib.ExitStack() as held:
            if db.is_sqlite:
                held.enter_context(served_folder(args.data))
            return _serve(args, settings, db, seed)
    except FolderServed as busy:
        print(f"{PROG}: {busy}", file=sys.stderr)
        return 2
    finally:
        db.dispose()


def _serve(args: argparse.Namespace, settings: Any, db: Any, seed: Any) -> int:
    from grader.assignment import AssignmentError
    from grader.server.app import create_app
    from grader.server.queue import Dispatcher

    try:
        dispatcher = Dispatcher(
            db, args.data, settings, scheduler=args.scheduler, hidden_seed=seed
        ).start()
    except (OSError, AssignmentError) as error:  # no such assignment; no Dask scheduler
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    try:
        app = create_app(args.data, settings, db, dispatcher=dispatcher)
        trusted_proxy = getattr(args, "trusted_proxy", None)
        server = make_server(
            app,
            args.host,
            args.port,
            args.threads,
            body_cap(settings),
            trusted_proxy,
            limits=course_limits(settings, trusted_proxy),
        )
        where = f"Dask scheduler {args.scheduler}" if args.scheduler else f"-j {settings.jobs}"
        print(
            f"{PROG}: {settings.title} on http://{args.host}:{server.effective_port} "
            f"(data {args.data}, grading on {where}, sandbox {settings.sandbox})",
            flush=True,
        )
        run_until_stopped(server)
    finally:
        dispatcher.stop()
    return 0


class FolderServed(RuntimeError):
    """Another ``grader serve`` holds the data folder (its SQLite database takes one server)."""


@contextlib.contextmanager
def served_folder(data_dir: Path) -> Iterator[None]:
    """Hold ``DIR/.server.lock`` while serving; :class:`FolderServed` when another server
    does. ``flock`` goes with its process, so a server killed with -9 leaves no stale lock."""
    from grader.batch.journal import LockHolder

    path = Path(data_dir) / SERVER_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.parse(path.read_text(errors="replace"))
            who = (
                f"pid {holder.pid} on {holder.host}, started {holder.started}"
                if holder.pid is not None
                else "one that is just starting"
            )
            raise FolderServed(
                f"{data_dir} is already served by another grader serve ({who}). Its SQLite "
                "database takes one server at a time: stop that one first, or keep the course "
                "in PostgreSQL (--database) to run several servers"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dataclasses.asdict(LockHolder.current())).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run_until_stopped(server: Any) -> None:
    """Serve until Ctrl-C or SIGTERM, which stop it alike (the caller's ``finally`` cleans up)."""
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


def body_cap(settings: Any) -> int:
    """The largest body any route takes: the larger of the learner upload cap and the LMS import
    cap (each route's own, smaller cap is :func:`course_body_cap`'s)."""
    from grader.server import lms_import

    return max(settings.max_upload_bytes, int(lms_import.IMPORT_MAX_MB * 1024 * 1024))


def descriptor_budget(wanted: int) -> int:
    """Connections this process can hold: ``wanted``, or what its descriptor limit (raised to
    the hard limit) leaves after :data:`RESERVED_DESCRIPTORS`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            raised = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    return max(64, min(wanted, soft - RESERVED_DESCRIPTORS))


def course_limits(settings: Any, trusted_proxy: str | None = None) -> Any:
    """The front's limits for a course: its ``connections_per_address``, the trusted proxy
    exempt from it (it holds the clients' sockets itself)."""
    from grader.server.guard import Limits

    exempt = frozenset(a.strip() for a in (trusted_proxy or "").split(",") if a.strip())
    return Limits(per_address=settings.connections_per_address, exempt=exempt)


def app_body_cap(app: Any) -> Callable[[str, str, Mapping[str, str]], int]:
    """The body cap of a request to ``app`` from its method, path and headers: its route's
    (``responses.route_body_cap``); a path no route takes gets a form's worth."""
    from werkzeug.exceptions import HTTPException

    from grader.server.responses import route_body_cap

    adapter = app.url_map.bind("localhost")

    def cap(method: str, path: str, headers: Mapping[str, str]) -> int:
        try:
            endpoint, _ = adapter.match(path, method)
        except HTTPException:  # not found, not allowed, a redirect: no body needed
            endpoint = None
        return route_body_cap(app, endpoint)

    return cap


def course_body_cap(app: Any) -> Callable[[str, str, Mapping[str, str]], int]:
    """:func:`app_body_cap`, and, in a course's app, the LMS import's large cap for the
    instructor's session only (its cookie is checked before the body is read: nobody else gets
    more than a form's worth there)."""
    from grader.server import auth, lms_import

    route_cap = app_body_cap(app)
    state = app.extensions.get(auth.EXTENSION)
    if state is None:  # not a course (the practice quiz)
        return route_cap
    db = state.db
    import_cap = int(lms_import.IMPORT_MAX_MB * 1024 * 1024)

    def cap(method: str, path: str, headers: Mapping[str, str]) -> int:
        limit = route_cap(method, path, headers)
        if method == "POST" and path == "/instructor/import" and headers.get("COOKIE"):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "SERVER_NAME": "localhost",
                "SERVER_PORT": "80",
                "wsgi.url_scheme": "http",
                "wsgi.input": BytesIO(),
                "HTTP_COOKIE": headers["COOKIE"],
            }
            with app.request_context(environ):
                identity = auth.session_identity(db)
            if identity is not None and identity.is_instructor:
                return import_cap
        return limit

    return cap


def make_server(
    app: Any,
    host: str,
    port: int,
    threads: int,
    max_body: int,
    trusted_proxy: str | None = None,
    *,
    limits: Any = None,
    body_cap: Callable[[str, str, Mapping[str, str]], int] | None = None,
) -> Any:
    """``app`` behind the front (``server.run()`` serves): ``limits`` (default: ``guard.Limits``
    within this process's descriptors), each route's body cap (default: :func:`course_body_cap`),
    ``max_body`` the largest body any route takes."""
    from grader.server.guard import Limits, create_guarded_server

    limits = limits or Limits()
    limits = dataclasses.replace(limits, connections=descriptor_budget(limits.connections))
    options: dict[str, Any] = {"host": host, "port": port, "threads": threads, "backlog": BACKLOG}
    if trusted_proxy:  # the reverse proxy's address: trust its X-Forwarded-* headers
        options |= {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto x-forwarded-host",
            "clear_untrusted_proxy_headers": True,
        }
    return create_guarded_server(
        app,
        limits=limits,
        body_cap=body_cap or course_body_cap(app),
        max_body=max_body + 64 * 1024,
        **options,
    )
