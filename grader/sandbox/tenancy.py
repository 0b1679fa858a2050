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

Each part is a module of its own (``uids``, ``cgroups``, ``watch``, ``scratch``); this one ties them
together in :class:`Tenant`, one sandbox's share of the machine from set-up to close.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from grader.sandbox.cgroups import CGROUP_PREFIX, Cgroups, create_cgroups, sweep_cgroups
from grader.sandbox.scratch import mount_tmpfs, own_scratch, remove_scratch, sweep_scratch
from grader.sandbox.uids import acquire_slot, kill_uid
from grader.sandbox.watch import Watch

SECCOMP_ARCHS = ("x86_64", "aarch64")
"""Machines whose syscall numbers the launcher's setsid filter knows."""


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
