"""Scratch folders: size-capped, owned by their live sandbox, swept when their grader died.

Why: a submission's disk writes must be capped in every mode (bwrap has its own tmpfs; else, as
root, a size-capped tmpfs is mounted on the scratch folder) and a grader that dies must not leave
its folders behind. ``objloc-sandbox-*`` folders hold an ``owner.lock`` flocked by their sandbox;
a sweep at start removes the folders whose lock is free, never a live one, and never a folder
that only shares the name (a checkout called ``objloc-sandbox-...``): it removes only folders
that hold nothing but what a sandbox puts there (``SANDBOX_ENTRIES``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
import time
from pathlib import Path

from grader.sandbox.uids import GraderFault, _try_lock

SCRATCH_PREFIX = "objloc-sandbox-"
OWNER_FILE = "owner.lock"
#: Everything a sandbox's folder may hold (``rundir``, the Landlock view ``site``, the lock).
SANDBOX_ENTRIES = frozenset({"rt", "scratch", "etc", "site", OWNER_FILE})
UNLOCKED_SECONDS = 24 * 3600.0
"""A scratch folder without an owner lock (being set up right now, or made by a grader version
without locks that may still be running) is left alone this long."""
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 2, 4


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(path: Path, size_bytes: int, uid: int) -> bool:
    """Mount a size-capped tmpfs on ``path`` owned by ``uid`` (root only); True on success.

    Its pages are shared memory charged to the writer's memory cgroup, so it also counts there.
    """
    if os.geteuid() != 0:
        return False
    opts = f"size={size_bytes},mode=0700,uid={uid},gid={uid}".encode()
    flags = _MS_NOSUID | _MS_NODEV
    return _libc().mount(b"tmpfs", str(path).encode(), b"tmpfs", flags, opts) == 0


def unmount_under(folder: Path) -> None:
    """Lazily unmount every mount at or below ``folder`` (deepest first)."""
    prefix = os.path.realpath(folder)
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        _libc().umount2(point.encode(), _MNT_DETACH)


def remove_scratch(folder: Path) -> None:
    unmount_under(folder)
    shutil.rmtree(folder, ignore_errors=True)


def own_scratch(folder: Path) -> int:
    """Mark ``folder`` as live: an fd holding the flock of its owner file (keep it open)."""
    fd = _try_lock(folder / OWNER_FILE)
    if fd is None:  # impossible for a fresh mkdtemp folder
        raise GraderFault(f"{folder} is already owned")
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def sweep_scratch(parent: Path | None = None) -> list[Path]:
    """Remove ``objloc-sandbox-*`` folders of dead graders under ``parent``; return them.

    Stale = its owner lock is free, or it has none and is older than ``UNLOCKED_SECONDS``; a
    folder holding anything a sandbox does not make is someone else's and stays.
    """
    base = Path(parent) if parent else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(SCRATCH_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        owner = entry / OWNER_FILE
        try:
            if not set(os.listdir(entry)) <= SANDBOX_ENTRIES:
                continue  # not a sandbox's folder, whatever its name
            if owner.exists():
                fd = _try_lock(owner)
                if fd is None:
                    continue  # a live sandbox
                try:
                    remove_scratch(entry)
                finally:
                    os.close(fd)
            elif time.time() - entry.stat().st_mtime > UNLOCKED_SECONDS:
                remove_scratch(entry)
            else:
                continue
        except OSError:
            continue
        removed.append(entry)
    return removed


def disk_usage(folder: Path) -> int:
    """Bytes allocated below ``folder`` (not following symlinks)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total
