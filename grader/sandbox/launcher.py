"""The launcher: the small process that starts the worker and kills everything it left behind.

Why: it runs as the parent of the worker command, outside bwrap, with the standard library only
(it is sent as source to ``python -I -S -c``, see ``_LAUNCHER_SRC``): it joins the submission's
cgroups, applies the rlimits, confines its child with Landlock (``landlock.py`` travels with it as
source) and, as a child subreaper, sweeps every descendant, even double-forked and
``setsid``-detached ones, when the trusted side closes the lifeline or the worker exits.
"""

from __future__ import annotations

import inspect
import textwrap

from grader.sandbox import landlock
from grader.sandbox.watch import descendants


def _launcher_main() -> None:  # pragma: no cover - runs in its own interpreter
    """Subreaper parent of the worker: applies rlimits, then kills every descendant at the end.

    It stops when the trusted side closes the lifeline pipe (or dies) or when the worker exits.
    Its exit code is the worker's (128 + signal number when killed by a signal).
    """
    import contextlib
    import ctypes
    import json
    import os
    import resource
    import select
    import signal
    import sys
    import time

    spec = json.loads(sys.argv[1])
    life = spec["lifeline"]
    fault = spec.get("fault", -1)  # only we write here: a failure of ours, not the worker's

    def grader_fault(kind, exc, tb=None):
        with contextlib.suppress(OSError):
            os.write(fault, f"sandbox launcher: {kind.__name__}: {exc}".encode()[:4000])
        os._exit(125)

    if fault >= 0:
        os.set_inheritable(fault, False)  # closed when the worker execs
        sys.excepthook = grader_fault
    for procs in spec.get("cgroups", []):  # join before forking: every process is inside
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    if spec.get("no_setsid"):  # no cpu cgroup: setsid() would buy CPU (one autogroup per session)
        # seccomp filter, inherited by every descendant: setsid() "succeeds" (returns 0) and does
        # nothing, in every syscall ABI of the machine (x86_64: native, x32, i386; aarch64: native,
        # arm32); the trusted side asks for it only on these machines (tenancy.SECCOMP_ARCHS).
        calls = {
            "x86_64": [(0xC000003E, 112), (0xC000003E, 112 | 0x40000000), (0x40000003, 66)],
            "aarch64": [(0xC00000B7, 157), (0x40000028, 66)],
        }[os.uname().machine]

        class Filter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte)]
            _fields_ += [("k", ctypes.c_uint)]

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

        load, jeq, ret, allow, fake = 0x20, 0x15, 0x06, 0x7FFF0000, 0x00050000
        code = []
        for arch, nr in calls:  # if arch == a and nr == n: fake success; else the next pair
            code += [(load, 0, 0, 4), (jeq, 0, 3, arch), (load, 0, 0, 0), (jeq, 0, 1, nr)]
            code += [(ret, 0, 0, fake)]
        code += [(ret, 0, 0, allow)]
        prog_filters = (Filter * len(code))(*[Filter(*c) for c in code])
        prog = Prog(len(code), prog_filters)
        seccomp = ctypes.CDLL(None, use_errno=True)
        seccomp.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS (needed when not root)
        if seccomp.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "cannot install the setsid filter")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans re-parent to us
    pid = os.fork()
    if pid == 0:
        try:
            os.close(life)
            for res, soft, hard in spec["rlimits"]:
                resource.setrlimit(res, (soft, hard))
            cmd = spec["cmd"]
            if spec.get("confine"):  # confined from here on, and so is everything it execs
                cmd = [*landlock.apply(spec["confine"]), *cmd]
            os.execve(cmd[0], cmd, os.environ)
        except BaseException as exc:
            os.write(2, f"sandbox launcher: cannot start the worker: {exc}\n".encode())
        os._exit(127)
    for fd in spec["close"]:
        os.close(fd)
    me = os.getpid()
    status = None

    def reap() -> None:
        nonlocal status
        while True:
            try:
                child, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if child == 0:
                return
            if child == pid:
                status = st

    while status is None:
        ready, _, _ = select.select([life], [], [], 0.05)
        reap()
        if ready:
            break
    for _ in range(2000):  # fork bombs respawn while we kill: repeat until nothing is left
        procs = descendants(me) - {me}
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.002)
        reap()
    reap()
    code = 0 if status is None else os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


# landlock.py (stdlib only) travels with the launcher as a module built from its source.
_LANDLOCK_MODULE = (
    "import types\nlandlock = types.ModuleType('landlock')\n"
    f"exec({inspect.getsource(landlock)!r}, landlock.__dict__)\n"
)
# watch.descendants, the one walk of the process tree, travels as source too (it needs only os)
_DESCENDANTS = "import os\n" + inspect.getsource(descendants)
_LAUNCHER_SRC = (
    _LANDLOCK_MODULE
    + _DESCENDANTS
    + textwrap.dedent(inspect.getsource(_launcher_main))
    + "\n_launcher_main()\n"
).replace("# pragma: no cover - runs in its own interpreter", "")

# Runs a command confined as the launcher's child would be (argv: plan JSON, command...).
_CONFINE_SRC = (
    _LANDLOCK_MODULE
    + "import json, os, sys\n"
    + "cmd = [*landlock.apply(json.loads(sys.argv[1])), *sys.argv[2:]]\n"
    + "os.execv(cmd[0], cmd)\n"
)
