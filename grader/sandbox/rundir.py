"""A sandbox's private folder: the worker's copy of itself, its own user database, its scratch.

Why: the worker must run without the grader package in sight, so it gets a private ``rt`` folder
holding only the worker package and the wire module (as ``grader/worker/`` and ``grader/wire.py``,
the paths the worker imports them by); ``etc`` holds a passwd/group naming only root, the worker
and nobody (bwrap binds them; the host's accounts stay outside); ``scratch`` is the only writable place, owned by the
worker's uid and size-capped (bwrap's own tmpfs, else a tmpfs mounted here as root).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from grader.sandbox.paths import NOBODY, USER_DB
from grader.sandbox.scratch import SCRATCH_PREFIX
from grader.sandbox.tenancy import Tenant
from grader.worker import files as worker_files


def _write_user_db(folder: Path, uid: int) -> None:
    """The sandbox's own /etc/passwd and /etc/group, naming the worker's ``uid`` as "sandbox"."""
    folder.mkdir(mode=0o755)
    users = {0: "root", uid: "sandbox", NOBODY: "nobody"}
    (folder / "passwd").write_text(
        "".join(f"{name}:x:{n}:{n}:{name}:/tmp:/usr/sbin/nologin\n" for n, name in users.items())
    )
    (folder / "group").write_text("".join(f"{name}:x:{n}:\n" for n, name in users.items()))
    for name in USER_DB:
        (folder / name).chmod(0o644)


def _copy_runtime(rt: Path) -> None:
    """The worker's private copy: its package and the wire (``grader.worker.files``) under ``rt``
    with an empty ``grader/__init__.py``; read-only to the worker (folders 0755, files 0644)."""
    for source, relative in worker_files():
        (rt / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, rt / relative)
    (rt / "grader" / "__init__.py").write_text("")
    for p in [rt, *rt.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def make(
    tenant: Tenant, parent: Path | None, scratch_bytes: int, *, drops_uid: bool, bwrap: bool
) -> Path:
    """The private temp dir: a copy of the worker, the scratch folder (size-capped).

    ``drops_uid``: the worker runs as the slot's uid (root dropping to it), which then owns the
    scratch folder; ``bwrap``: bwrap brings its own size-capped tmpfs.
    """
    tmp = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=str(parent) if parent else None))
    tenant.own_scratch(tmp)
    tmp.chmod(0o711)
    _copy_runtime(tmp / "rt")
    scratch = tmp / "scratch"
    scratch.mkdir()
    # the worker's uid: the slot's when it drops to one, else ours (a capability-less
    # root in landlock/none mode must own its scratch, the tmpfs included)
    uid = tenant.uid if os.geteuid() == 0 and drops_uid else os.geteuid()
    _write_user_db(tmp / "etc", uid)
    if uid != os.geteuid():
        os.chown(scratch, uid, uid)
    scratch.chmod(0o700)
    if not bwrap:  # bwrap has its own size-capped tmpfs
        tenant.cap_scratch(scratch, scratch_bytes, uid)
    return tmp
