"""The sandbox stage: start, talk to and stop the isolated worker that runs learner code.

Why a separate process and this much care: learner code must never decide its own verdict. The
worker (``grader/worker/``) only ever returns data over the ``grader.wire`` protocol;
the checks run in the trusted process. The isolation ladder (``isolation``) fails closed
(``mode="auto"`` takes the first rung that works here; :func:`preflight` tells which before
grading starts):

* ``bwrap`` (``bwrap``): bubblewrap with only ``/usr``, a few ``/etc`` files, the interpreter
  prefix and the venv bound read-only, a private copy of ``grader/worker/`` + ``wire.py``
  (``rundir``, so the assignments' references and checks, ``solutions/`` and result folders
  do not exist inside), a size-capped tmpfs as the only writable place, no network, a private PID
  namespace, and the worker dropped to its slot's own unprivileged uid (``uids``) with no
  capabilities (``setpriv``), so that ``RLIMIT_NPROC`` and signals stay per submission.
* ``landlock`` (bwrap cannot run; kernel 5.13+): the launcher's child confines itself with
  Landlock (``landlock``, with the plan of ``landlock_plan``) before it execs the worker:
  read/execute only the system folders, the interpreter and the dependencies (a private view of
  site-packages without this project's packages), a few ``/etc`` files and its own copy of the
  worker; write only its scratch folder; no TCP (ABI >= 4); no signals or abstract sockets beyond
  its domain (ABI >= 6); a seccomp filter refuses chmod/chown/xattr/utime calls. The worker is
  its slot's own uid, or, where an unprivileged uid cannot run the interpreter, uid 0 with every
  capability dropped (see :attr:`Sandbox.isolation_note`).
* ``none``: only when asked for explicitly; rlimits and nothing else, said loudly in the note.

With ``mode="auto"`` and neither bwrap nor Landlock, :class:`SandboxUnavailable` says how to fix
it. In every mode the project's own packages in site-packages (the hidden checks, the reference)
and the hidden-seed file are masked or left out (``paths``), however the grader is installed, and
the worker never holds a capability that lets it read what its uid cannot.

Always: rlimits (``limits``: address space, CPU seconds, processes, file size, open files), a
wall-clock timeout per request (``exchange``), captured and capped output (``output``), per
submission a uid, cgroups and a capped scratch folder (``tenancy``), and a small launcher process
(``launcher``, ``process``) that is a child subreaper: every process the worker starts, even
double-forked and ``setsid``-detached ones, is re-parented to it and killed when the worker
stops. Nothing is ever pickled.

Modules, in import order: ``landlock`` (stdlib only, shipped to the launcher as source),
``errors``, ``limits``, ``paths``, ``uids``, ``cgroups``, ``scratch``,
``watch``, ``tenancy``, ``bwrap``, ``landlock_plan``, ``launcher``, ``isolation``, ``output``,
``process``, ``exchange``, ``rundir``, ``sandbox``. The protocol both sides speak is
``grader/wire.py``, outside the package: the worker gets a copy of it and nothing of this package.
"""

from grader.sandbox.errors import ProbeError, SandboxUnavailable
from grader.sandbox.exchange import OnMessage, Reply
from grader.sandbox.isolation import (
    MODES,
    Mode,
    bwrap_status,
    isolation_status,
    landlock_status,
    preflight,
)
from grader.sandbox.limits import Limits
from grader.sandbox.paths import refuse_shown
from grader.sandbox.process import leftover_processes
from grader.sandbox.sandbox import Sandbox

__all__ = [
    "MODES",
    "Limits",
    "Mode",
    "OnMessage",
    "ProbeError",
    "Reply",
    "Sandbox",
    "SandboxUnavailable",
    "bwrap_status",
    "isolation_status",
    "landlock_status",
    "leftover_processes",
    "preflight",
    "refuse_shown",
]
