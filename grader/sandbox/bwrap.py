"""The bubblewrap command line: what exists inside the sandbox when bwrap runs it.

Why: this is the first rung of the isolation ladder and the one that decides what the worker can
name at all: only ``/usr``, a few ``/etc`` files, a passwd/group of the sandbox's own, the
interpreter's prefix and the venv (with the project's own entries masked), a size-capped tmpfs
and the private copy of the worker; no network, private PID/IPC/UTS namespaces.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from grader.sandbox.paths import (
    ETC_FILES,
    SANDBOX_HOME,
    SANDBOX_RT,
    USER_DB,
    _hidden_paths,
    _python_binds,
    _under,
)


def _bwrap_args(rt: str | None, scratch_bytes: int) -> list[str]:
    """The bwrap command line (without the inner command), as DESIGN.md describes."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        args += ["--unshare-user"]
    made: set[str] = set()

    def parents(path: str) -> None:
        parts = Path(path).parts[1:-1]
        for i in range(len(parts)):
            d = "/" + "/".join(parts[: i + 1])
            if d not in made:
                made.add(d)
                args.extend(["--perms", "0755", "--dir", d])

    args += ["--ro-bind", "/usr", "/usr"]
    bound = ["/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    parents("/etc/x")
    for name in ETC_FILES:
        p = f"/etc/{name}"
        if os.path.lexists(p):
            args += ["--ro-bind", p, p]
            bound.append(os.path.realpath(p))
    # the host's accounts stay outside: a passwd/group naming only root, the worker and nobody
    user_db = Path(rt).parent / "etc" if rt is not None else None
    for name in USER_DB:
        if user_db is not None and (user_db / name).exists():
            args += ["--ro-bind", str(user_db / name), f"/etc/{name}"]
    # The scratch tmpfs comes before the interpreter's binds: a venv that lives under /tmp (a CI
    # checkout, say) is then bound on top of the tmpfs instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(scratch_bytes), "--tmpfs", SANDBOX_HOME]
    made.add(SANDBOX_HOME)
    for p in _python_binds():
        parents(p)
        args += ["--ro-bind", p, p]
        made.add(p)
        bound.append(p)
    # Whatever of the project a bound folder holds (site-packages/grader of a `pip install .`,
    # the seed file) is masked: an empty folder, an empty file.
    for h in _hidden_paths():
        if any(_under(h, b) for b in bound) and os.path.lexists(h):
            if os.path.isdir(h):
                args += ["--perms", "0755", "--size", "4096", "--tmpfs", h]
            else:
                args += ["--ro-bind", "/dev/null", h]
    if rt is not None:
        parents(SANDBOX_RT)
        args += ["--ro-bind", rt, SANDBOX_RT]
    args += ["--chdir", SANDBOX_HOME]
    return args
