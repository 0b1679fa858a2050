"""The worker process: started through the launcher with its pipes, stopped with all it started.

Why: every start must put the worker in its sandbox the same way (the bwrap command or the
Landlock plan, the rlimits, the cgroups, a clean environment carrying this sandbox's marker) and
every stop must leave nothing behind: the launcher sweeps its descendants, and a last sweep kills
any process that still carries the marker. A launcher's own failure reaches the trusted side on a
separate pipe, so it is the grader's error, never the submission's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from grader import environment
from grader.sandbox.bwrap import bwrap_command
from grader.sandbox.errors import ProbeError
from grader.sandbox.isolation import _Isolation, confine_spec
from grader.sandbox.launcher import _LAUNCHER_SRC
from grader.sandbox.limits import Limits, rlimits
from grader.sandbox.output import Output
from grader.sandbox.paths import KERAS_DIR, MARKER_ENV, MPL_DIR, _python
from grader.sandbox.tenancy import Tenant
from grader.wire import FailureKind
from grader.worker import command as worker_command


def _marker_pids(marker: str) -> list[int]:
    """Processes whose environment carries this sandbox's marker (a last-resort sweep)."""
    names = (MARKER_ENV, environment.SANDBOX.old)  # the old name: a previous release's sandbox
    needles = {f"{name}={marker}".encode() for name in names}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needles & set(fh.read().split(b"\0")):
                    found.append(int(name))
        except OSError:
            continue
    return found


def leftover_processes(marker: str) -> list[int]:
    """Live processes still carrying ``marker`` (tests use this to prove nothing was left)."""
    alive = []
    for pid in _marker_pids(marker):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            alive.append(pid)
    return alive


class Worker:
    """One running worker: its launcher process, pipes and output reader."""

    def __init__(self, proc: subprocess.Popen, req_w: int, rep_r: int, life_w: int) -> None:
        self.proc = proc
        self.req_w = req_w
        self.rep_r = rep_r
        self.life_w = life_w
        self.reader: threading.Thread | None = None
        self.out_r = -1
        self.fault_r = -1


def worker_env(limits: Limits, home: str, marker: str) -> dict[str, str]:
    """The worker's whole environment: nothing of the grader's, threads capped, marked."""
    n = str(max(1, limits.threads))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        environment.THREADS.name: n,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/{MPL_DIR}",
        "KERAS_HOME": f"{home}/{KERAS_DIR}",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MALLOC_ARENA_MAX": "2",
        "USER": "sandbox",  # getpass.getuser() reads this (Landlock mode reads no passwd)
        "LOGNAME": "sandbox",
        MARKER_ENV: marker,
    }


def start(
    choice: _Isolation,
    tmp: Path,
    limits: Limits,
    inner: list[str],
    tenant: Tenant,
    marker: str,
    drain: Callable[[Worker], None],
) -> Worker:
    """Start the launcher (and through it the worker) of the sandbox folder ``tmp``.

    ``inner`` is the privilege drop before the interpreter; ``drain`` reads the worker's output
    in a thread of its own. Raises ProbeError(``grader_error``) when the trusted side cannot start.
    """
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    life_r, life_w = os.pipe()
    fault_r, fault_w = os.pipe()
    worker_args = [str(req_r), str(rep_w)]
    bwrap = choice.name == "bwrap"
    if bwrap:
        command = bwrap_command(str(tmp / "rt"), limits.scratch_mb << 20)
        home = command.home
        cmd = [*command.args, "--", *inner, *worker_command(_python(), command.rt, worker_args)]
    else:
        home = str(tmp / "scratch")
        cmd = [*inner, *worker_command(_python(), str(tmp / "rt"), worker_args)]
    spec = {
        "lifeline": life_r,
        "close": [req_r, rep_w],
        "rlimits": rlimits(limits),
        "cmd": cmd,
        "confine": confine_spec(choice, tmp),
        "fault": fault_w,
        "cgroups": tenant.cgroups.procs_files if tenant.cgroups else [],
        "no_setsid": tenant.filters_setsid(bwrap),
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER_SRC, json.dumps(spec)],
            pass_fds=(req_r, rep_w, life_r, fault_w),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            env=worker_env(limits, home, marker),
            cwd=home if not bwrap else "/",
            start_new_session=True,
        )
    except OSError as exc:  # EAGAIN/ENOMEM on the trusted side: not the submission's doing
        for fd in (req_w, rep_r, out_r, life_w, fault_r):
            os.close(fd)
        raise ProbeError(FailureKind.GRADER_ERROR, f"cannot start the sandbox: {exc}") from None
    finally:
        for fd in (req_r, rep_w, out_w, life_r, fault_w):
            os.close(fd)
    os.set_blocking(req_w, False)
    os.set_blocking(fault_r, False)
    worker = Worker(proc, req_w, rep_r, life_w)
    worker.out_r = out_r
    os.set_blocking(out_r, False)
    worker.fault_r = fault_r
    unwatched_disk = not bwrap and tenant.scratch_mounted is None
    scratch = tmp / "scratch" if unwatched_disk else None
    tenant.started(proc.pid, scratch, limits.scratch_mb << 20)
    worker.reader = threading.Thread(
        target=drain, args=(worker,), name="sandbox-output", daemon=True
    )
    worker.reader.start()
    return worker


def stop(
    worker: Worker,
    marker: str,
    grace: float,
    output: Output,
    tenant: Tenant | None,
    reason: str | None = None,
) -> tuple[int, str | None]:
    """Kill the worker and all it started: (the launcher's exit code, the grader's fault or None).

    ``grace``: when the worker has already gone (its pipe closed), give the launcher that long
    to report the worker's own exit status before the sweep turns it into SIGKILL. The output
    notes ``reason``, what the watch killed, and a failure that is the grader's (the launcher's
    own error, an OOM kill from outside the submission's limits).
    """
    if grace:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.proc.wait(timeout=grace)
    os.close(worker.life_w)  # the launcher sweeps every descendant, then exits
    with contextlib.suppress(OSError):
        os.close(worker.req_w)
    try:
        code = worker.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.proc.pid, signal.SIGKILL)
        code = worker.proc.wait()
    kill_marked(marker)  # belt and braces: anything that slipped out
    with contextlib.suppress(OSError):
        os.close(worker.rep_r)
    if worker.reader is not None:
        worker.reader.join(timeout=5)
    output.close_pipe(worker)
    fault = b""
    with contextlib.suppress(OSError):
        fault = os.read(worker.fault_r, 4000)
    with contextlib.suppress(OSError):
        os.close(worker.fault_r)
    watched = tenant.stopped() if tenant is not None else ""
    outside = tenant.killed_by_grader() if tenant is not None else None
    for text in (reason, watched and f"killed: {watched}"):
        if text:
            output.note(text)
    grader_fault = fault.decode("utf-8", "replace") or outside
    if grader_fault:
        output.note(f"grader error: {grader_fault}")
    return code, grader_fault


def kill_marked(marker: str) -> None:
    """SIGKILL every process carrying this sandbox's marker."""
    for pid in _marker_pids(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
