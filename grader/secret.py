"""The hidden-data seeds: a per-course secret kept outside the source and the sandbox, and the seed
of each grading derived from it and the submission.

Why a secret: the hidden checks draw their inputs from a seed. If that seed were in the package,
anyone who can read the installed grader (a learner with the release bundle's neighbour, a sandbox
that sees site-packages) could regenerate the hidden labels. So the course seed is generated once
per course, stored with the instructor's data (mode 0600), and only the trusted process reads it;
Dask jobs carry it by value.

Why one seed per submission: a report shows what the checks expected on hidden inputs, so with one
seed per course a first submission would reveal what a second could hard-code. The seed a grading
uses (:func:`submission_seed`) is a keyed hash, HMAC-SHA256 with the course seed as the key, of the
assignment's name and the submission's graded source (the kept source the grader runs, ``IngestedNotebook.source``): the same
submission always gets the same hidden inputs, so the same score and messages (regrading agrees),
while any change to what is graded draws inputs nobody has seen; without the course seed nobody
can compute them. An unreadable notebook (no source) is graded with the course seed itself.

Where it lives, first match wins:

1. ``$GRADER_HIDDEN_SEED``: the seed itself (an integer), e.g. for CI or a Dask worker's
   environment;
2. ``$GRADER_SECRET_FILE``: a file holding it;
3. ``$XDG_DATA_HOME/grader/hidden-seed`` (``~/.local/share/...``), created on first use; the
   previous release's file there (:data:`OLD_DATA_FOLDER`) is read while it is the only one (a
   course keeps its seed, so its hidden inputs, across the rename).

(``grader.environment`` declares the variables; their previous names are read too, for now.)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from grader import environment

SEED_ENV = environment.HIDDEN_SEED.name
FILE_ENV = environment.SECRET_FILE.name
#: The data folder's subfolder holding the secret, and the previous release's name for it.
DATA_FOLDER, OLD_DATA_FOLDER = "grader", "objloc-course"

_active: ContextVar[int | None] = ContextVar("hidden_seed", default=None)
_told: set[Path] = set()  # the previous release's secret files this process said it read


class SecretError(RuntimeError):
    """The secret exists but cannot be read or is malformed."""


def secret_path() -> Path:
    """The file the hidden seed is read from (and created in when missing)."""
    given = environment.SECRET_FILE.get()
    if given:
        return Path(given).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    path, old = base / DATA_FOLDER / "hidden-seed", base / OLD_DATA_FOLDER / "hidden-seed"
    if not path.exists() and old.exists():
        if old not in _told:  # once per process
            _told.add(old)
            print(f"grader: reading the hidden seed from {old}; move it to {path}", file=sys.stderr)
        return old
    return path


def _parse(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SecretError(f"{where} should hold one integer (the hidden-data seed)") from None
    if value < 0:
        raise SecretError(f"{where}: the hidden-data seed must not be negative")
    return value


def load_hidden_seed(path: Path | None = None) -> int:
    """The course's hidden seed, creating the secret file (mode 0600) on first use.

    Creation is atomic: the seed is written and synced to a private temporary file, then
    hard-linked to its name, which fails if another process got there first (then theirs is
    read). So a racing reader never sees an empty or half-written file, and all agree on one seed.
    """
    given = environment.HIDDEN_SEED.get() if path is None else None
    if given:
        return _parse(given, f"${SEED_ENV}")
    path = path or secret_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.randbits(62)
        fd, tmp = tempfile.mkstemp(prefix=".hidden-seed-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{value}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:  # another process made it first: read theirs
            pass
        else:
            return value
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    try:
        return _parse(path.read_text(), str(path))
    except OSError as exc:
        raise SecretError(f"cannot read the hidden-data seed {path}: {exc}") from None


#: Separates this use of the course seed from any other keyed hash of it. Its words are the
#: previous release's name, kept: another label would change every course's hidden inputs.
_DERIVATION = b"objloc hidden inputs of a submission\0"


def submission_seed(course_seed: int, source: str, *, assignment: str) -> int:
    """The hidden seed of grading ``source`` (a submission's graded source) for ``assignment``
    (its name) in a course whose seed is ``course_seed``: HMAC-SHA256 keyed by the course seed,
    its first 62 bits (the size of a course seed). The same source always gets the same seed;
    any change, another; and each assignment of a course its own, so two assignments sharing one
    secret never draw the same hidden inputs (nor does one's report tell the other's)."""
    key = str(int(course_seed)).encode("ascii")
    name = assignment.encode("utf-8", "surrogatepass")
    message = _DERIVATION + name + b"\0" + source.encode("utf-8", "surrogatepass")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def hidden_seed() -> int:
    """The seed the hidden checks use now: the one set by :func:`using_seed`, else the course's."""
    value = _active.get()
    return load_hidden_seed() if value is None else value


@contextlib.contextmanager
def using_seed(seed: int) -> Iterator[int]:
    """Use this hidden seed inside (a Dask job carries the course seed by value; a grading then
    uses its submission's seed, :func:`submission_seed`)."""
    token = _active.set(int(seed))
    try:
        yield int(seed)
    finally:
        _active.reset(token)
