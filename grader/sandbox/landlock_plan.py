"""The Landlock read plan: which paths a confined worker may read, execute and write.

Why: without bwrap nothing is hidden by absence, so the plan must cover everything the interpreter
needs while leaving holes where this project's files lie: read/execute roots cut around the hidden
paths, and a private "farm" of symlinks to the allowed entries of site-packages (site-packages
itself stays unlistable). ``landlock.apply`` lays the plan out in the launcher's child.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from grader.sandbox import landlock
from grader.sandbox.paths import (
    ETC_FILES,
    _hidden_paths,
    _probe_cache,
    _probe_lock,
    _python_binds,
    _site_dirs,
    _under,
)


def _readable_beneath(root: str, holes: list[str]) -> list[str]:
    """Paths that cover ``root`` except the ``holes`` (real paths) and what lies beneath them."""
    if not any(_under(h, root) for h in holes):
        return [root]
    if any(_under(root, h) for h in holes) or not os.path.isdir(root):
        return []
    out: list[str] = []
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        real = os.path.realpath(p)
        if real != p:  # a symlink: its target is covered on its own, unless it leads to a hole
            if not any(_under(h, real) or _under(real, h) for h in holes):
                out.append(real)
            continue
        out += _readable_beneath(p, holes)
    return out


def _landlock_reads() -> tuple[list[str], list[list[str]]]:
    """(read/execute roots, [name, target] links of the private site-packages view), cached."""
    with _probe_lock:
        if "landlock_reads" in _probe_cache:
            return _probe_cache["landlock_reads"]
    hidden = _hidden_paths()
    sites = _site_dirs()
    roots = ["/usr"] + [os.path.realpath(t) for t in ("/lib", "/lib64", "/bin", "/sbin")]
    roots += _python_binds()
    reads: list[str] = []
    for root in dict.fromkeys(r for r in roots if os.path.exists(r)):
        # A venv inside the checkout stays readable (as bwrap binds it): only holes at or
        # beneath a root cut into it, not the checkout that holds it.
        holes = [h for h in hidden + sites if not (_under(root, h) and root != h)]
        reads += _readable_beneath(root, holes)
    links: dict[str, str] = {}
    for site_dir in sites:
        holes = [h for h in hidden if not (_under(site_dir, h) and site_dir != h)]
        for name in sorted(os.listdir(site_dir)):
            real = os.path.realpath(os.path.join(site_dir, name))
            skip = name in links or name == "__pycache__" or name.startswith("__editable__")
            if (
                skip
                or name.endswith((".pth", ".egg-link"))
                or any(_under(real, h) or _under(h, real) for h in holes)
            ):
                continue
            links[name] = real
            reads.append(real)
    out = (reads, [[k, v] for k, v in links.items()])
    with _probe_lock:
        _probe_cache["landlock_reads"] = out
    return out


def _landlock_plan(tmp: Path, prefix: list[str], abi: int) -> dict[str, Any]:
    """What the launcher's child needs to confine the worker of the sandbox folder ``tmp``."""
    reads, links = _landlock_reads()
    rules: list[list[Any]] = [[p, landlock.READ_EXEC] for p in reads]
    rules += [[f"/etc/{name}", landlock.READ] for name in ETC_FILES]
    rules += [["/proc", landlock.READ], ["/sys/devices/system/cpu", landlock.READ]]
    rules += [["/sys/fs/cgroup", landlock.READ], ["/dev/null", landlock.DEV_RW]]
    rules += [[f"/dev/{d}", landlock.READ_FILE] for d in ("zero", "urandom", "random")]
    rules += [[str(tmp / "rt"), landlock.READ_EXEC], [str(tmp / "site"), landlock.READ_EXEC]]
    rules += [[str(tmp / "scratch"), landlock.WRITE_ALL]]
    return {"farm": str(tmp / "site"), "links": links, "rules": rules, "abi": abi, "prefix": prefix}
