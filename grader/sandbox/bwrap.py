"""The bubblewrap command line: what exists inside the sandbox when bwrap runs it.

Why: this is the first rung of the isolation ladder and the one that decides what the worker can
name at all: only ``/usr``, a few ``/etc`` files, a passwd/group of the sandbox's own, the
interpreter's prefix and the venv (with the project's own entries masked), and the worker's own
folder (its private copy and a size-capped tmpfs home); no network, private PID/IPC/UTS
namespaces.

The worker's own folder is chosen after everything the host contributes is laid out
(``paths.worker_root``): a checkout whose venv lies where the worker keeps its files (say
``/tmp/learner/.venv`` while the worker wrote to ``/tmp/learner``) would otherwise turn the
worker's folder into a read-only, root-owned one and fail the grading for a reason that is the
grader's, not the learner's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.paths import (
    ETC_FILES,
    HOME_NAME,
    RT_NAME,
    USER_DB,
    _hidden_paths,
    _python_binds,
    _under,
    worker_root,
)


@dataclass(frozen=True)
class BwrapCommand:
    """The bwrap command line (without the inner command) and where the worker's files are."""

    args: list[str]
    root: str  # bwrap creates it; nothing of the host is at, under or above it
    rt: str  # the worker's private copy (read-only)
    home: str  # its size-capped tmpfs: HOME, TMPDIR and the working directory


def bwrap_command(rt: str | None, scratch_bytes: int) -> BwrapCommand:
    """The bwrap command line for the private copy ``rt`` (a host folder; None for a probe) and
    a home of ``scratch_bytes``, as DESIGN.md describes."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        args += ["--unshare-user"]
    made: set[str] = set()
    shown: list[str] = ["/etc", "/proc", "/dev", "/tmp"]  # every path an op below touches

    def parents(path: str) -> None:
        parts = Path(path).parts[1:-1]
        for i in range(len(parts)):
            d = "/" + "/".join(parts[: i + 1])
            if d not in made:
                made.add(d)
                shown.append(d)
                args.extend(["--perms", "0755", "--dir", d])

    args += ["--ro-bind", "/usr", "/usr"]
    bound = ["/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
            shown.append(top)
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    parents("/etc/x")
    for name in ETC_FILES:
        p = f"/etc/{name}"
        if os.path.lexists(p):
            args += ["--ro-bind", p, p]
            bound.append(os.path.realpath(p))
            shown.append(p)
    # the host's accounts stay outside: a passwd/group naming only root, the worker and nobody
    user_db = Path(rt).parent / "etc" if rt is not None else None
    for name in USER_DB:
        if user_db is not None and (user_db / name).exists():
            args += ["--ro-bind", str(user_db / name), f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    python = _python_binds()
    # /tmp: a link to the worker's home, unless a bound folder lies under it (a CI checkout's
    # venv, say); then a tmpfs of its own comes first and those folders are bound on top of it.
    tmp_is_link = not any(_under(p, "/tmp") for p in python)
    if not tmp_is_link:
        args += ["--perms", "1777", "--size", str(scratch_bytes), "--tmpfs", "/tmp"]
        made.add("/tmp")
    for p in python:
        parents(p)
        args += ["--ro-bind", p, p]
        made.add(p)
        bound.append(p)
        shown.append(p)
    # Whatever of the project a bound folder holds (site-packages/grader of a `pip install .`,
    # the seed file) is masked: an empty folder, an empty file.
    for h in _hidden_paths():
        if any(_under(h, b) for b in bound) and os.path.lexists(h):
            shown.append(h)
            if os.path.isdir(h):
                args += ["--perms", "0755", "--size", "4096", "--tmpfs", h]
            else:
                args += ["--ro-bind", "/dev/null", h]
    shown += [os.path.realpath(p) for p in bound]
    root = worker_root(shown)
    inside_rt, home = f"{root}/{RT_NAME}", f"{root}/{HOME_NAME}"
    args += ["--perms", "0755", "--dir", root]
    if rt is not None:
        args += ["--ro-bind", rt, inside_rt]
    args += ["--perms", "1777", "--size", str(scratch_bytes), "--tmpfs", home]
    if tmp_is_link:
        args += ["--symlink", home, "/tmp"]
    args += ["--chdir", home]
    return BwrapCommand(args, root, inside_rt, home)


def _bwrap_args(rt: str | None, scratch_bytes: int) -> list[str]:
    """The bwrap command line (without the inner command); see :func:`bwrap_command`."""
    return bwrap_command(rt, scratch_bytes).args
