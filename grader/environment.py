"""The environment variables the engine reads, each declared once here with why it exists.

Why one module: a name spelled in several places drifts, and a user looking for what they can set
finds every variable here. Why ``GRADER_*``: the engine grades any course, so its names are the
engine's. The names before the rename (``OBJLOC_*``) are still read for one release where a user
may have set them, with a line on stderr saying which name to use instead; the engine's own
hand-offs (a name it sets for its own processes) have no fallback.

Standard library only: the learner bundle ships this module (its submit client reads the link),
and the sandboxed worker runs it (it reads the thread count).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """An environment variable: its ``name``, and ``old``, the name a user may still have set."""

    name: str
    old: str | None = None

    def get(self, environ: MutableMapping[str, str] | None = None) -> str | None:
        """The value (None when unset or empty), from the old name when only that one is set."""
        environ = os.environ if environ is None else environ
        if environ.get(self.name):
            return environ[self.name]
        if self.old and environ.get(self.old):
            _deprecated(self)
            return environ[self.old]
        return None

    def pop(self, environ: MutableMapping[str, str] | None = None) -> str | None:
        """:meth:`get`, removing both names from the environment (a secret no child inherits)."""
        environ = os.environ if environ is None else environ
        value = self.get(environ)
        environ.pop(self.name, None)
        if self.old:
            environ.pop(self.old, None)
        return value

    def __str__(self) -> str:
        return f"${self.name}"


_warned: set[str] = set()


def _deprecated(variable: Variable) -> None:
    """Say once per process that an old name was read, and which name replaces it."""
    if variable.old in _warned:
        return
    _warned.add(str(variable.old))
    print(
        f"grader: ${variable.old} is deprecated and will not be read in the next release; "
        f"set ${variable.name} instead",
        file=sys.stderr,
    )


HIDDEN_SEED = Variable("GRADER_HIDDEN_SEED", old="OBJLOC_HIDDEN_SEED")
"""The course's hidden seed itself (an integer): CI, or a Dask worker that has no secret file."""

SECRET_FILE = Variable("GRADER_SECRET_FILE", old="OBJLOC_SECRET_FILE")
"""The file holding the course's hidden seed, when it is not the default under the user's data
folder (an instructor keeping it with the course's data)."""

DATABASE_URL = Variable("GRADER_DATABASE_URL", old="OBJLOC_DATABASE_URL")
"""The course server's database URL with its password: out of the command line, which every
process on the machine can read; read once, then removed so that no child inherits it."""

SERVER_SECRET_KEY = Variable("GRADER_SERVER_SECRET_KEY", old="OBJLOC_SERVER_SECRET_KEY")
"""The key that signs the course server's session cookies, shared by several server processes
on one database (else each keeps its own file)."""

LINK = Variable("GRADER_LINK", old="OBJLOC_LINK")
"""The learner's sign-in link for ``grader submit``, instead of the saved file (a CI job, a
shared machine)."""

TRAIN_TIMEOUT = Variable("GRADER_TRAIN_TIMEOUT", old="OBJLOC_TRAIN_TIMEOUT")
"""Seconds the train probe may take, when this machine is slower than the default assumes."""

COURSE_DATA = Variable("GRADER_COURSE_DATA", old="OBJLOC_COURSE_DATA")
"""The course server's data folder for ``./dev serve`` (read by the ``dev`` script)."""

SANDBOX = Variable("GRADER_SANDBOX", old="OBJLOC_SANDBOX")
"""The marker the engine sets in each sandbox's processes, so that a sweep finds a sandbox's
leftovers in /proc; ``old``: processes a grader of the previous release started."""

ASSIGNMENT = Variable("GRADER_ASSIGNMENT")
"""The assignment (a name or a folder) a command uses when none is given and several are
installed: a course's machine, or a test suite that grades one course among others."""

THREADS = Variable("GRADER_THREADS")
"""How many threads the sandboxed worker gives TensorFlow: set by the engine for its worker."""

#: Every variable above, for the README's table and its test.
ALL = (
    HIDDEN_SEED,
    SECRET_FILE,
    DATABASE_URL,
    SERVER_SECRET_KEY,
    LINK,
    TRAIN_TIMEOUT,
    COURSE_DATA,
    SANDBOX,
    ASSIGNMENT,
    THREADS,
)
