"""Per-submission cgroups (v1 or v2), nested under the grader's own groups, removed on close.

Why: rlimits count per process or per uid, so one submission's children together could still take
the machine (four 800 MB children took 3.3 GB; 32 ``setsid()`` children took ~32/33 of the CPU).
Where the machine lets us create groups: v2 (``memory.max``, ``pids.max``, ``cpu.weight``) or v1
(``memory.limit_in_bytes`` + memsw, ``pids.max``, ``cpu.shares``). The launcher joins them before
it forks the worker, so every process of the submission is inside. Groups of dead graders (their
slot lock is free) are swept at start. A cpu group also neutralises ``setsid()`` autogroups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from grader.sandbox.uids import UID_SLOTS, _try_lock, kill_until_gone, lock_dir

CGROUP_PREFIX = "objloc-slot"


class CgroupVersion(Enum):
    V1 = "v1"
    V2 = "v2"


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
