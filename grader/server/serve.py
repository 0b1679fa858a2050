"""``grader serve``: the course's web app under waitress, with the grading dispatcher beside it.

Why waitress: a production WSGI server in pure Python (no compiler, installs from PyPI
everywhere the grader does) whose I/O is asynchronous and whose request threads are a fixed
pool, so slow or half-open clients cost a socket, not a thread. Its limits are set here, once:
at most ``CONNECTION_LIMIT`` open connections (more wait in the listen backlog), an idle
connection closed after ``CHANNEL_TIMEOUT`` seconds, request bodies capped by :func:`body_cap`: the
larger of a learner's upload limit and the instructor's LMS import limit (an LMS export of a whole
class is bigger than one notebook, and waitress would cut it off with a bare 413). Flask still
refuses a learner's upload over its own, smaller cap, with its own message.
Werkzeug's development server is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import sys
from typing import Any

# A few hundred learners polling every few seconds over keep-alive connections fit in 500; past
# it, new connections wait in the backlog instead of costing memory (the quiz server once held
# 1,100 half-open connections on 1,101 threads).
CONNECTION_LIMIT = 500
# An idle (or half-open) connection is closed after this many seconds: a phone on a bad network
# still finishes a request, a slowloris client does not hold a socket for long.
CHANNEL_TIMEOUT = 30
CLEANUP_INTERVAL = 10  # how often waitress looks for idle connections
BACKLOG = 1024  # connections the kernel queues while all CONNECTION_LIMIT are in use

PROG = "grader serve"


def serve(args: argparse.Namespace, settings: Any, db: Any) -> int:
    """Start the dispatcher of the course in ``args.data`` (its ``settings`` and ``db``), serve
    until interrupted (Ctrl-C, SIGTERM)."""
    from grader.assignment import AssignmentError
    from grader.preflight import refusal
    from grader.secret import SecretError, hidden_seed
    from grader.server.app import create_app
    from grader.server.queue import Dispatcher

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
        dispatcher = Dispatcher(
            db, args.data, settings, scheduler=args.scheduler, hidden_seed=seed
        ).start()
    except (OSError, AssignmentError) as error:  # no such assignment; no Dask scheduler
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    app = create_app(args.data, settings, db, dispatcher=dispatcher)
    try:
        server = make_server(
            app,
            args.host,
            args.port,
            args.threads,
            body_cap(settings),
            getattr(args, "trusted_proxy", None),
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
        db.dispose()
    return 0


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run_until_stopped(server: Any) -> None:
    """Serve until Ctrl-C or SIGTERM, which stop it alike (the caller's ``finally`` cleans up)."""
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


def body_cap(settings: Any) -> int:
    """The request body waitress accepts: the larger of the learner upload cap and the LMS
    import cap (each route's own cap is Flask's ``max_content_length``, with its message)."""
    from grader.server import lms_import

    return max(settings.max_upload_bytes, int(lms_import.IMPORT_MAX_MB * 1024 * 1024))


def make_server(
    app: Any,
    host: str,
    port: int,
    threads: int,
    max_body: int,
    trusted_proxy: str | None = None,
) -> Any:
    """A waitress server with bounded connections and timeouts (``server.run()`` serves)."""
    from waitress import create_server

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": threads,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT,
        "cleanup_interval": CLEANUP_INTERVAL,
        "backlog": BACKLOG,
        "max_request_body_size": max_body + 64 * 1024,
    }
    if trusted_proxy:  # the reverse proxy's address: trust its X-Forwarded-* headers
        options |= {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto x-forwarded-host",
            "clear_untrusted_proxy_headers": True,
        }
    return create_server(app, **options)
