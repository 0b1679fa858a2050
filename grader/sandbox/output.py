"""The worker's captured output: stdout and stderr together, capped, never blocking the worker.

Why: learner code may print without end; a pipe nobody reads would block it, a buffer without a cap
would grow the trusted process. A reader thread drains the pipe into a buffer that keeps the first
``cap`` bytes and counts the rest; after a reply the caller catches up first, so the output it
reads holds everything printed before that reply.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from typing import Protocol


class Piped(Protocol):
    """What holds the read end of the output pipe (a worker; ``-1`` once closed)."""

    out_r: int


class Output:
    """The capped output of one sandbox, across its worker restarts."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._out = bytearray()
        self._dropped = 0
        self._out_lock = threading.Lock()
        self._read_lock = threading.Lock()  # one reader of the output pipe at a time

    def text(self) -> str:
        """What was kept, and how much was dropped."""
        with self._out_lock:
            text = bytes(self._out).decode("utf-8", "replace")
            dropped = self._dropped
        if dropped:
            text += f"\n[output truncated: {dropped} more bytes dropped]"
        return text

    def drain(self, worker: Piped) -> None:
        """Keep the first ``cap`` bytes of worker output; keep reading so it never blocks."""
        fd = worker.out_r
        while True:
            try:
                select.select([fd], [], [])
            except (OSError, ValueError):
                return
            with self._read_lock:
                # closed by _stop meanwhile: the number may already name another pipe
                if worker.out_r != fd or not self._read_chunk(fd):
                    return

    def catch_up(self, worker: Piped | None) -> None:
        """Take in what the worker wrote before its last reply and the reader has not yet: the
        output a caller reads after a reply then holds everything printed before it."""
        if worker is None or worker.out_r < 0:
            return
        with self._read_lock:
            try:
                while select.select([worker.out_r], [], [], 0)[0]:
                    if not self._read_chunk(worker.out_r):
                        return
            except (OSError, ValueError):
                return

    def close_pipe(self, worker: Piped) -> None:
        """Close the worker's output pipe, never while a reader is in the middle of a read."""
        with self._read_lock, contextlib.suppress(OSError):
            fd, worker.out_r = worker.out_r, -1
            os.close(fd)

    def _read_chunk(self, fd: int) -> bool:
        """One non-blocking read into the capped buffer; False at the end of the output."""
        cap = self.cap
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        with self._out_lock:
            room = cap - len(self._out)
            if room > 0:
                self._out += chunk[:room]
            self._dropped += max(0, len(chunk) - max(room, 0))
        return True

    def note(self, text: str) -> None:
        """Append a ``[sandbox]`` line (why the worker was stopped), within the cap."""
        with self._out_lock:
            if len(self._out) < self.cap:
                self._out += f"\n[sandbox] {text}\n".encode()
