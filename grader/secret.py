"""The course's hidden-data seed: a per-course secret kept outside the source and the sandbox.

Why: the hidden checks draw their test images from a seed. If that seed were in the package, anyone
who can read the installed grader (a learner with the release bundle's neighbour, a sandbox that
sees site-packages) could regenerate the hidden labels. So the seed is generated once per course,
stored with the instructor's data (mode 0600), and only the trusted process reads it; Dask jobs
carry it by value.

Where it lives, first match wins:

1. ``$OBJLOC_HIDDEN_SEED``: the seed itself (an integer), e.g. for CI or a Dask worker's
   environment;
2. ``$OBJLOC_SECRET_FILE``: a file holding it;
3. ``$XDG_DATA_HOME/objloc-course/hidden-seed`` (``~/.local/share/...``), created on first use.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

SEED_ENV = "OBJLOC_HIDDEN_SEED"
FILE_ENV = "OBJLOC_SECRET_FILE"

_active: ContextVar[int | None] = ContextVar("objloc_hidden_seed", default=None)


class SecretError(RuntimeError):
    """The secret exists but cannot be read or is malformed."""


def secret_path() -> Path:
    """The file the hidden seed is read from (and created in when missing)."""
    if os.environ.get(FILE_ENV):
        return Path(os.environ[FILE_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "objloc-course" / "hidden-seed"


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
    if path is None and os.environ.get(SEED_ENV):
        return _parse(os.environ[SEED_ENV], f"${SEED_ENV}")
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


def hidden_seed() -> int:
    """The seed the hidden checks use now: the one set by :func:`using_seed`, else the course's."""
    value = _active.get()
    return load_hidden_seed() if value is None else value


@contextlib.contextmanager
def using_seed(seed: int) -> Iterator[int]:
    """Grade with this hidden seed (a Dask job carries the client's seed by value)."""
    token = _active.set(int(seed))
    try:
        yield int(seed)
    finally:
        _active.reset(token)
