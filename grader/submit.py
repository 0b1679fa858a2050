"""Submit a notebook to the course server (``grader serve``) and watch its grading, from a
terminal (``grader submit NOTEBOOK``, in the learner bundle too: it installs the command) or from
a cell of the notebook (``from grader.submit import submit; submit()``).

Why the standard library only: this module ships in the learner bundle (``grader release``) and
runs on a learner's own machine, where the server's dependencies (Flask, SQLAlchemy, Dask) are
not installed; ``urllib`` is enough for two JSON calls. Why not under ``grader/server``: that
package's ``__init__`` imports SQLAlchemy, so nothing in it can run in the bundle.

The credential is the learner's sign-in link: its last path segment is their API token
and what comes before ``/signin/`` is the server's address. ``--link LINK`` keeps it once in
``$XDG_CONFIG_HOME/grader/link`` (by default ``~/.config/grader/link``), mode 0600 in a folder of
mode 0700: outside the notebook's folder, so zipping or sharing the work never shares the link.
``$GRADER_LINK`` overrides the file (a CI job, a shared machine). A link saved by the previous
release (its folder's old name, :data:`OLD_LINK_FOLDER`) is read while no new one is saved.

Waiting polls ``GET /api/v1/submissions/<id>`` at a growing interval (1 s, up to 10 s): a poll is a
short request, so a few hundred learners waiting cost the server little. Redirects are never
followed, so the token is never sent to another address than the one the learner gave.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from grader import environment

LINK_ENV = environment.LINK.name
LINK_FOLDER, OLD_LINK_FOLDER = "grader", "objloc"  # under ~/.config; the old name, read only
PENDING = ("queued", "grading")
USER_AGENT = "grader-submit/1"
REQUEST_TIMEOUT = 60.0  # seconds for one request (an upload of a few MB on a slow line)
WAIT_LIMIT = 3600.0  # seconds `grader submit` waits for a grading before it stops waiting
POLL_FIRST, POLL_MAX = 1.0, 10.0  # seconds between status polls: the first, the longest
TRANSIENT_TRIES = 5  # polls in a row that may fail (server restarting) before giving up


class SubmitError(Exception):
    """Why a submission or a status request failed, in words for the learner; ``code`` is the
    command's exit status (1: the server refused or failed, 2: fix the command or the link)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- the sign-in link -------------------------------------------------------------------------


def link_file() -> Path:
    """Where ``--link`` keeps the learner's sign-in link."""
    return _config_folder() / LINK_FOLDER / "link"


def _config_folder() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


@dataclass(frozen=True)
class Credentials:
    server: str  # base URL, no trailing slash
    token: str


def parse_link(link: str) -> Credentials:
    """The server and token of a sign-in link ``<server>/signin/<token>``."""
    parts = urllib.parse.urlsplit(link.strip())
    head, sep, token = parts.path.rpartition("/signin/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not sep:
        raise SubmitError(
            f"{link.strip()!r} is not a sign-in link: it looks like "
            "https://<course server>/signin/<token> (copy it whole from your instructor's message)",
            2,
        )
    if not token or "/" in token or parts.query or parts.fragment:
        raise SubmitError(f"the sign-in link {link.strip()!r} has no token after /signin/", 2)
    return Credentials(f"{parts.scheme}://{parts.netloc}{head}".rstrip("/"), token)


def save_link(link: str) -> Path:
    """Check and keep the sign-in link in :func:`link_file` (mode 0600); its path."""
    parse_link(link)
    path = link_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".link-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(link.strip() + "\n")
    os.chmod(partial, 0o600)  # the umask cannot widen it, an old file's mode does not survive
    partial.replace(path)
    return path


def credentials(server: str | None = None) -> Credentials:
    """The learner's token ($GRADER_LINK, else the saved link) and the server (``server``,
    else the link's)."""
    link = (environment.LINK.get() or "").strip()
    if not link:
        path = link_file()
        old = _config_folder() / OLD_LINK_FOLDER / "link"
        if not path.exists() and old.exists():
            path = old  # saved by the previous release
        try:
            link = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SubmitError(
                "no sign-in link saved yet: run `grader submit --link <your sign-in link>` once",
                2,
            ) from None
        except OSError as error:
            raise SubmitError(f"cannot read your saved link {path}: {error}", 2) from None
    found = parse_link(link)
    if server:
        return Credentials(server.strip().rstrip("/"), found.token)
    return found


# --- the API ----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str):
        raise SubmitError(
            f"the server answered with a redirect (HTTP {code}) to {newurl}: use that address "
            "with --server (the token is not sent to an address you did not give)"
        )


class Client:
    """The course server's learner API, with errors turned into :class:`SubmitError`."""

    def __init__(self, creds: Credentials, timeout: float = REQUEST_TIMEOUT) -> None:
        self.creds = creds
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _call(self, method: str, path: str, body: bytes | None = None, kind: str = "") -> Any:
        url = self.creds.server + path
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.creds.token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if kind:
            request.add_header("Content-Type", kind)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _json(response.read(), url, response.status)
        except urllib.error.HTTPError as error:
            raise _http_error(error, url) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SubmitError(
                f"cannot reach the course server at {self.creds.server} ({reason}): check the "
                "address and your connection; if they are right, the server may be down for a "
                "moment: try again later"
            ) from None

    def upload(self, data: bytes, filename: str, assignment: str = "") -> dict[str, Any]:
        """Upload a notebook (for ``assignment``; none: the course's first)."""
        body, kind = multipart("notebook", filename, data)
        query = f"?assignment={urllib.parse.quote(assignment)}" if assignment else ""
        return self._call("POST", "/api/v1/submissions" + query, body, kind)

    def status(self, submission_id: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/submissions/{int(submission_id)}")

    def page(self, submission_id: int) -> str:
        return f"{self.creds.server}/submissions/{int(submission_id)}"


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, and its Content-Type."""
    boundary = uuid.uuid4().hex
    safe = "".join(c for c in filename if c.isprintable() and c not in '"\\\r\n') or "notebook"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{safe}"\r\n'
        "Content-Type: application/x-ipynb+json\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def _json(raw: bytes, url: str, status: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise SubmitError(
            f"{url} answered HTTP {status} but not as the course server does (no JSON): is the "
            "server address right?"
        ) from None


def _http_error(error: urllib.error.HTTPError, url: str) -> SubmitError:
    try:
        said = str(json.loads(error.read()).get("error") or "")
    except (ValueError, AttributeError, OSError):
        said = ""
    code = error.code
    if code == 401:
        return SubmitError(
            "the server did not accept your sign-in link (it was mistyped, replaced by a newer "
            "one, or revoked): ask your instructor for a new link, then run "
            "`grader submit --link <new link>`",
            2,
        )
    if code == 403:
        return SubmitError(f"not allowed: {said or 'this link cannot do that'}", 2)
    if code == 404:
        return SubmitError(f"{url} was not found (or is not yours)", 1)
    if code >= 500:
        return SubmitError(
            f"the course server failed (HTTP {code}); try again in a few minutes, and tell "
            "your instructor if it goes on"
        )
    return SubmitError(f"the server refused the upload: {said or error.reason} (HTTP {code})")


# --- waiting ----------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


class Progress:
    """Prints each status once (queued, grading, graded); where a line can be redrawn (a
    terminal, a notebook cell) a progress line shows the time spent, else a line a minute."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.status = ""
        self.said = 0.0

    def show(self, status: str, elapsed: float) -> None:
        if status != self.status:
            if self.live and self.status:
                self.out.write("\n")
            self.status, self.said = status, elapsed
            self.out.write(f"\r{status} {_clock(elapsed)}" if self.live else f"{status}\n")
        elif self.live:
            self.out.write(f"\r{status} {_clock(elapsed)}")
        elif elapsed - self.said >= 60:
            self.said = elapsed
            self.out.write(f"still {status} ({_clock(elapsed)})\n")
        self.out.flush()

    def end(self) -> None:
        if self.live and self.status:
            self.out.write("\n")
            self.out.flush()


def wait(
    client: Client,
    submission_id: int,
    out: TextIO,
    *,
    limit: float = WAIT_LIMIT,
    live: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the grading ends (or ``limit`` seconds); the last state."""
    progress = Progress(out, _live(out) if live is None else live)
    start, interval, failures = clock(), POLL_FIRST, 0
    try:
        while True:
            try:
                state = client.status(submission_id)
                failures = 0
            except SubmitError as error:
                failures += 1
                if error.code == 2 or failures >= TRANSIENT_TRIES:
                    raise
                state = {"status": progress.status or "queued"}
            status = str(state.get("status", "?"))
            progress.show(status, clock() - start)
            if status not in PENDING:
                return state
            if clock() - start >= limit:
                return state
            sleep(interval)
            interval = min(interval * 1.5, POLL_MAX)
    finally:
        progress.end()


def _live(out: TextIO) -> bool:
    return bool(getattr(out, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def describe(state: dict[str, Any], page: str) -> str:
    """The closing lines: the score, or why there is none, and where the report is."""
    status = str(state.get("status"))
    if status in PENDING:
        return f"Still {status}; follow it on {page} or with `grader submit --status ID`."
    lines = []
    if state.get("score") is not None and state.get("max_score") is not None:
        late = " (late: after the late penalty)" if state.get("late") else ""
        lines.append(f"{status}: {state['score']:g} / {state['max_score']:g} points{late}")
    elif status == "graded":
        lines.append("graded; your instructor releases the score and the report later")
    else:
        lines.append(f"the grading ended: {status}")
    if state.get("report"):
        lines.append(f"Read the report: {page} (signed in with your link)")
    return "\n".join(lines)


# --- the two front doors: submit() in a notebook, main() in a terminal ------------------------


def find_notebook(folder: Path | None = None) -> Path:
    """The notebook this kernel runs (Jupyter sets $JPY_SESSION_NAME), else the only .ipynb in
    ``folder`` (the current one)."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    here = Path(folder or Path.cwd())
    found = sorted(p for p in here.glob("*.ipynb") if p.is_file())
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise SubmitError(
        f"which notebook? give its name, e.g. submit('project.ipynb') (.ipynb files "
        f"in {here}: {names})",
        2,
    )


def send(
    notebook: Path,
    server: str | None = None,
    *,
    wait_for_grade: bool = True,
    out: TextIO | None = None,
    limit: float = WAIT_LIMIT,
    assignment: str = "",
) -> dict[str, Any]:
    """Upload ``notebook`` (for ``assignment``: a course with several; none: its first); with
    ``wait_for_grade``, watch its grading. The last state."""
    out = out or sys.stdout
    client = Client(credentials(server))
    _warn_plain_http(client.creds.server, out)
    path = Path(notebook)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SubmitError(f"cannot read {path}: {error.strerror or error}", 2) from None
    saved = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    out.write(f"Submitting {path.name} as saved at {saved} to {client.creds.server}\n")
    accepted = client.upload(data, path.name, assignment)
    ident = int(accepted["id"])
    late = " (after the deadline)" if accepted.get("late") else ""
    out.write(f"Submission {accepted.get('number', '?')} received{late}: {client.page(ident)}\n")
    out.flush()
    if not wait_for_grade:
        return {"id": ident, "status": "queued"}
    try:
        state = wait(client, ident, out, limit=limit)
    except SubmitError as error:
        raise SubmitError(
            f"submitted, but its grading cannot be followed now: {error.message}; see "
            f"{client.page(ident)} later",
            error.code,
        ) from None
    out.write(describe(state, client.page(ident)) + "\n")
    return state | {"id": ident}


def _warn_plain_http(server: str, out: TextIO) -> None:
    host = urllib.parse.urlsplit(server).hostname or ""
    if server.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        out.write("warning: http:// sends your link unencrypted; ask for the https:// address\n")


def submit(
    notebook: str | Path | None = None,
    server: str | None = None,
    wait: bool = True,
    assignment: str = "",
) -> dict[str, Any] | None:
    """Submit from inside the notebook: save it first (Ctrl-S), then run
    ``from grader.submit import submit; submit()``. Finds the notebook itself (see
    :func:`find_notebook`); prints the progress and the score; returns the last state, or None
    (with the reason printed) when nothing was submitted or the grading could not be followed."""
    try:
        path = Path(notebook) if notebook else find_notebook()
        return send(path, server, wait_for_grade=wait, assignment=assignment)
    except SubmitError as error:
        print(
            error.message
            if error.message.startswith("submitted")
            else f"Not submitted: {error.message}"
        )
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grader submit`` (also ``python -m grader.submit``)."""
    parser.add_argument("notebook", nargs="?", type=Path, metavar="NOTEBOOK")
    parser.add_argument(
        "--server", metavar="URL", help="the course server's address (default: your link's)"
    )
    parser.add_argument(
        "--link",
        metavar="LINK",
        help=f"save your sign-in link (once) in {link_file()} (mode 0600) and use it from now on",
    )
    parser.add_argument(
        "--assignment",
        metavar="NAME",
        default="",
        help="the assignment it is for, on a course with several (default: its first)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="upload and return without waiting for the grade"
    )
    parser.add_argument(
        "--status", type=int, metavar="ID", help="follow submission ID instead of uploading"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``grader submit``: 0 submitted (and graded when waited for), 1 refused or failed, 2 a
    problem with the command or the link."""
    try:
        if args.link is not None:
            where = save_link(args.link)
            print(f"Saved your sign-in link in {where} (readable by you only).")
            if args.notebook is None and args.status is None:
                return 0
        if args.status is not None:
            client = Client(credentials(args.server))
            state = wait(client, args.status, sys.stdout)
            print(describe(state, client.page(args.status)))
            return 0 if state.get("status") not in PENDING else 1
        if args.notebook is None:
            raise SubmitError("give the notebook to submit, e.g. grader submit mine.ipynb", 2)
        state = send(
            args.notebook, args.server, wait_for_grade=not args.no_wait, assignment=args.assignment
        )
    except SubmitError as error:
        print(f"grader submit: {error.message}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("\nStopped waiting; the grading goes on (grader submit --status ID).")
        return 130
    return 0 if args.no_wait or state.get("status") not in PENDING else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="grader submit",
        description="Submit a notebook to the course server and wait for its grade.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
