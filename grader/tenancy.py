"""Many submissions at once: each sandbox gets its own uid, cgroups and capped scratch folder.

Why: limits that count per uid (``RLIMIT_NPROC``) or per process (``RLIMIT_AS``) let one
submission starve another graded beside it: a fork bomb holding the shared process limit made a
correct neighbour crash, four 800 MB children took 3.3 GB, and 32 children calling ``setsid()``
(one scheduler autogroup each) took ~32/33 of the CPU. So, per sandbox (see DESIGN.md, "Many
submissions at once"):

* a **slot** from a reserved uid range (``UID_BASE + n``, as contest judges do), held with a
  non-blocking ``flock`` on a per-slot lock file: exclusive across processes, released on
  :meth:`Tenant.close` and by the kernel when the grader dies. As root the worker runs as that
  uid, so ``RLIMIT_NPROC`` and signals are per submission. As non-root there is no setuid: the
  slot only names the cgroups, and bwrap's user namespace or the cgroups carry the separation.
* **cgroups** where the machine lets us create them, nested under the grader's own group:
  v2 (``memory.max``, ``pids.max``, ``cpu.weight``) or v1 (``memory.limit_in_bytes`` + memsw,
  ``pids.max``, ``cpu.shares``). The launcher joins them before it forks the worker, so every
  process of the submission is inside. Removed on close (killing what is left); groups of dead
  graders are swept at start. A cpu group also neutralises ``setsid()`` autogroups (the kernel
  only applies autogroups in the root task group); without one (and without bwrap) the launcher
  installs a seccomp filter that makes ``setsid()`` a no-op, so one submission stays one session.
* where no memory cgroup exists, a **watch** thread sums the RSS of all the sandbox's processes
  and kills them over the limit; where the scratch folder has no size cap (no bwrap tmpfs, no
  tmpfs mount because not root), the same watch caps its disk usage.
* **scratch folders** ``objloc-sandbox-*`` hold an ``owner.lock`` flocked by their sandbox; a sweep
  at start removes the folders whose lock is free (their grader died), never a live one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

UID_BASE = 1_500_000
"""Slot ``n`` runs its worker as uid/gid ``UID_BASE + n`` (numeric: no passwd entry needed)."""
UID_SLOTS = 1024
"""Size of the reserved range: at most this many sandboxes at once on one machine."""
LOCK_DIR = Path("/run/objloc-grader")
"""Root-owned folder of the slot lock files (non-root: a private folder under the temp dir)."""
CGROUP_PREFIX = "objloc-slot"
SCRATCH_PREFIX = "objloc-sandbox-"
OWNER_FILE = "owner.lock"
UNLOCKED_SECONDS = 24 * 3600.0
"""A scratch folder without an owner lock (being set up right now, or made by a grader version
without locks that may still be running) is left alone this long."""
WATCH_INTERVAL = 0.02
"""Seconds between two samples of the fallback memory/scratch watch: at 0.1 s a 20-process hog
overshot a 512 MB limit by up to 350 MB (measured); at 0.02 s it stays within the tests' 200 MB."""

SECCOMP_ARCHS = ("x86_64", "aarch64")
"""Machines whose syscall numbers the launcher's setsid filter knows."""
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 2, 4


class GraderFault(RuntimeError):
    """The grader (not the submission) could not set a sandbox up: no slot, no cgroup, ..."""


class CgroupVersion(Enum):
    V1 = "v1"
    V2 = "v2"


# --------------------------------------------------------------------------------------------
# Slots (uids)


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


# --------------------------------------------------------------------------------------------
# cgroups


def _own_cgroups() -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's path in that hierarchy."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    return out


def _cgroup_mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount root, mount point, super options) of every cgroup mount."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                out.append((rfields[0], fields[3], fields[4], set(rfields[2].split(","))))
    return out


def _join(mount: str, root: str, path: str) -> Path | None:
    """The folder of cgroup ``path`` under a mount whose root is ``root`` (None: not visible)."""
    if root != "/" and not (path == root or path.startswith(root + "/")):
        return None
    rel = path[len(root) :] if root != "/" else path
    return Path(mount + rel.rstrip("/")) if rel not in ("", "/") else Path(mount)


def parent_groups() -> tuple[CgroupVersion, dict[str, Path]] | None:
    """Where this process may nest per-submission groups: controller -> its own group's folder.

    v2 when a cgroup2 mount offers memory and pids in our group; else v1 with each of memory,
    pids and cpu that is mounted (writable ones are checked when creating).
    """
    own = _own_cgroups()
    mounts = _cgroup_mounts()
    for fstype, root, point, _ in mounts:
        if fstype == "cgroup2" and "" in own:
            here = _join(point, root, own[""])
            if here is None:
                continue
            with contextlib.suppress(OSError):
                offered = set((here / "cgroup.controllers").read_text().split())
                if {"memory", "pids"} <= offered:
                    return CgroupVersion.V2, {"": here}
    found: dict[str, Path] = {}
    for fstype, root, point, opts in mounts:
        if fstype != "cgroup":
            continue
        for controller in ("memory", "pids", "cpu"):
            if controller in opts and controller in own and controller not in found:
                here = _join(point, root, own[controller])
                if here is not None and here.is_dir():
                    found[controller] = here
    return (CgroupVersion.V1, found) if found else None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path, key: str) -> int:
    """``key N`` from a flat keyed file (memory.events, memory.oom_control); 0 when absent."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    return 0


def remove_group(path: Path, timeout: float = 10.0) -> bool:
    """Kill every process in the group ``path`` and remove it; True when it is gone."""
    deadline = time.monotonic() + timeout
    while path.exists():
        if (path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(path / "cgroup.kill", "1")
        with contextlib.suppress(OSError):
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
    return True


@dataclass
class Cgroups:
    """The groups of one submission (one per v1 hierarchy, or one v2 group)."""

    version: CgroupVersion
    groups: dict[str, Path]  # controller ("" for v2) -> folder
    memory_bytes: int
    _oom_base: int = 0
    _fail_base: int = 0

    @property
    def controllers(self) -> set[str]:
        if self.version is CgroupVersion.V2:
            return {"memory", "pids", "cpu"} & self._v2_enabled()
        return set(self.groups)

    def _v2_enabled(self) -> set[str]:
        with contextlib.suppress(OSError):
            return set((self.groups[""] / "cgroup.controllers").read_text().split())
        return set()

    def _group(self, controller: str) -> Path | None:
        return self.groups.get("" if self.version is CgroupVersion.V2 else controller)

    @property
    def procs_files(self) -> list[str]:
        """What the launcher writes its pid into before it forks the worker."""
        return sorted({str(g / "cgroup.procs") for g in self.groups.values()})

    def pids(self) -> set[int]:
        out: set[int] = set()
        for g in self.groups.values():
            with contextlib.suppress(OSError, ValueError):
                out |= {int(p) for p in (g / "cgroup.procs").read_text().split()}
        return out

    def kill_all(self) -> None:
        """SIGKILL every process in the groups until they are empty (bounded)."""
        kill_until_gone(self.pids, 500)

    def remove(self) -> list[Path]:
        """Remove every group; return those that could not be removed."""
        return [g for g in {*self.groups.values()} if not remove_group(g)]

    def peak_memory(self) -> int | None:
        """Peak memory charged to the submission (bytes), where the kernel reports it."""
        g = self._group("memory")
        if g is None:
            return None
        name = "memory.peak" if self.version is CgroupVersion.V2 else "memory.max_usage_in_bytes"
        return _read_int(g / name)

    def _oom_kills(self) -> int:
        g = self._group("memory")
        if g is None:
            return 0
        if self.version is CgroupVersion.V2:
            return _read_keyed(g / "memory.events", "oom_kill")
        return _read_keyed(g / "memory.oom_control", "oom_kill")

    def _own_limit_hits(self) -> int:
        """A count that grows when the group's own limit refuses memory.

        v2: ``memory.events`` "max" + "oom". v1: the fail counters plus one when the peak usage
        reached the limit (measured: kernel 6.18 leaves ``memory.failcnt`` at 0 on a v1 OOM).
        """
        g = self._group("memory")
        if g is None:
            return 0
        if self.version is CgroupVersion.V2:
            events = g / "memory.events"
            return _read_keyed(events, "max") + _read_keyed(events, "oom")
        names = ("memory.failcnt", "memory.memsw.failcnt")
        hits = sum(_read_int(g / name) or 0 for name in names)
        peak = self.peak_memory() or 0
        return hits + (peak >= self.memory_bytes - max(self.memory_bytes // 100, 1 << 20))

    def mark(self) -> None:
        """Remember the OOM counters at a worker start (see :meth:`killed_by_grader`)."""
        self._oom_base, self._fail_base = self._oom_kills(), self._own_limit_hits()

    def killed_by_grader(self) -> str | None:
        """Why a process of the submission was OOM-killed although its own limit never bit.

        Then the pressure came from outside (the grader's own group, another slot, the machine):
        not the submission's fault.
        """
        oom = self._oom_kills() - self._oom_base
        if oom > 0 and self._own_limit_hits() == self._fail_base:
            return (
                f"a process of the sandbox was killed by the kernel's OOM killer ({oom}x) while "
                f"the submission stayed under its own {self.memory_bytes >> 20} MB limit"
            )
        return None


def _v1_limits(controller: str, group: Path, memory: int, pids: int, weight: int) -> None:
    if controller == "memory":
        _write(group / "memory.limit_in_bytes", str(memory))
        if (group / "memory.memsw.limit_in_bytes").exists():
            _write(group / "memory.memsw.limit_in_bytes", str(memory))
    elif controller == "pids":
        _write(group / "pids.max", str(pids))
    elif controller == "cpu":
        _write(group / "cpu.shares", str(max(2, weight * 1024 // 100)))


def _v2_limits(group: Path, memory: int, pids: int, weight: int) -> None:
    _write(group / "memory.max", str(memory))
    if (group / "memory.swap.max").exists():
        _write(group / "memory.swap.max", "0")
    _write(group / "pids.max", str(pids))
    if (group / "cpu.weight").exists():
        _write(group / "cpu.weight", str(weight))


def create_cgroups(name: str, memory_bytes: int, pids: int, cpu_weight: int) -> Cgroups | None:
    """Per-submission groups named ``name`` under this process's own groups, limits set.

    None when no group can be created here (not root, no delegation, read-only mounts).
    A leftover group of that name (a dead grader's, same slot) is removed first.
    """
    found = parent_groups()
    if found is None:
        return None
    version, parents = found
    made: dict[str, Path] = {}
    try:
        if version is CgroupVersion.V2:
            parent = parents[""]
            wanted = {"memory", "pids", "cpu"} & set(
                (parent / "cgroup.controllers").read_text().split()
            )
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
            group = parent / name
            remove_group(group)
            group.mkdir()
            made[""] = group
            _v2_limits(group, memory_bytes, pids, cpu_weight)
        else:
            for controller, parent in parents.items():
                group = parent / name
                try:
                    remove_group(group)
                    group.mkdir()
                except OSError:
                    continue  # read-only or not delegated: that controller falls back
                made[controller] = group
                _v1_limits(controller, group, memory_bytes, pids, cpu_weight)
    except OSError:
        for group in made.values():
            remove_group(group)
        return None
    return Cgroups(version, made, memory_bytes) if made else None


def sweep_cgroups() -> list[Path]:
    """Remove ``objloc-slot<n>`` groups under our parents whose slot is free; return them."""
    found = parent_groups()
    if found is None:
        return []
    removed = []
    for parent in set(found[1].values()):
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                suffix = entry.name[len(CGROUP_PREFIX) :]
                if not (entry.name.startswith(CGROUP_PREFIX) and suffix.isdigit()):
                    continue
                if int(suffix) >= UID_SLOTS:
                    continue
                fd = _try_lock(lock_dir() / f"slot-{int(suffix)}.lock")
                if fd is None:
                    continue  # a live sandbox holds the slot
                try:  # hold the slot while removing: nobody can create its group meanwhile
                    if remove_group(entry):
                        removed.append(entry)
                finally:
                    os.close(fd)
    return removed


# --------------------------------------------------------------------------------------------
# Scratch folders


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

    Stale = its owner lock is free, or it has none and is older than ``UNLOCKED_SECONDS``.
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


# --------------------------------------------------------------------------------------------
# The fallback watch


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (the launcher is a subreaper: orphans stay below)."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    parent[int(name)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = {root}, {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def rss_bytes(pids: set[int]) -> int:
    """Summed resident memory of ``pids``."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as fh:
            total += int(fh.read().split()[1]) * page
    return total


@dataclass
class Watch:
    """Samples one worker's process tree; kills it over the memory or scratch cap.

    Used only for what no kernel mechanism caps here (no memory cgroup; disk scratch without a
    tmpfs). A fast allocator can overshoot for up to ``WATCH_INTERVAL`` (each process is still
    bounded by RLIMIT_AS).
    """

    launcher: int
    memory_bytes: int | None
    scratch: Path | None
    scratch_bytes: int
    peak_rss: int = 0
    killed: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="sandbox-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(WATCH_INTERVAL):
            ticks += 1
            tree = descendants(self.launcher) - {self.launcher}
            if not tree and not os.path.exists(f"/proc/{self.launcher}"):
                return
            rss = rss_bytes(tree)
            self.peak_rss = max(self.peak_rss, rss)
            why = ""
            if self.memory_bytes is not None and rss > self.memory_bytes:
                why = f"the submission's processes used {rss >> 20} MB, over its "
                why += f"{self.memory_bytes >> 20} MB limit"
            elif self.scratch is not None and ticks % 5 == 0:
                used = disk_usage(self.scratch)
                if used > self.scratch_bytes:
                    why = f"the scratch folder holds {used >> 20} MB, over its "
                    why += f"{self.scratch_bytes >> 20} MB limit"
            if why:
                self.killed = why
                # kill below the launcher: it reports SIGKILL, then exits
                kill_until_gone(lambda: descendants(self.launcher) - {self.launcher}, 100)
                return


# --------------------------------------------------------------------------------------------
# One sandbox's share of the machine

_swept: set[str] = set()
_sweep_lock = threading.Lock()


def sweep_once(parent: Path | None) -> None:
    """The start-of-process sweep of stale groups and scratch folders (once per parent)."""
    key = str(parent or tempfile.gettempdir())
    with _sweep_lock:
        if key in _swept:
            return
        _swept.add(key)
        if len(_swept) == 1:
            sweep_cgroups()
        sweep_scratch(parent)


class Tenant:
    """A sandbox's slot, cgroups, scratch ownership and watch, from setup to :meth:`close`."""

    def __init__(self, *, memory_mb: int, pids: int, cpu_weight: int, cgroups: bool = True) -> None:
        self.memory_bytes = memory_mb << 20
        self.slot = acquire_slot()
        self.cgroups: Cgroups | None = None
        if cgroups:
            try:
                self.cgroups = create_cgroups(
                    f"{CGROUP_PREFIX}{self.slot.index}", self.memory_bytes, pids, cpu_weight
                )
            except OSError:
                self.cgroups = None
        self.scratch_fd = -1
        self.scratch_mounted: Path | None = None
        self.watch: Watch | None = None
        self.peak_rss = 0

    @property
    def uid(self) -> int:
        return self.slot.uid

    @property
    def controllers(self) -> set[str]:
        return self.cgroups.controllers if self.cgroups else set()

    def filters_setsid(self, bwrap: bool) -> bool:
        """Whether the launcher makes setsid() a no-op (seccomp): when no cpu cgroup shares the
        CPU per submission, so that sessions (autogroups) cannot buy CPU. Not under bwrap, whose
        ``--new-session`` itself needs setsid() after the launcher."""
        return not bwrap and "cpu" not in self.controllers and os.uname().machine in SECCOMP_ARCHS

    def note(self, bwrap: bool) -> str:
        """Which per-submission protections hold, for the isolation note."""
        c = self.controllers
        uid = f"uid {self.uid} (slot {self.slot.index})" if os.geteuid() == 0 else "no own uid"
        parts = [f"{uid}"]
        if c:
            kind = self.cgroups.version.value if self.cgroups else ""
            parts.append(f"cgroup {kind} {'+'.join(sorted(c))}")
        if "memory" not in c:
            parts.append("memory: watch of summed RSS")
        if "pids" not in c:
            parts.append("processes: RLIMIT_NPROC per uid only")
        if self.filters_setsid(bwrap):
            parts.append("CPU shared per session, setsid() made a no-op (seccomp)")
        elif "cpu" not in c:
            parts.append("CPU NOT shared per submission (each setsid() gains a CPU share)")
        return "per submission: " + ", ".join(parts)

    def own_scratch(self, folder: Path) -> None:
        self.scratch_fd = own_scratch(folder)

    def cap_scratch(self, scratch: Path, size_bytes: int, uid: int) -> bool:
        """Put a size-capped tmpfs on the scratch folder (root); True when capped."""
        if mount_tmpfs(scratch, size_bytes, uid):
            self.scratch_mounted = scratch
            return True
        return False

    def started(self, launcher: int, scratch: Path | None, scratch_bytes: int) -> None:
        """A worker started under ``launcher``: arm the watch for what the kernel does not cap."""
        if self.cgroups is not None:
            self.cgroups.mark()
        memory = None if "memory" in self.controllers else self.memory_bytes
        if memory is not None or scratch is not None:
            self.watch = Watch(launcher, memory, scratch, scratch_bytes).start()

    def stopped(self) -> str:
        """The worker is gone: stop the watch, kill stragglers; return the watch's kill reason."""
        why = ""
        if self.watch is not None:
            self.watch.stop()
            self.peak_rss = max(self.peak_rss, self.watch.peak_rss)
            why, self.watch = self.watch.killed, None
        if self.cgroups is not None:
            self.cgroups.kill_all()
        return why

    def killed_by_grader(self) -> str | None:
        return self.cgroups.killed_by_grader() if self.cgroups is not None else None

    @property
    def peak_memory(self) -> int:
        """Peak memory of the submission: the cgroup's figure, else the watch's summed RSS."""
        peak = self.cgroups.peak_memory() if self.cgroups is not None else None
        return peak if peak is not None else self.peak_rss

    def close(self, scratch_folder: Path | None) -> None:
        """Kill what is left, remove the groups and the scratch folder, release the slot."""
        self.stopped()
        if self.cgroups is not None:
            self.cgroups.remove()
        if os.geteuid() == 0:
            kill_uid(self.uid)
        if scratch_folder is not None:
            remove_scratch(scratch_folder)
        if self.scratch_fd >= 0:
            os.close(self.scratch_fd)
            self.scratch_fd = -1
        self.slot.release()
