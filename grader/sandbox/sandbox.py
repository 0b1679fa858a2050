"""Start, talk to and stop the isolated worker that runs learner code.

Why a separate process and this much care: learner code must never decide its own verdict. The
worker (``grader/worker/``) only ever returns data over the ``grader.wire`` protocol;
the checks run here, in the trusted process. :class:`Sandbox` holds one learner's source and ties
the parts together: the rung of the isolation ladder (``isolation``), its share of the machine
(``tenancy``), its private folder (``rundir``), the worker process (``process``), one round trip
at a time (``exchange``) and the captured output (``output``). The package docstring
(``grader/sandbox/__init__.py``) describes what each rung protects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader import wire
from grader.sandbox import exchange, process, rundir, tenancy, uids
from grader.sandbox.errors import ProbeError
from grader.sandbox.exchange import OnMessage, Reply
from grader.sandbox.isolation import MODES, Mode, _choose, _Isolation
from grader.sandbox.limits import Limits
from grader.sandbox.output import Output
from grader.wire import FailureKind


def _new_tenant(lim: Limits, scratch_parent: Path | None) -> tenancy.Tenant:
    """A uid slot and cgroups for one sandbox; the first one of the process also sweeps."""
    tenancy.sweep_once(scratch_parent)
    try:
        return tenancy.Tenant(
            memory_mb=lim.memory_mb, pids=lim.pids, cpu_weight=lim.cpu_weight, cgroups=lim.cgroups
        )
    except (OSError, uids.GraderFault) as exc:
        raise ProbeError(FailureKind.GRADER_ERROR, f"cannot set up the sandbox: {exc}") from None


def _load_failure(exc: ProbeError) -> ProbeError:
    """The lasting failure of a load that raised ``exc``: every later request fails the same way
    (the code does not load, or the grader could not load it: retrying within one grading,
    whose status that failure already decides, would only start more workers)."""
    kind = FailureKind.LOAD_ERROR if exc.kind == FailureKind.LEARNER_ERROR else exc.kind
    return ProbeError(kind, f"loading the code: {exc.message}", exc.traceback)


def _start_failure(exc: ProbeError, output: str) -> ProbeError:
    """A worker that did not answer its first request (before any learner code was sent to it):
    it could not start, import its own modules or speak the protocol: the grader's failure. The
    last line it printed (its own, no learner code ran) says why, for the instructor."""
    own = [
        line for line in output.splitlines() if line.strip() and not line.startswith("[sandbox]")
    ]
    why = f" ({own[-1].strip()[:300]})" if own else ""
    return ProbeError(
        FailureKind.GRADER_ERROR, f"the worker did not start: {exc.message}{why}", exc.traceback
    )


def _start_and_load(sandbox: Sandbox, timeout: float) -> Reply:
    """Start ``sandbox``'s worker and load its learner source; raise the lasting failure."""
    try:
        sandbox._spawn()
        # The worker's first answer comes before it holds any learner code: whatever goes wrong
        # up to here is the grader's (set-up, start, the worker's own imports, the wire).
        sandbox._exchange("ping", {}, None, timeout, None)
    except ProbeError as exc:
        raise _start_failure(exc, sandbox.output) from None
    # lone surrogates travel as they are; the worker refuses them as the learner's text
    text = np.frombuffer(sandbox.source.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    args = {"names": list(sandbox.graded_names)}
    try:
        return sandbox._exchange("load", args, {"source": text}, timeout, None)
    except ProbeError as exc:
        raise _load_failure(exc) from None


class Sandbox:
    """A lazily started, restartable worker holding one learner's source.

    Use as a context manager; :meth:`request` sends one probe and returns its :class:`Reply` or
    raises :class:`ProbeError`. After a timeout or crash the worker is killed with everything it
    started, and the next request starts (and loads) a fresh one. ``graded_names`` are the
    names the load request asks the worker to describe (the worker knows no course's names).
    """

    def __init__(
        self,
        source: str,
        *,
        mode: Mode = "auto",
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass: safe as a default
        scratch_parent: Path | None = None,
        graded_names: Sequence[str] = (),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.source = source
        self.mode = mode
        self.limits = limits
        self.scratch_parent = scratch_parent
        self.graded_names = tuple(graded_names)
        self.marker = uuid.uuid4().hex
        self.caps = wire.Caps.sized(limits.array_mb << 20)  # one message; an exchange: 2x
        self.load_reply: Reply | None = None
        self.starts = 0
        self._choice: _Isolation | None = None
        self._inner: list[str] = []
        self._tmp: Path | None = None
        self._worker: process.Worker | None = None
        self._load_failure: ProbeError | None = None
        self._lock = threading.RLock()
        self._output = Output(limits.output_bytes)
        self._closed = False
        self._tenant: tenancy.Tenant | None = None

    @property
    def isolation(self) -> str:
        """ "bwrap", "landlock" or "none" (decided on first use; raises SandboxUnavailable)."""
        return self._decide().name

    @property
    def isolation_note(self) -> str:
        """What the chosen isolation does and does not protect, in one sentence or two."""
        note = self._decide().note
        if self._closed:
            return note
        with self._lock:  # what holds per submission (uid, cgroups or watch)
            return note + "; " + self._ensure_tenant().note(self.isolation == "bwrap")

    @property
    def output(self) -> str:
        """Everything the worker printed (stdout + stderr), capped at ``limits.output_bytes``."""
        self._output.catch_up(self._worker)
        return self._output.text()

    @property
    def running(self) -> bool:
        return self._worker is not None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _decide(self) -> _Isolation:
        if self._choice is None:
            choice = _choose(self.mode)  # raises SandboxUnavailable: never a silent downgrade
            self._inner = list(choice.inner)
            self._choice = choice
        return self._choice

    def _ensure_tenant(self) -> tenancy.Tenant:
        """This sandbox's share of the machine (uid slot, cgroups); the first one of the process
        also sweeps what dead graders left (stale cgroups and scratch folders)."""
        if self._tenant is None:
            self._tenant = _new_tenant(self.limits, self.scratch_parent)
        return self._tenant

    def _spawn(self) -> None:
        choice = self._decide()
        tenant = self._ensure_tenant()
        if self._tmp is None:
            try:
                self._tmp = rundir.make(
                    tenant, self.scratch_parent, self.limits.scratch_mb << 20,
                    drops_uid=bool(self._inner), bwrap=choice.name == "bwrap",
                )  # fmt: skip
            except (OSError, uids.GraderFault) as exc:
                raise ProbeError(
                    FailureKind.GRADER_ERROR, f"cannot prepare the sandbox's folder: {exc}"
                ) from None
        # the privilege drop, with this sandbox's own slot uid instead of 65534
        inner = uids.with_uid(self._inner, tenant.uid) if os.geteuid() == 0 else self._inner
        self._worker = process.start(
            choice, self._tmp, self.limits, inner, tenant, self.marker, self._output.drain
        )
        self.starts += 1

    def _stop(self, reason: str | None = None, grace: float = 0.0) -> int | None:
        """Kill the worker and all it started; return the launcher's exit code. With ``grace``
        (the worker has gone; see ``process.stop``) a failure that is the grader's raises
        ProbeError(``grader_error``) instead of counting as a crash.
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return None
        code, grader_fault = process.stop(
            worker, self.marker, grace, self._output, self._tenant, reason
        )
        if grader_fault and grace:
            raise ProbeError(FailureKind.GRADER_ERROR, grader_fault)
        return code

    def _exchange(
        self,
        op: str,
        args: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None,
        timeout: float,
        on_message: OnMessage | None,
    ) -> Reply:
        """One request/reply round trip (``exchange.guarded``); kills the worker on failure."""
        assert self._worker is not None
        fds = (self._worker.req_w, self._worker.rep_r)
        return exchange.guarded(
            fds, (op, args, arrays), self.caps, timeout, on_message, self._stop, self._output.note
        )

    def _ensure_loaded(self, timeout: float) -> Reply:
        if self._load_failure is not None:
            f = self._load_failure
            raise ProbeError(f.kind, f.message, f.traceback)
        if self._worker is None or self.load_reply is None:
            try:
                self.load_reply = _start_and_load(self, timeout)
            except ProbeError as failure:
                self._load_failure = failure
                self._stop()
                raise
        return self.load_reply

    def start(self, timeout: float | None = None) -> Reply:
        """Start the worker and load the learner source now; returns the load reply."""
        with self._lock:
            if self._closed:
                raise ProbeError(FailureKind.CRASHED, "the sandbox is closed")
            return self._ensure_loaded(timeout or self.limits.wall_seconds)

    def request(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        timeout: float,
        on_message: OnMessage | None = None,
    ) -> Reply:
        """Send one probe; ``on_message(header, arrays)`` answers the worker's intermediate asks
        (return ``(header, arrays)``) and sees its notes. Raises ProbeError without a data reply.
        """
        with self._lock:
            if self._closed:
                raise ProbeError(FailureKind.CRASHED, "the sandbox is closed")
            if op == "load":
                return self._ensure_loaded(timeout)
            self._ensure_loaded(self.limits.wall_seconds)
            return self._exchange(op, args or {}, arrays, timeout, on_message)

    def restart(self) -> None:
        """Stop the worker now; the next request starts a fresh one."""
        with self._lock:
            self._stop("restarted on request")

    def close(self) -> None:
        """Stop the worker and everything it started; remove the private temp dir."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop()
            process.kill_marked(self.marker)
            tenant, self._tenant = self._tenant, None
            if tenant is not None:  # kills the rest, removes the cgroups, frees the uid slot
                tenant.close(self._tmp)
            elif self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
