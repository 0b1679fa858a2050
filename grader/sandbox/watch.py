"""The fallback watch: sums a worker tree's RSS and scratch usage, kills it over the caps.

Why: where no memory cgroup exists, nothing in the kernel caps the memory of all of a submission's
processes together (RLIMIT_AS is per process); where the scratch folder has no size cap (no bwrap
tmpfs, no tmpfs mount because not root), nothing caps its disk use. A thread samples both.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox.scratch import disk_usage
from grader.sandbox.uids import kill_until_gone

WATCH_INTERVAL = 0.02
"""Seconds between two samples of the fallback memory/scratch watch: at 0.1 s a 20-process hog
overshot a 512 MB limit by up to 350 MB (measured); at 0.02 s it stays within the tests' 200 MB."""


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
