"""Slots: each concurrent sandbox holds one uid of a reserved range, so per-uid limits stay its own.

Why: ``RLIMIT_NPROC`` and signals count per uid, so a fork bomb under a uid shared with a neighbour
starves that neighbour. A slot (``UID_BASE + n``, as contest judges do) is held with a
non-blocking ``flock`` on a per-slot lock file: exclusive across processes, released on
:meth:`Slot.release` and by the kernel when the grader dies. As root the worker runs as that uid
(:func:`with_uid`); as non-root the slot only names the cgroups. Also the process-killing helpers
the other tenancy modules share (:func:`kill_until_gone`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 1_500_000
"""Slot ``n`` runs its worker as uid/gid ``UID_BASE + n`` (numeric: no passwd entry needed)."""
UID_SLOTS = 1024
"""Size of the reserved range: at most this many sandboxes at once on one machine."""
LOCK_DIR = Path("/run/objloc-grader")
"""Root-owned folder of the slot lock files (non-root: a private folder under the temp dir)."""


class GraderFault(RuntimeError):
    """The grader (not the submission) could not set a sandbox up: no slot, no cgroup, ..."""


def lock_dir() -> Path:
    """The folder of the slot locks: ``LOCK_DIR`` as root, else a private temp folder."""
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
            st = LOCK_DIR.stat()
            if st.st_uid == 0 and not st.st_mode & 0o022:
                return LOCK_DIR
    path = Path(tempfile.gettempdir()) / f"objloc-grader-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not path.is_dir():
        raise GraderFault(f"{path} is not a private folder of this user")
    return path


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


@dataclass
class Slot:
    """One reserved uid, held (flock on its lock file) until :meth:`release` or process death."""

    index: int
    fd: int

    @property
    def uid(self) -> int:
        return UID_BASE + self.index

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def slot_is_free(index: int) -> bool:
    """True when no live process holds slot ``index`` (probes the lock without keeping it)."""
    fd = _try_lock(lock_dir() / f"slot-{index}.lock")
    if fd is None:
        return False
    os.close(fd)
    return True


def acquire_slot() -> Slot:
    """The lowest free slot; processes left running under its uid are killed first (root)."""
    folder = lock_dir()
    for index in range(UID_SLOTS):
        fd = _try_lock(folder / f"slot-{index}.lock")
        if fd is None:
            continue
        slot = Slot(index, fd)
        os.pwrite(fd, f"{os.getpid()}\n".encode().ljust(16), 0)
        if os.geteuid() == 0:
            kill_uid(slot.uid)
        return slot
    raise GraderFault(f"all {UID_SLOTS} sandbox slots are in use")


def uid_pids(uid: int) -> list[int]:
    """Processes whose real uid is ``uid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(name))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_until_gone(find: Callable[[], Iterable[int]], rounds: int) -> None:
    """SIGKILL what ``find`` lists until it lists nothing, at most ``rounds`` times (a fork bomb
    respawns while we kill, so one pass is not enough)."""
    for _ in range(rounds):
        pids = list(find())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` until none is left."""
    kill_until_gone(lambda: uid_pids(uid), 200)


def with_uid(inner: list[str], uid: int) -> list[str]:
    """The ``setpriv`` prefix ``inner`` with its ``--reuid``/``--regid`` set to ``uid``.

    This is the hook between ``_setpriv_args()`` (which drops to uid 65534) and the per-slot uid:
    the sandbox applies it where it builds the worker command, so the isolation code stays as is.
    """
    out = []
    for arg in inner:
        if arg.startswith("--reuid="):
            arg = f"--reuid={uid}"
        elif arg.startswith("--regid="):
            arg = f"--regid={uid}"
        out.append(arg)
    return out
