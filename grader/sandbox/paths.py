"""What the sandbox may see: where the interpreter lives, and the paths no sandbox may ever read.

Why: both rungs of the isolation ladder (the bwrap binds, the Landlock read plan) start from the
same two answers: the folders the worker's interpreter and its dependencies need, and this
project's own files (the grader, the assignments with their hidden checks and references,
``solutions/``, the checkout of an editable install, its site-packages entries and dist-info, any
package that provides an assignment through the ``grader.assignments`` entry points, the
hidden-seed file),
which are masked or left out however the grader is installed. Both are probed once per process
and cached here (``_probe_cache``, which the isolation probes share).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader import environment, secret
from grader.assignment import ENTRY_POINT_GROUP
from grader.worker.probes_call import LEARNER_FOLDER_PREFIX as LEARNER_PREFIX

NOBODY = 65534
#: Where bwrap puts the worker's own files: ``<root>/rt`` (its private copy, read-only) and
#: ``<root>/home`` (its size-capped tmpfs: HOME, TMPDIR, the working directory). The root is a
#: folder bwrap creates itself; :func:`worker_root` takes the first of ``SANDBOX_ROOT``,
#: ``SANDBOX_ROOT-1``, ... that no host path the sandbox shows lies at, under or above, so that
#: a checkout or venv that happens to sit at one of these paths can never shadow the worker's
#: files (nor they its files). ``/tmp`` is a link to the home when nothing is bound under it.
SANDBOX_ROOT = "/grader-sandbox"
RT_NAME = "rt"
HOME_NAME = "home"
#: What the worker creates in its home: Keras's and matplotlib's folders and, made with
#: mkdtemp's exclusivity by the worker itself, the folder of the learner's source
#: (``LEARNER_PREFIX`` + random letters).
KERAS_DIR = ".keras"
MPL_DIR = ".matplotlib"
MARKER_ENV = environment.SANDBOX.name
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "nsswitch.conf",
    "localtime",
    "hosts",
    "host.conf",
    "alternatives",
    "ssl",
    "fonts",
    "mime.types",
)
# Not the host's: bwrap binds a passwd/group of the sandbox's own (root, the worker, nobody),
# Landlock mode reads none (the worker finds its name in $USER, its home in $HOME).
USER_DB = ("passwd", "group")
GRADER_DIR = Path(__file__).resolve().parents[1]
"""The ``grader`` package (this file is ``grader/sandbox/paths.py``); its parent is the checkout."""

_probe_lock = threading.Lock()
_probe_cache: dict[str, Any] = {}


def _python() -> str:
    """The worker's interpreter: the one running the grader (it has TensorFlow installed)."""
    return sys.executable


def _python_binds() -> list[str]:
    """Folders the interpreter and its packages live in (outside /usr), deduplicated; with the
    site-packages folders a ``.pth`` file may add (its project entries are masked, see
    :func:`_hidden_paths`).
    """
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_site_dirs()}
    real = Path(os.path.realpath(_python())).parent.parent
    paths.add(str(real))
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths}, key=len):
        if p.startswith("/usr/") or p == "/usr":
            continue
        if any(p == q or p.startswith(q + "/") for q in out):
            continue
        out.append(p)
    return out


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def worker_root(shown: list[str]) -> str:
    """The first of ``SANDBOX_ROOT``, ``SANDBOX_ROOT-1``, ... that none of the sandbox's ``shown``
    paths (every bind, link, mask and the folders bwrap creates for them) lies at, under or
    above; the worker's own paths live below it and nowhere else."""
    for n in range(1000):
        root = SANDBOX_ROOT if n == 0 else f"{SANDBOX_ROOT}-{n}"
        if not any(_under(p, root) or _under(root, p) for p in shown):
            return root
    raise RuntimeError(f"no free folder for the worker's files beside {SANDBOX_ROOT}")


def worker_paths(root: str = SANDBOX_ROOT) -> list[str]:
    """Every path the bwrap worker uses for its own files, given its root (the tests put a
    checkout at each of them): the root, its copy, its home and what it creates there."""
    home = f"{root}/{HOME_NAME}"
    return [root, f"{root}/{RT_NAME}", home] + [
        f"{home}/{name}" for name in (KERAS_DIR, MPL_DIR, LEARNER_PREFIX)
    ]


def _site_dirs() -> list[str]:
    """The site-packages folders the worker's interpreter (run with ``-s``) imports from."""
    import site

    user = os.path.realpath(site.getusersitepackages())
    found = [*site.getsitepackages(), *sys.path]
    out: list[str] = []
    for p in found:
        if not p or os.path.basename(p) not in ("site-packages", "dist-packages"):
            continue
        real = os.path.realpath(p)
        if os.path.isdir(real) and real != user and real not in out:
            out.append(real)
    return out


def _hidden_paths() -> list[str]:
    """Real paths no sandbox may read, whatever the install: this project's entries in
    site-packages (``grader``, ``assignments`` with the hidden checks and the references, ``quiz``,
    its dist-info, an editable install's finder), every distribution that provides an assignment
    (entry-point group ``grader.assignments``), the project checkout, and the hidden-seed file.
    """
    import importlib.metadata as md

    with _probe_lock:
        if "hidden" in _probe_cache:
            return _probe_cache["hidden"]
    hidden = {str(GRADER_DIR), str(GRADER_DIR.parent / "solutions")}
    if not any(_under(str(GRADER_DIR), s) for s in _site_dirs()):
        hidden.add(str(GRADER_DIR.parent))  # a source checkout (editable install): all of it
    for dist in md.distributions():
        tops = set((dist.read_text("top_level.txt") or "").split())
        tops |= {f.parts[0] for f in dist.files or () if f.parts and f.parts[0] != ".."}
        name = (dist.metadata["Name"] or "").lower().replace("-", "_")
        provides = any(e.group == ENTRY_POINT_GROUP for e in dist.entry_points)
        if "grader" not in tops and name != "objloc_course" and not provides:
            continue
        base = Path(dist.locate_file(""))
        dist_dir = getattr(dist, "_path", None)  # the .dist-info folder (not in its own RECORD)
        for top in tops | ({Path(dist_dir).name} if dist_dir else set()):
            p = base / top
            if os.path.lexists(p):
                hidden.add(os.path.realpath(p))
    seed = secret.secret_path().expanduser()
    hidden |= {os.path.realpath(seed), os.path.realpath(seed.parent)}
    out = sorted(hidden)
    with _probe_lock:
        _probe_cache["hidden"] = out
    return out


def refuse_shown(private: Sequence[Path]) -> None:
    """Fail closed when one of an assignment's ``private`` paths (its folder with the reference
    and hidden checks, its solution) lies inside a folder the sandbox shows the worker (the
    interpreter's prefix, site-packages, /usr) without being masked there: a folder loaded by
    path from such a place. SandboxUnavailable says where and what to do."""
    from grader.sandbox.errors import SandboxUnavailable

    shown = ["/usr", "/lib", "/lib64", "/bin", "/sbin", *_python_binds()]
    hidden = _hidden_paths()
    for path in private:
        if not os.path.lexists(path):
            continue  # e.g. the solution notebook, which an installed package does not ship
        real = os.path.realpath(path)
        roots = [os.path.realpath(root) for root in shown]
        inside = next((root for root in roots if _under(real, root)), None)
        # masked only by a hidden path inside that shown folder (bwrap masks within its binds)
        if inside is not None and not any(_under(real, h) and _under(h, inside) for h in hidden):
            raise SandboxUnavailable(
                f"the assignment's private file or folder {path} lies inside {inside}, which the "
                "sandbox shows to learner code: move the assignment elsewhere, or install it as a "
                "package that provides the entry point grader.assignments (masked in every mode)"
            )
